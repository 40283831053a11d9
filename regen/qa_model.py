"""Calibrated answer probabilities for questions about findings (ECG-QA's SCP statements,
superclasses, heart axis, extra systoles, infarction stage).

The same machinery as the report's findings (`regen.findings.fit`: neighbour vote + linear
probe on the embedding, Platt-calibrated by leave-one-fold-out CV inside the corpus), with the
corpus records' own PTB-XL annotations as targets (what ECG-QA's answers derive from) and the
accuracy-optimal decision (calibrated probability >= 0.5) instead of the F1-optimal one. Noise is
not here: it is measured from the signal (`regen.quality`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from regen.findings import (
    NO_HELDOUT,
    CorpusLabels,
    FindingsModel,
    HeldOut,
    Targets,
    fit,
    view_groups,
)
from regen.qa_data import ANY_KIND, SINGLE_ANSWER_GROUPS, neighbour_answers
from regen.types import Neighbour

GROUPS = ("scp_code", "superclass", "heart_axis", "extra_systole", "stage_of_infarction")
SEP = "\t"


def _answers(n: Neighbour) -> dict[str, set[str]]:
    ans = neighbour_answers(n)
    for option, group in ANY_KIND.items():
        if group in GROUPS and ans.get(group):
            ans[group] = ans[group] | {option}
    return ans


class AnswerModel:
    """Per build: option names ("group\\toption"), the fitted model, and the corpus targets."""

    def __init__(self, model: FindingsModel, targets: Targets):
        self.model = model
        self.col = {n: i for i, n in enumerate(model.findings)}
        self.targets = targets

    @property
    def k(self) -> int:
        return self.model.k

    def probabilities(self, z: np.ndarray, rows: np.ndarray, sims: np.ndarray) -> np.ndarray:
        """z (M, dim), the voting neighbours' corpus rows and cosines (M, k) -> (M, options)
        calibrated probabilities."""
        k = min(self.model.k, rows.shape[1])
        return self.model.probabilities(z, sims[:, :k], self.targets.tensor(rows[:, :k]))

    def option_probabilities(self, p: np.ndarray, group: str, options: Sequence[str]
                             ) -> dict[str, float] | None:
        """One query's (options,) row -> {option: probability} for the options it knows
        (None when it knows none of them)."""
        out = {o: float(p[self.col[f"{group}{SEP}{o}"]]) for o in options
               if f"{group}{SEP}{o}" in self.col}
        return out or None

    @classmethod
    def load_or_fit(cls, build_dir: Path,
                    records: Callable[[], tuple[np.ndarray, np.ndarray, list]],
                    neighbour_of: Callable[[object], Neighbour],
                    log: Callable[[str], None] | None = None,
                    heldout: HeldOut = NO_HELDOUT) -> AnswerModel:
        """Read `qa-model.json` and `qa-labels.npz` beside the build, or fit and save them
        (again when they were saved with another held-out correction than `heldout`)."""
        mfile, lfile = build_dir / "qa-model.json", build_dir / "qa-labels.npz"
        if mfile.exists() and lfile.exists():
            try:
                model = FindingsModel.load(mfile)
                if model.heldout == heldout:
                    return cls(model, Targets.load(lfile))
            except (KeyError, ValueError, OSError):
                pass
        log = log or (lambda m: print(m, file=sys.stderr))
        ids, vectors, views = records()
        answers = [_answers(neighbour_of(v)) for v in views]
        seen: dict[str, int] = {}
        for a in answers:
            for g in GROUPS:
                for o in a.get(g, ()):
                    seen[f"{g}{SEP}{o}"] = seen.get(f"{g}{SEP}{o}", 0) + 1
        names = sorted(seen)
        y = np.zeros((len(views), len(names)), dtype=bool)
        known = np.ones_like(y)
        col = {n: i for i, n in enumerate(names)}
        for i, a in enumerate(answers):
            for g in GROUPS:
                if g in SINGLE_ANSWER_GROUPS and not a.get(g):
                    for n in names:
                        if n.startswith(g + SEP):
                            known[i, col[n]] = False
                for o in a.get(g, ()):
                    y[i, col[f"{g}{SEP}{o}"]] = True
        groups = view_groups(views)
        targets = Targets.of_views(np.asarray(ids), y, known, views)
        model = fit(CorpusLabels(np.asarray(ids), y, known, groups), vectors, names=names,
                    thresholds="accuracy", log=lambda m: None, heldout=heldout)
        log(f"answer model: {len(names)} options, k={model.k}, temperature "
            f"{model.temperature} by leave-one-fold-out CV in the corpus")
        try:
            model.save(mfile)
            targets.save(lfile)
        except OSError as exc:
            log(f"answer model not saved in {build_dir}: {exc}")
        return cls(model, targets)

