"""Comparing two ECGs (e.g. the same patient at two times): each ECG's findings are the
similarity-weighted vote of its own neighbours, in ECG-QA's vocabulary (SCP statements, heart
axis, extra systoles); a finding is present when at least half the weight supports it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from regen.qa_data import neighbour_answers
from regen.refine import MIN_CONFIDENCE, neighbour_weights
from regen.types import Comparison, Neighbour

# Recording quality is not a clinical change; infarction stage follows from the MI statements.
GROUPS = ("scp_code", "heart_axis", "extra_systole")


def finding_shares(nbrs: Sequence[Neighbour], temperature: float = 0.05) -> dict[str, float]:
    """Finding -> share in [0, 1] of the similarity-weighted neighbours that report it."""
    if not nbrs:
        return {}
    w = neighbour_weights(np.array([n.score for n in nbrs], dtype=np.float64), temperature)
    shares: dict[str, float] = {}
    for wi, n in zip(w, nbrs):
        ans = neighbour_answers(n)
        for g in GROUPS:
            for finding in ans.get(g, ()):
                shares[finding] = shares.get(finding, 0.0) + float(wi)
    return shares


def compare_neighbours(na: Sequence[Neighbour], nb: Sequence[Neighbour], *,
                       min_confidence: float = MIN_CONFIDENCE) -> Comparison:
    """new: present in the second only; resolved: in the first only; persisting: in both.
    Confidence: the mean certainty 2|share - 0.5| over the findings that either ECG's
    neighbours mention (low when both ECGs' neighbours are split)."""
    sa, sb = finding_shares(na), finding_shares(nb)
    findings = sorted(set(sa) | set(sb), key=lambda f: -max(sa.get(f, 0), sb.get(f, 0)))
    new, resolved, persisting = {}, {}, {}
    for f in findings:
        a, b = sa.get(f, 0.0), sb.get(f, 0.0)
        if b >= 0.5 and a < 0.5:
            new[f] = (a, b)
        elif a >= 0.5 and b < 0.5:
            resolved[f] = (a, b)
        elif a >= 0.5 and b >= 0.5:
            persisting[f] = (a, b)
    certainty = [abs(s.get(f, 0.0) - 0.5) * 2 for f in findings for s in (sa, sb)]
    confidence = float(np.mean(certainty)) if certainty else 0.0
    abstained = confidence < min_confidence

    def fmt(d: dict[str, tuple[float, float]]) -> str:
        return "; ".join(f"{f} ({a:.0%} -> {b:.0%})" for f, (a, b) in d.items()) or "none"

    text = (f"Second ECG compared with the first, each judged by its most similar corpus ECGs. "
            f"New: {fmt(new)}. Resolved: {fmt(resolved)}. Persisting: {fmt(persisting)}.")
    if abstained:
        text = "Uncertain comparison (neighbours disagree). " + text
    return Comparison(text, new, resolved, persisting, confidence, abstained, tuple(na),
                      tuple(nb))
