"""The LLM refiner: a chat model rewrites the neighbours' reports into one report, under checks.

The refiner logic is written once, against a one-method interface, `ChatBackend.complete`, with
two implementations: `OpenAIChatBackend` here (LangChain's `ChatOpenAI` against any
OpenAI-compatible server) and `LocalChatBackend` in `regen.local_llm` (SmolLM2 in-process).

A reply is used only when it passes every check; otherwise the draft is the `ConsensusRefiner`'s
and `Draft.fallback_reason` says why (the generation log stores it as the row's error):

* the request failed (HTTP error or timeout, after the client's retries);
* the reply is not the JSON asked for, or names keys that are not among the neighbours, or keeps
  none, or its text is empty;
* its text states a finding that none of the kept neighbours' reports supports: the labels that
  `regen.labeller.label_report` reads in the text must be a subset of those it reads in the kept
  reports ("atrial fibrillation" among neighbours that all say "sinus rhythm" is rejected);
* its text reads as an instruction or an urgent directive, or (when the decided findings are
  given, as `Regen` always gives them) states anything the findings did not decide
  (`regen.untrusted`): neighbour text alone cannot vouch for a reply, since a poisoned report
  "supports" whatever it injected.

Corpus reports enter the prompt quoted and delimited, as data (`regen.untrusted.quote_report`);
the prompt's example answer is fixed text, never a corpus report. A fallback reason never holds
the API key or another secret the backend knows (`redact`).

Confidence of a used reply (`kept_confidence`): the ConsensusRefiner's support of each kept
neighbour (the similarity-weighted ROUGE-L agreement of its report with all k neighbours' reports),
averaged over the kept neighbours with the same similarity weights. Keeping only the consensus
medoid gives exactly the consensus confidence; keeping outliers lowers it. Below `min_confidence`
the refiner abstains, as the consensus one does.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import numpy as np

from regen.errors import ConfigError, InvalidReplyError, LLMError, require
from regen.labeller import label_report
from regen.metrics import tokenize
from regen.prompts import load_prompt
from regen.refine import (
    ABSTAIN_TEXT,
    MIN_CONFIDENCE,
    ConsensusRefiner,
    Draft,
    Refiner,
    _agreement,
    agreement_matrix,
    neighbour_weights,
)
from regen.types import Finding, Neighbour
from regen.untrusted import directive, quote_report, safe_key, undecided

log = logging.getLogger(__name__)

LANGUAGES = {"en": "English", "orig": "the language of the reports"}


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class ChatBackend(Protocol):
    """One chat completion. `model` names the model for the generation log."""

    model: str

    def complete(self, messages: Sequence[Message], schema: dict | None = None) -> str:
        """The reply; `schema`, when the backend can enforce one, is the JSON schema the reply
        must follow (backends that cannot ignore it: the reply is validated anyway)."""
        ...


# The reply the report prompt asks for, as a JSON schema: servers that honour OpenAI's
# `response_format` (OpenAI, vLLM, llama.cpp) then decode only JSON of this shape; the reply is
# validated either way.
REPLY_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["kept", "text"],
                "properties": {"kept": {"type": "array", "items": {"type": "string"}},
                               "text": {"type": "string"}}}
RESPONSE_FORMATS = ("json_schema", "json_object", "json_object_schema", "none")


def reply_schema(keys: Sequence[str]) -> dict:
    """REPLY_SCHEMA with `kept` restricted to these neighbour keys (at least one), so a server
    that enforces the schema cannot return a key that is not a neighbour's."""
    schema = json.loads(json.dumps(REPLY_SCHEMA))
    schema["properties"]["kept"].update(items={"type": "string", "enum": list(keys)},
                                        minItems=1)
    return schema


def response_format(kind: str, schema: dict) -> dict | None:
    """The OpenAI `response_format` value for a kind of structured output."""
    if kind == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": "report", "schema": schema, "strict": True}}
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_object_schema":
        # llama-cpp-python's server: its grammar enforces the schema, but an enum of keys made
        # its sampling 20x slower (3,674 decoding steps for 128 tokens), so not the enum there
        return {"type": "json_object", "schema": REPLY_SCHEMA}
    return None


class OpenAIChatBackend:
    """An OpenAI-compatible chat server through LangChain's `ChatOpenAI` (the openai client).

    `retries` are the client's own: 429, 5xx and timeouts are retried with backoff (Retry-After
    honoured); `timeout` is per attempt, in seconds. The key is sent as a Bearer header only.
    """

    def __init__(self, base_url: str, model: str, api_key: str = "", *,
                 temperature: float = 0.0, max_tokens: int = 256, timeout: float = 30.0,
                 retries: int = 2, response_format: str = "none"):
        langchain_openai = require("langchain_openai", "llm")
        if response_format not in RESPONSE_FORMATS:
            raise ConfigError(f"llm_response_format={response_format!r}; expected one of "
                              f"{list(RESPONSE_FORMATS)}")
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.retries = retries
        self.response_format = response_format
        self._key = api_key             # only to redact it from errors a server echoes it in
        self._chat = langchain_openai.ChatOpenAI(  # type: ignore[attr-defined]
            base_url=base_url, model=model, api_key=api_key or "sk-none",
            temperature=temperature, max_tokens=max_tokens, timeout=timeout,
            max_retries=retries)

    def __repr__(self) -> str:
        return f"OpenAIChatBackend(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in an error, a log row or a response."""
        return (self._key,) if self._key else ()

    def _safe(self, text: str) -> str:
        return redact(text, self.secrets)

    def complete(self, messages: Sequence[Message], schema: dict | None = None) -> str:
        import openai

        attempts = f"{self.retries + 1} attempt(s)"
        fmt = response_format(self.response_format, schema or REPLY_SCHEMA)
        try:
            reply = self._chat.invoke([m.to_json() for m in messages],
                                      **({"response_format": fmt} if fmt else {}))
        except openai.APITimeoutError as exc:
            raise LLMError(f"{self.base_url}: no answer within {self.timeout} s, "
                           f"{attempts}") from exc
        except openai.APIConnectionError as exc:
            raise LLMError(self._safe(f"{self.base_url}: cannot connect ({exc}), "
                                      f"{attempts}")) from exc
        except openai.APIStatusError as exc:     # a 401's body may echo the key
            said = self._safe(str(exc.message))[:200]
            raise LLMError(f"{self.base_url}: HTTP {exc.status_code} after {attempts}: "
                           f"{said}") from exc
        except openai.APIError as exc:
            raise LLMError(self._safe(f"{self.base_url}: {exc}")) from exc
        content = reply.content
        if isinstance(content, list):   # content parts: keep the text ones
            content = "".join(p if isinstance(p, str) else str(p.get("text", ""))
                              for p in content)
        return str(content)


# Credentials a server may echo in an error: bearer tokens and OpenAI-style keys.
_CREDENTIAL = re.compile(r"(?i)\bbearer\s+[\w.~+/=-]{8,}|\bsk-[\w-]{8,}")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` with each secret, and anything shaped like a bearer token or an API key, replaced
    by "[redacted]"."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _CREDENTIAL.sub("[redacted]", text)


# -- replies -------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_json_reply(content: str, neighbours: Sequence[Neighbour]) -> tuple[str, list[str]]:
    """'{"kept": [keys], "text": "..."}' (fences and prose around it tolerated) -> (text, kept).

    Raises InvalidReplyError naming what is wrong."""
    body = _FENCE.sub("", content.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise InvalidReplyError(f"reply is not JSON: {content[:120]!r}")
    try:
        obj = json.loads(body[start:end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidReplyError(f"reply is not valid JSON ({exc.msg} at char {exc.pos}): "
                                f"{content[:120]!r}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) \
            or not isinstance(obj.get("kept"), list) \
            or not all(isinstance(k, str) for k in obj["kept"]):
        raise InvalidReplyError(f'reply is JSON but not {{"kept": [keys], "text": str}}: '
                                f"{content[:120]!r}")
    kept = [_resolve_key(k, neighbours) for k in obj["kept"]]
    unknown = [k for k, r in zip(obj["kept"], kept) if r is None]
    if unknown:
        raise InvalidReplyError(f"reply keeps {unknown}, which are not among the neighbours")
    return obj["text"], list(dict.fromkeys(k for k in kept if k is not None))


def _resolve_key(given: str, neighbours: Sequence[Neighbour]) -> str | None:
    """A neighbour's key as a reply wrote it: exactly, or (small models drop the source prefix)
    the one neighbour whose key ends with ":" + it; None when none or several match."""
    keys = [n.key for n in neighbours]
    if given in keys:
        return given
    given = given.strip().strip("[]\"'")
    found = [k for k in keys if given in (k, safe_key(k)) or k.endswith(f":{given}")]
    return found[0] if len(found) == 1 else None


def parse_text_reply(content: str, prefill: str = "") -> str:
    """The report in a text reply: its first non-empty line, without a repeated `prefill`
    label ("Report:"), list bullet or the quotes the prompt's reports are shown in."""
    for line in content.strip().splitlines():
        line = line.strip()
        if prefill and line.lower().startswith(prefill.strip().lower()):
            line = line[len(prefill.strip()):].strip()
        line = line.lstrip("-*• ").strip().strip('"').strip()   # reports are quoted in prompts
        if line:
            return line
    return ""


def overlapping(text: str, neighbours: Sequence[Neighbour], threshold: float) -> list[str]:
    """Keys of the neighbours whose report agrees with `text` (ROUGE-L F1 >= threshold)."""
    toks = tokenize(text)
    return [n.key for n in neighbours if _agreement(toks, tokenize(n.report)) >= threshold]


def check_supported(text: str, kept: Sequence[str], neighbours: Sequence[Neighbour], *,
                    labels: bool = True) -> None:
    """Raise InvalidReplyError unless `text` is non-empty, keeps some neighbour, and (`labels`)
    states no finding (labeller label) that none of the kept neighbours' reports states."""
    if not text.strip():
        raise InvalidReplyError("reply text is empty")
    if not kept:
        raise InvalidReplyError("reply keeps no neighbour")
    if not labels:
        return
    by_key = {n.key: n for n in neighbours}
    supported = frozenset().union(*(label_report(by_key[k].report) for k in kept))
    extra = label_report(text) - supported
    if extra:
        raise InvalidReplyError(f"reply states {sorted(extra)}, which none of the kept "
                                f"neighbours' reports {list(kept)} supports")


def check_decided(text: str, kept: Sequence[str], neighbours: Sequence[Neighbour],
                  findings: Sequence[Finding]) -> None:
    """Raise InvalidReplyError when `text` reads as an instruction or urgent directive, or
    (findings given) states what the decided findings do not (`regen.untrusted.undecided`)."""
    said = directive(text)
    if said is not None:
        raise InvalidReplyError(f"reply reads as an instruction or directive ({said!r}), not "
                                "a report")
    if not findings:
        return
    from regen.findings import FINDINGS

    by_key = {n.key: n for n in neighbours}
    # every label the findings model decides, not only those the report lists (it leaves out
    # the ones below 0.1): a finding decided absent is never a "finer" statement to allow
    extra = undecided(text, [f.label for f in findings if f.present],
                      [by_key[k].report for k in kept if k in by_key],
                      [*FINDINGS, *(f.label for f in findings)])
    if extra:
        decided = [f.label for f in findings if f.present]
        raise InvalidReplyError(f"reply states {extra}, which the decided findings {decided} "
                                "do not")


def kept_confidence(neighbours: Sequence[Neighbour], kept: Sequence[str],
                    temperature: float = 0.05) -> float:
    """Similarity-weighted mean, over the kept neighbours, of each one's consensus support (the
    ConsensusRefiner's score: its report's weighted ROUGE-L agreement with all neighbours)."""
    usable = [n for n in neighbours if n.report.strip()]
    toks = [tokenize(n.report) for n in usable]
    w = neighbour_weights(np.array([n.score for n in usable]), temperature)
    agree = agreement_matrix(toks)                                        # (k, k)
    support = agree @ w                                                   # (k,)
    keep = set(kept)
    mask = np.array([n.key in keep for n in usable])
    if not mask.any():
        return 0.0
    return float((support[mask] * w[mask]).sum() / w[mask].sum())


# -- the refiner ---------------------------------------------------------------------------------

class LLMRefiner:
    """Neighbours -> prompt -> `backend.complete` -> checked reply, or the consensus draft.

    reply="json": the prompt asks for {"kept": [keys], "text": ...}. reply="text": the prompt asks
    for the report text only (easier for small models), the text is the reply's first line, and
    `kept` is computed as the neighbours whose report agrees with it (ROUGE-L F1 >= `overlap`).
    `prefill`, when set, is sent as the start of the assistant's answer for the model to
    continue (backends that support it: the local one).
    """

    name = "llm"

    def __init__(self, backend: ChatBackend, *, prompt: str = "report",
                 reply: Literal["json", "text"] = "json", language: str = "en",
                 min_confidence: float = MIN_CONFIDENCE, overlap: float = 0.3,
                 temperature: float = 0.05, prefill: str = "",
                 fallback: Refiner | None = None):
        self.backend = backend
        self.prompt = load_prompt(prompt)
        self.reply = reply
        self.language = LANGUAGES.get(language, language)
        self.min_confidence = min_confidence
        self.overlap = overlap
        self.prefill = prefill
        self.temperature = temperature     # of the similarity weights, as in ConsensusRefiner
        self.fallback = fallback or ConsensusRefiner(min_confidence=min_confidence,
                                                     temperature=temperature)
        self.secrets = tuple(getattr(backend, "secrets", ()))

    def refine(self, neighbours: Sequence[Neighbour],
               findings: Sequence[Finding] = ()) -> Draft:
        """A draft from the neighbours; `findings` (the diagnosis of the same ECG): the reply
        may state only those decided present, and the prompt names them."""
        usable = [n for n in neighbours if n.report.strip()]
        model, phash = self.backend.model, self.prompt.hash
        if not usable:
            return self._fallback(neighbours, "no neighbour has a report")
        decided = [f.name for f in findings if f.present]
        rendered = self.prompt.render(
            reports=[{"key": safe_key(n.key), "score": f"{n.score:.3f}",
                      "text": quote_report(n.report)} for n in usable],
            decided=", ".join(decided) if findings else "", language=self.language)
        log.info("generation: refiner=%s model=%s prompt=%s neighbours=%d", self.name, model,
                 phash, len(usable))
        try:
            messages = [Message("user", rendered)]
            if self.prefill:
                messages.append(Message("assistant", self.prefill))
            schema = reply_schema([n.key for n in usable]) if self.reply == "json" else None
            content = self.backend.complete(messages, schema=schema)
            if self.reply == "json":
                text, kept = parse_json_reply(content, usable)
            else:
                text = parse_text_reply(content, self.prefill)
                kept = overlapping(text, usable, self.overlap)
            # Given the decided findings, they are what a reply must stay within: they already
            # weigh the neighbours' labels with the embedding and the measurements (a measured
            # first-degree AV block no neighbour states may be said; a poisoned neighbour's
            # "STEMI" may not). Without them, the kept neighbours' reports are the check.
            check_supported(text, kept, usable, labels=not findings)
            check_decided(text, kept, usable, findings)
        except LLMError as exc:
            reason = redact(f"{type(exc).__name__}: {exc}", self.secrets)
            log.info("generation: model=%s prompt=%s falls back: %s", model, phash, reason)
            return self._fallback(neighbours, reason)
        keep = set(kept)
        order = [n.key for n in usable if n.key in keep]
        confidence = kept_confidence(usable, order, self.temperature)
        if confidence < self.min_confidence:
            return Draft(ABSTAIN_TEXT, confidence, tuple(order), True, phash, model)
        return Draft(text.strip(), confidence, tuple(order), False, phash, model)

    def _fallback(self, neighbours: Sequence[Neighbour], reason: str) -> Draft:
        return replace(self.fallback.refine(neighbours), prompt_hash=self.prompt.hash,
                       model=self.backend.model, fallback_reason=reason)
