"""Refiners turn a query's neighbours into a report. One method:
`refine(neighbours, findings=()) -> Draft`.

`ConsensusRefiner` is the deterministic offline default: it returns the neighbour report that
agrees most with the other neighbours (similarity-weighted), so every word it outputs comes from
a real report, and its confidence is that agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from regen.metrics import lcs_len, softmax_weights, tokenize
from regen.settings import MIN_CONFIDENCE as MIN_CONFIDENCE
from regen.types import Finding, Neighbour


@dataclass(frozen=True)
class Draft:
    """A refiner's output. `model` names the LLM asked, if any; `fallback_reason` says why its
    answer was not used and this draft is the consensus one instead (None when it was used)."""

    text: str
    confidence: float
    cited: tuple[str, ...]
    abstained: bool
    prompt_hash: str | None = None
    model: str | None = None
    fallback_reason: str | None = None


class Refiner(Protocol):
    name: str

    def refine(self, neighbours: Sequence[Neighbour],
               findings: Sequence[Finding] = ()) -> Draft:
        """A draft from the neighbours' reports; `findings`: the same ECG's diagnosis, which a
        refiner that writes new text must stay within (the LLM ones check their reply)."""
        ...


# MIN_CONFIDENCE: the consensus refiner abstains below this agreement; defined with the
# setting it is the default of (`regen.settings`), which must not import numpy.

ABSTAIN_TEXT = ("No report suggested: the most similar ECGs in the corpus disagree or are not "
                "similar enough. See the neighbours' reports below.")


def _agreement(a: list[str], b: list[str]) -> float:
    """ROUGE-L F1 (beta 1) between token lists; 1.0 for two empty reports."""
    if not a and not b:
        return 1.0
    lcs = lcs_len(a, b)
    return 0.0 if lcs == 0 else 2 * lcs / (len(a) + len(b))


def agreement_matrix(toks: Sequence[list[str]]) -> np.ndarray:
    """(k, k) symmetric ROUGE-L F1 between token lists; each pair computed once, identical
    reports (common in a corpus) without an LCS."""
    k = len(toks)
    out = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = 1.0 if toks[i] == toks[j] else _agreement(toks[i], toks[j])
    return out


def neighbour_weights(scores: np.ndarray, temperature: float = 0.05) -> np.ndarray:
    """Softmax of cosine scores: closer neighbours weigh more, ties weigh the same."""
    return softmax_weights(scores, temperature)


class ConsensusRefiner:
    """Medoid of the neighbours' reports under similarity-weighted text agreement."""

    name = "consensus"

    def __init__(self, min_confidence: float = MIN_CONFIDENCE, cite_threshold: float = 0.5,
                 temperature: float = 0.05):
        self.min_confidence = min_confidence
        self.cite_threshold = cite_threshold
        self.temperature = temperature

    def refine(self, neighbours: Sequence[Neighbour],
               findings: Sequence[Finding] = ()) -> Draft:
        """The medoid report; `findings` are not used (the text is a neighbour's own)."""
        usable = [n for n in neighbours if n.report.strip()]
        if not usable:
            return Draft(ABSTAIN_TEXT, 0.0, (), True)
        toks = [tokenize(n.report) for n in usable]
        w = neighbour_weights(np.array([n.score for n in usable]), self.temperature)
        agree = agreement_matrix(toks)                                        # (k, k)
        support = agree @ w                                                   # (k,)
        best = int(np.argmax(support))      # argmax keeps the closest neighbour on ties
        confidence = float(support[best])
        # The neighbour whose report is used comes first, then those that agree with it.
        cited = (usable[best].key,) + tuple(
            n.key for i, (n, a) in enumerate(zip(usable, agree[best]))
            if i != best and a >= self.cite_threshold)
        if confidence < self.min_confidence:
            return Draft(ABSTAIN_TEXT, confidence, cited, True)
        return Draft(usable[best].report.strip(), confidence, cited, False)
