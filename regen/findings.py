"""Findings: a calibrated probability and a decision for every finding regen can state.

For a query, each finding's raw score is the similarity-weighted share of its k nearest corpus
ECGs whose report states it (softmax of cosine / temperature). Everything that turns scores into
decisions is fitted by leave-one-fold-out cross-validation *inside the corpus* (`fit`): every
corpus ECG is scored against the corpus folds other than its own, which gives out-of-fold (OOF)
scores from which

* k and the temperature are chosen (mean OOF ROC-AUC over findings with >= 10 positives),
* a Platt scaling per finding turns scores into probabilities,
* a threshold per finding maximises OOF F1 of the calibrated probability,
* an isotonic map turns a report's expected label F1 (from the per-finding probabilities)
  into its confidence: the label F1 that OOF reports given that confidence reached, and
* the abstention threshold is the OOF confidence quantile that answers `coverage` of ECGs.

The query folds (PTB-XL fold 9 and 10) never take part. Targets are the labels the report
labeller (`regen.labeller`) reads from each corpus report, the same labels the report eval
scores, plus heart axis from the corpus annotations where there are any.

The shipped encoder was trained on folds 1-8, so OOF neighbours inside those folds are closer
than a new ECG's and the OOF calibration is optimistic. `HeldOut` corrects for that: an encoder
trained the same way without one corpus fold shows, on that fold, how far the calibration
fitted on the others is from the truth (`bench/heldout_calibration.py`); the correction it
chooses is kept beside the shipped encoder (`heldout.json`) and applied after the per-finding
calibration, to the OOF probabilities too, before the thresholds and confidence are fitted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from regen.errors import ConfigError
from regen.labeller import LABELS, SCP_SUPERCLASS
from regen.metrics import macro_auc, softmax_weights

AXIS_FINDINGS = ("LAD", "RAD")      # left (< -30) / right (> +90) axis deviation
FINDINGS: tuple[str, ...] = LABELS + AXIS_FINDINGS
# PTB-XL's heart_axis is the German "Lagetyp": its LAD ("Linkstyp", about -30..+30 degrees)
# and AXR ("Steiltyp") are normal axes clinically; left axis deviation (< -30) is ALAD/AXL,
# right (> +90) RAD/ARAD; SAG (sagittal) says nothing about the frontal axis.
_AXIS_GROUP = {"ALAD": "LAD", "AXL": "LAD", "RAD": "RAD", "ARAD": "RAD",
               "MID": "normal", "LAD": "normal", "AXR": "normal"}

NAMES: dict[str, str] = {
    "NORM": "normal ECG", "MI": "myocardial infarction", "STTC": "ST/T change",
    "CD": "conduction disturbance", "HYP": "hypertrophy", "SR": "sinus rhythm",
    "ABQRS": "abnormal QRS", "IMI": "inferior myocardial infarction",
    "ASMI": "anteroseptal myocardial infarction", "LVH": "left ventricular hypertrophy",
    "LAFB": "left anterior fascicular block", "AFIB": "atrial fibrillation",
    "PVC": "ventricular premature complex", "IRBBB": "incomplete right bundle branch block",
    "STD_": "ST depression", "VCLVH": "voltage criteria for LVH", "STACH": "sinus tachycardia",
    "1AVB": "first-degree AV block", "SARRH": "sinus arrhythmia", "SBRAD": "sinus bradycardia",
    "QWAVE": "Q waves", "CRBBB": "complete right bundle branch block",
    "CLBBB": "complete left bundle branch block", "LOWT": "low amplitude T waves",
    "PAC": "atrial premature complex", "LPR": "prolonged PR interval", "PACE": "paced rhythm",
    "INVT": "inverted T waves", "DIG": "digitalis effect", "LAD": "left axis deviation",
    "RAD": "right axis deviation",
}

# Conventional reading order of a report: rhythm, rate, axis, conduction, hypertrophy,
# infarction/ischaemia, repolarisation, then the overall statement.
SECTION: dict[str, int] = {
    "SR": 0, "AFIB": 0, "SARRH": 0, "PACE": 0, "PVC": 0, "PAC": 0,
    "STACH": 1, "SBRAD": 1, "LAD": 2, "RAD": 2,
    "1AVB": 3, "LPR": 3, "LAFB": 3, "IRBBB": 3, "CRBBB": 3, "CLBBB": 3, "CD": 3,
    "LVH": 4, "VCLVH": 4, "HYP": 4,
    "IMI": 5, "ASMI": 5, "QWAVE": 5, "ABQRS": 5, "MI": 5,
    "STD_": 6, "LOWT": 6, "INVT": 6, "DIG": 6, "STTC": 6, "NORM": 7,
}

K_GRID = (10, 20, 40, 80, 160)
TEMPERATURE_GRID = (0.02, 0.05, 0.1, 1.0)
MIN_POSITIVES = 10      # findings with fewer OOF positives keep threshold 0.5 and skip k choice
EPS = 1e-4
VERSION = 4             # of findings.json; another version is fitted again
HELDOUT_FORMS = ("none", "shrink", "platt")


@dataclass(frozen=True)
class CorpusLabels:
    """What `fit` needs of a corpus. ids (N,) int64 index ids; y (N, F) bool targets over
    FINDINGS; known (N, F) bool, False where a target is unknown (no report, no axis note);
    groups (N,) the CV fold of each record (PTB-XL strat_fold, else a patient hash)."""

    ids: np.ndarray
    y: np.ndarray
    known: np.ndarray
    groups: np.ndarray


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


@dataclass(frozen=True)
class HeldOut:
    """A correction of the calibrated probabilities for ECGs the encoder never saw, applied
    after the per-finding calibration (monotone per finding, so decisions keep their order).

    The OOF scores that calibrate every finding come from corpus ECGs the shipped encoder was
    trained on, where neighbours are closer than a new ECG's. `bench/heldout_calibration.py`
    measures how much with an encoder trained without one corpus fold, and writes this
    correction beside the shipped encoder (`heldout.json`). Forms, one set of parameters for
    every finding: "none"; "shrink", logit p' = logit q + a (logit p - logit q) with q the
    finding's corpus rate (a < 1: less sure, toward the base rate); "platt", logit p' =
    a logit p + b."""

    form: str = "none"
    a: float = 1.0
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.form not in HELDOUT_FORMS:
            raise ValueError(f"held-out correction form {self.form!r}; expected one of "
                             f"{', '.join(HELDOUT_FORMS)}")

    def apply(self, p: np.ndarray, rate: np.ndarray) -> np.ndarray:
        """p (..., F) calibrated probabilities, rate (F,) corpus rates -> corrected."""
        if self.form == "none":
            return p
        if self.form == "shrink":
            lq = logit(rate)
            return sigmoid(lq + self.a * (logit(p) - lq))
        return sigmoid(self.a * logit(p) + self.b)

    @classmethod
    def fit(cls, form: str, p: np.ndarray, y: np.ndarray, rate: np.ndarray,
            known: np.ndarray | None = None) -> HeldOut:
        """Fit `form` on held-out probabilities p and truths y (M, F), pooled log loss over
        the entries `known` marks (default all)."""
        if cls(form).form == "none":          # (an unknown form raises here)
            return cls()
        m = np.ones(p.shape, bool) if known is None else np.asarray(known, bool)
        z, t = logit(p)[m], np.asarray(y, dtype=float)[m]
        if form == "platt":
            return cls("platt", *platt(z, t))
        off = np.broadcast_to(logit(rate), p.shape)[m]
        x = z - off
        a = 1.0
        for _ in range(50):                      # Newton on the one slope
            q = sigmoid(off + a * x)
            h = float((q * (1 - q) * x * x).sum()) + 1e-9
            step = float(((q - t) * x).sum()) / h
            a -= step
            if abs(step) < 1e-8:
                break
        return cls("shrink", a, 0.0)

    def describe(self) -> str:
        if self.form == "none":
            return "no correction"
        if self.form == "shrink":
            return f"shrink toward the base rate, a = {self.a:.3f}"
        return f"platt, a = {self.a:.3f}, b = {self.b:.3f}"

    def to_json(self) -> dict[str, Any]:
        return {"form": self.form, "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, d: dict | None) -> HeldOut:
        if not d:
            return cls()
        return cls(str(d.get("form", "none")), float(d.get("a", 1.0)), float(d.get("b", 0.0)))

    @classmethod
    def for_encoder(cls, folder: Path, fingerprint: str, part: str) -> HeldOut:
        """The correction `heldout.json` in an encoder folder holds for `part` ("report" or
        "answers"), if it was made for this encoder (its fingerprint); else none."""
        path = Path(folder) / "heldout.json"
        if not path.exists():
            return cls()
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        if d.get("applies_to") != fingerprint:
            return cls()
        try:
            return cls.from_json(d.get(part))
        except ValueError as exc:
            raise ConfigError(f"{path}: {part}.form is {(d.get(part) or {}).get('form')!r}; "
                              f"expected one of {', '.join(HELDOUT_FORMS)} (remake it with "
                              "bench/heldout_calibration.py --write, or delete the file)"
                              ) from exc


NO_HELDOUT = HeldOut()      # no correction: the corpus OOF calibration alone


def vote(sims: np.ndarray, labels: np.ndarray, temperature: float) -> np.ndarray:
    """sims (M, k) cosine (-inf: no neighbour), labels (M, k, F) {0,1} (NaN where unknown) ->
    (M, F) weighted share of the neighbours with each finding, over the neighbours where it is
    known (0.5 if none)."""
    w = softmax_weights(sims, temperature)[..., None] * ~np.isnan(labels)   # (M, k, F)
    tot = w.sum(1)
    share = (w * np.nan_to_num(labels)).sum(1)
    return np.where(tot > 0, share / np.maximum(tot, 1e-12), 0.5)


def platt(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> tuple[float, float]:
    """(a, b) of p = sigmoid(a * x + b) for a score x in logit units, fitted by Newton steps
    on the log loss."""
    a, b = 1.0, 0.0
    for _ in range(50):
        p = sigmoid(a * x + b)
        g = np.array([((p - y) * x).sum() + l2 * a, (p - y).sum()])
        w = p * (1 - p)
        h = np.array([[(w * x * x).sum() + l2, (w * x).sum()], [(w * x).sum(), w.sum() + 1e-9]])
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-7:
            break
    return float(a), float(b)


def best_f1_threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of p >= threshold; thresholds halfway between scores."""
    order = np.argsort(-p)
    ps, ys = p[order], y[order].astype(bool)
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    f1 = 2 * tp / (tp + fp + ys.sum())
    # only cut between distinct scores
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(last, f1, -1)
    i = int(np.argmax(f1))
    nxt = ps[i + 1] if i + 1 < len(ps) else ps[i] - 1e-3
    return float((ps[i] + nxt) / 2), float(f1[i])


@dataclass(frozen=True)
class FindingsModel:
    """Fitted per index build (saved beside it as findings.json). Per finding: Platt
    parameters of the neighbour vote (`knn_ab`) and of a linear probe on the embedding
    (`probe_w`, `probe_b`, `probe_ab`); the two calibrated logits are averaged and calibrated
    again (`fused_ab`); `threshold` decides on that probability. `confidence_ab`: Platt scaling
    from the log raw set score to P(finding set right); `abstain_below`: the confidence under which
    outputs abstain. `cv` keeps what the cross-validation measured."""

    k: int
    temperature: float
    findings: tuple[str, ...]
    knn_ab: np.ndarray          # (F, 2)
    probe_w: np.ndarray         # (F, dim)
    probe_b: np.ndarray         # (F,)
    probe_ab: np.ndarray        # (F, 2)
    fused_ab: np.ndarray        # (F, 2)
    threshold: np.ndarray       # (F,)
    confidence_x: np.ndarray    # isotonic knots: expected F1 -> OOF per-report label F1
    confidence_y: np.ndarray
    abstain_below: float
    coverage: float
    cv: dict
    base_rate: np.ndarray | None = None     # (F,) corpus rate of each finding
    heldout: HeldOut = NO_HELDOUT           # applied after `fused_ab` (see HeldOut)

    # -- use ---------------------------------------------------------------------------------

    def sources(self, z: np.ndarray, sims: np.ndarray, labels: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """z (M, dim) query embeddings, sims (M, k'), labels (M, k', F) of the neighbours ->
        calibrated (p_neighbours, p_probe), each (M, F)."""
        raw = vote(sims[:, :self.k], labels[:, :self.k], self.temperature)
        pk = sigmoid(self.knn_ab[:, 0] * logit(raw) + self.knn_ab[:, 1])
        pp = sigmoid(self.probe_ab[:, 0] * (z @ self.probe_w.T + self.probe_b)
                     + self.probe_ab[:, 1])
        return pk, pp

    def fuse(self, pk: np.ndarray, pp: np.ndarray) -> np.ndarray:
        p = sigmoid(self.fused_ab[:, 0] * (logit(pk) + logit(pp)) / 2 + self.fused_ab[:, 1])
        return self.correct(p)

    def correct(self, p: np.ndarray) -> np.ndarray:
        """The held-out correction of fused probabilities (identity when there is none)."""
        return p if self.base_rate is None else self.heldout.apply(p, self.base_rate)

    def probabilities(self, z: np.ndarray, sims: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(M, F) calibrated probability of every finding."""
        return self.fuse(*self.sources(z, sims, labels))

    def decide(self, p: np.ndarray) -> np.ndarray:
        return p >= self.threshold

    def confidence(self, p: np.ndarray, present: np.ndarray,
                   assessable: np.ndarray | None = None) -> np.ndarray:
        """(M, F) probabilities and decisions -> (M,) the report's confidence: its expected
        label F1 against a cardiologist's report, calibrated on OOF reports in the corpus (on
        ECGs given this confidence, the stated findings agreed that well on average)."""
        nl = len(LABELS)
        ok = np.ones_like(present[..., :nl]) if assessable is None else assessable[..., :nl]
        ef1 = expected_f1(np.where(ok, p[..., :nl], 0.0), present[..., :nl] & ok)
        return np.interp(ef1, self.confidence_x, self.confidence_y)

    def set_probability(self, p: np.ndarray, present: np.ndarray,
                        assessable: np.ndarray | None = None) -> np.ndarray:
        """(M,) P(every decision right), assuming independent findings: near 0 for any ECG
        with several uncertain findings, so it is reported, not used to abstain."""
        nl = len(LABELS)
        return raw_set_score(p[..., :nl], present[..., :nl],
                             None if assessable is None else assessable[..., :nl])

    # -- storage -----------------------------------------------------------------------------

    def to_json(self) -> dict:
        arr = {n: getattr(self, n).tolist() for n in _ARRAYS}
        return {"version": VERSION, "k": self.k, "temperature": self.temperature,
                "findings": list(self.findings), **arr, "abstain_below": self.abstain_below,
                "coverage": self.coverage, "cv": self.cv,
                "base_rate": None if self.base_rate is None else self.base_rate.tolist(),
                "heldout": self.heldout.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> FindingsModel:
        if d.get("version") != VERSION:
            raise ValueError(f"findings model version {d.get('version')}; expected {VERSION}")
        arr = {n: np.asarray(d[n], dtype=np.float64) for n in _ARRAYS}
        return cls(k=int(d["k"]), temperature=float(d["temperature"]),
                   findings=tuple(d["findings"]), abstain_below=float(d["abstain_below"]),
                   coverage=float(d["coverage"]), cv=dict(d.get("cv", {})),
                   base_rate=None if d.get("base_rate") is None
                   else np.asarray(d["base_rate"], dtype=np.float64),
                   heldout=HeldOut.from_json(d.get("heldout")), **arr)

    def save(self, path: Path) -> None:
        """Atomic: a reader never sees half a file."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json()))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> FindingsModel:
        return cls.from_json(json.loads(path.read_text()))


_ARRAYS = ("knn_ab", "probe_w", "probe_b", "probe_ab", "fused_ab", "threshold", "confidence_x",
           "confidence_y")


def expected_f1(p: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(M, F) -> (M,) approximate expected F1 of stating `present` when each finding holds with
    probability p: 2 sum_{stated} p / (n_stated + sum p); 1 when nothing is stated or likely."""
    num = 2 * (p * present).sum(-1)
    den = present.sum(-1) + p.sum(-1)
    return np.where(den > 0, num / np.maximum(den, 1e-12), 1.0)


def report_f1(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(M, F) bool -> (M,) per-report F1 of the stated set against the true set (1 if both
    are empty)."""
    tp = (pred & true).sum(-1)
    den = pred.sum(-1) + true.sum(-1)
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 1.0)


def isotonic_knots(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Isotonic regression of y on x, as knots at each block's mean x (piecewise linear for
    np.interp, so nearby inputs do not tie)."""
    order = np.argsort(x, kind="mergesort")
    blocks: list[list[float]] = []           # [sum_y, sum_x, count]
    for xv, yv in zip(x[order], y[order].astype(float)):
        blocks.append([yv, xv, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][2] >= blocks[-1][0] / blocks[-1][2]:
            sy, sx, c = blocks.pop()
            blocks[-1][0] += sy
            blocks[-1][1] += sx
            blocks[-1][2] += c
    return ([float(b[1] / b[2]) for b in blocks], [float(b[0] / b[2]) for b in blocks])


def raw_set_score(p: np.ndarray, present: np.ndarray,
                  assessable: np.ndarray | None = None) -> np.ndarray:
    """Product over findings of P(each decision is right), assuming independence."""
    right = np.where(present, p, 1 - p)
    if assessable is not None:
        right = np.where(assessable, right, 1.0)
    return np.exp(np.log(np.clip(right, 1e-9, 1)).sum(-1))


# -- fitting -------------------------------------------------------------------------------------

def oof_neighbours(vectors: np.ndarray, groups: np.ndarray, k: int,
                   chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For every corpus vector, its k nearest among the other CV groups (leave-one-fold-out).
    vectors (N, d) unit norm -> (sims (N, k) float32, positions (N, k) int64). Exact search."""
    n = len(vectors)
    sims = np.empty((n, k), dtype=np.float32)
    pos = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, chunk):
        block = vectors[s:s + chunk] @ vectors.T                              # (c, N)
        block[groups[s:s + chunk, None] == groups[None, :]] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        tv = np.take_along_axis(block, top, 1)
        order = np.argsort(-tv, axis=1)
        pos[s:s + chunk] = np.take_along_axis(top, order, 1)
        sims[s:s + chunk] = np.take_along_axis(tv, order, 1)
    return sims, pos


def target_matrix(report_labels: Sequence[frozenset[str] | None],
                  axes: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per record: labeller labels of its report (None: no report) and its heart-axis code
    (None: not annotated) -> (y (N, F) bool, known (N, F) bool) over FINDINGS."""
    n, nl = len(report_labels), len(LABELS)
    y = np.zeros((n, len(FINDINGS)), dtype=bool)
    known = np.zeros_like(y)
    for i, (labs, axis) in enumerate(zip(report_labels, axes)):
        if labs is not None:
            known[i, :nl] = True
            y[i, :nl] = [c in labs for c in LABELS]
        group = _AXIS_GROUP.get((axis or "").upper())
        if group is not None:
            known[i, nl:] = True
            y[i, nl:] = [group == c for c in AXIS_FINDINGS]
    return y, known


def neighbour_label_tensor(y: np.ndarray, known: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(N, F) targets, (M, k) neighbour positions -> (M, k, F) float, NaN where unknown."""
    lab = y[pos].astype(np.float32)
    lab[~known[pos]] = np.nan
    return lab


def fit_probe(x: np.ndarray, y: np.ndarray, known: np.ndarray, c: float = 1.0,
              ) -> tuple[np.ndarray, np.ndarray]:
    """One L2-regularised logistic regression per finding on the embeddings, all at once
    (full-batch L-BFGS; the penalty 1/(2C)||w||^2 against the summed log loss, as sklearn's C).
    x (N, dim), y/known (N, F) -> (w (F, dim), b (F,))."""
    import torch

    torch.manual_seed(0)
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    mt = torch.as_tensor(known, dtype=torch.float64)
    w = torch.zeros((y.shape[1], x.shape[1]), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=200, history_size=20,
                            line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (loss_fn(xt @ w.T + b, yt) * mt).sum() + (w * w).sum() / (2 * c)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def fit(corpus: CorpusLabels, vectors: np.ndarray, *, coverage: float = 0.95,
        k_grid: Sequence[int] = K_GRID, temperatures: Sequence[float] = TEMPERATURE_GRID,
        log: Callable[[str], None] = lambda m: None, oof: dict | None = None,
        names: Sequence[str] = FINDINGS, thresholds: str = "f1",
        heldout: HeldOut = NO_HELDOUT) -> FindingsModel:
    """Leave-one-fold-out CV inside the corpus; see the module docstring. `oof`, if given,
    receives the out-of-fold probabilities ("p") and neighbour positions ("pos"). `names`
    name the columns of the corpus targets (default: FINDINGS, the report's findings; the
    question-answering model passes its answer options). `thresholds`: "f1" (per finding, the
    OOF-F1-best one, for reports) or "accuracy" (0.5 on the calibrated probability, which
    maximises expected accuracy, for yes/no answers). `heldout`: the correction for ECGs the
    encoder never saw (see HeldOut), applied to the OOF probabilities before the thresholds and
    the confidence are fitted on them, as it is to every query's."""
    names = tuple(names)
    t0 = time.perf_counter()
    y, known, groups = corpus.y, corpus.known, corpus.groups
    vectors = np.asarray(vectors, dtype=np.float32)
    folds = sorted(set(groups.tolist()))
    if len(folds) < 2:
        raise ValueError("findings need at least two CV groups in the corpus")
    largest = int(np.unique(groups, return_counts=True)[1].max())
    kmax = max(1, min(max(k_grid), len(vectors) - largest))
    sims, pos = oof_neighbours(vectors, groups, kmax)
    lab = neighbour_label_tensor(y, known, pos)
    scored = [c for c in range(len(names))
              if (y[:, c] & known[:, c]).sum() >= MIN_POSITIVES]
    grid = []
    sup = [names.index(s) for s in ("NORM", "MI", "STTC", "CD", "HYP") if s in names]
    for k in [k for k in k_grid if k <= kmax] or [kmax]:
        for t in temperatures:
            raw = vote(sims[:, :k], lab[:, :k], t)
            aucs = [_auc(y[:, c], raw[:, c], known[:, c]) for c in scored]
            grid.append({"k": k, "temperature": t, "mean_auc": float(np.nanmean(aucs))})
            if len(sup) == 5:
                grid[-1]["superclass_macro_auc"] = macro_auc(y[:, sup], raw[:, sup])[0]
    best = max(grid, key=lambda g: g["mean_auc"])
    k, temp = int(best["k"]), float(best["temperature"])
    zk = logit(vote(sims[:, :k], lab[:, :k], temp))                            # (N, F)
    zp = np.zeros_like(zk)                                                     # OOF probe
    for f in folds:
        tr = groups != f
        w, b = fit_probe(vectors[tr], y[tr], known[tr])
        zp[~tr] = vectors[~tr] @ w.T + b
    probe_w, probe_b = fit_probe(vectors, y, known)
    nf = len(names)
    knn_ab, probe_ab, fused_ab = np.tile([1.0, 0.0], (nf, 1)), np.tile([1.0, 0.0], (nf, 1)), \
        np.tile([1.0, 0.0], (nf, 1))
    thr = np.full(nf, 0.5)
    base_rate = (y & known).sum(0) / np.maximum(known.sum(0), 1)
    per: dict[str, dict] = {}
    p = np.full(zk.shape, 0.5)
    for c, name in enumerate(names):
        m = known[:, c]
        yc = y[m, c].astype(float)
        npos = int(yc.sum())
        per[name] = {"positives": npos, "n": int(m.sum())}
        if npos < 3 or npos == m.sum():
            thr[c] = 1.01 if npos < 3 else 0.0     # never / always: too few to learn from
            continue
        knn_ab[c] = platt(zk[m, c], yc)
        probe_ab[c] = platt(zp[m, c], yc)
        fz = (knn_ab[c, 0] * zk[:, c] + knn_ab[c, 1] + probe_ab[c, 0] * zp[:, c]
              + probe_ab[c, 1]) / 2
        fused_ab[c] = platt(fz[m], yc)
        p[:, c] = heldout.apply(sigmoid(fused_ab[c, 0] * fz + fused_ab[c, 1]), base_rate[c])
        per[name].update({"auc_neighbours": _auc(y[m, c], zk[m, c], None),
                          "auc_probe": _auc(y[m, c], zp[m, c], None),
                          "auc_fused": _auc(y[m, c], p[m, c], None)})
        if thresholds == "accuracy":
            thr[c] = 0.5
        elif npos >= MIN_POSITIVES:
            t, f1 = best_f1_threshold(p[m, c], y[m, c])
            # Stating a finding must beat stating it always; else it is never decided alone.
            always = 2 * npos / (npos + m.sum())
            thr[c] = t if f1 > always and t > p[m, c].min() else 1.01
            per[name].update({"oof_f1": f1, "threshold": float(thr[c])})
        else:
            thr[c] = 0.5
    if oof is not None:
        oof.update(p=p, pos=pos[:, :k], sims=sims[:, :k])
    present = (p >= thr) & known
    nl = len(LABELS) if names[:len(LABELS)] == LABELS else 0
    rows = known[:, :nl].all(1) if nl else np.zeros(len(y), dtype=bool)
    if rows.any():
        ef1 = expected_f1(p[rows, :nl], present[rows, :nl])
        actual = report_f1(present[rows, :nl], y[rows, :nl])
        cx, cy = isotonic_knots(ef1, actual)
        conf = np.interp(ef1, cx, cy)
        abstain_below = float(np.quantile(conf, 1 - coverage)) if coverage < 1 else 0.0
        exact = float((present[rows, :nl] == y[rows, :nl]).all(1).mean())
    else:
        cx, cy, abstain_below, exact = [0.0, 1.0], [0.0, 1.0], 0.0, float("nan")
    fold_auc: dict[str, dict[str, float]] = {}
    for f in folds if len(sup) == 5 else ():
        r = groups == f
        fold_auc[str(f)] = {
            "neighbours": macro_auc(y[r][:, sup], zk[r][:, sup])[0],
            "probe": macro_auc(y[r][:, sup], zp[r][:, sup])[0],
            "fused": macro_auc(y[r][:, sup], p[r][:, sup])[0]}
    summary: dict[str, dict[str, float]] = {}
    for src in ("neighbours", "probe", "fused") if fold_auc else ():
        v = np.array([fa[src] for fa in fold_auc.values()])
        summary[src] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1
                        else 0.0}
    oof_f1 = [v["oof_f1"] for n, v in per.items() if n in LABELS and "oof_f1" in v]
    cv = {"n": int(len(vectors)), "folds": [str(f) for f in folds], "grid": grid,
          "chosen": {"k": k, "temperature": temp, "probe_c": 1.0},
          "superclass_macro_auc_per_fold": fold_auc, "superclass_macro_auc": summary,
          "per_finding": per, "set_exact_rate": exact,
          "oof_label_f1_mean": float(np.mean(oof_f1)) if oof_f1 else float("nan"),
          "fit_s": round(time.perf_counter() - t0, 3)}
    if summary:
        log(f"findings: k={k}, temperature={temp} by leave-one-fold-out CV over {len(folds)} "
            f"folds; superclass AUC fused {summary['fused']['mean']:.3f} "
            f"± {summary['fused']['sd']:.3f} (neighbours {summary['neighbours']['mean']:.3f})")
    return FindingsModel(k, temp, names, knn_ab, probe_w, probe_b, probe_ab, fused_ab, thr,
                         np.asarray(cx), np.asarray(cy), abstain_below, coverage, cv,
                         base_rate=base_rate.astype(np.float64), heldout=heldout)


def _auc(y: np.ndarray, s: np.ndarray, mask: np.ndarray | None) -> float:
    from regen.metrics import roc_auc

    if mask is not None:
        y, s = y[mask], s[mask]
    return roc_auc(y, s)


def superclass_of(label: str) -> str | None:
    return SCP_SUPERCLASS.get(label)


def group_of(split: str | None, patient_id: str | None, key: str, n_groups: int = 8) -> str:
    """The CV group of a corpus record: its split (PTB-XL strat_fold; MIMIC's patient-hash
    fold) when it has one, else a stable hash of its patient (or key) into `n_groups`."""
    if split:
        return str(split)
    import hashlib

    h = hashlib.sha256((patient_id or key).encode()).digest()
    return f"h{h[0] % n_groups}"


def corpus_labels(ids: Sequence[int] | np.ndarray, reports: Sequence[str | None],
                  axes: Sequence[str | None], groups: Sequence[str]) -> CorpusLabels:
    """Targets of a corpus from its report texts (labelled here) and heart-axis codes."""
    from regen.labeller import label_report

    labs = [label_report(r) if r and r.strip() else None for r in reports]
    y, known = target_matrix(labs, axes)
    return CorpusLabels(np.asarray(ids, dtype=np.int64), y, known, np.asarray(groups))


class CorpusView(Protocol):
    """What the fitting reads of a stored corpus record (db.RecordView has it)."""

    @property
    def key(self) -> str: ...
    @property
    def split(self) -> str | None: ...
    @property
    def patient_id(self) -> str | None: ...
    @property
    def reports(self) -> dict[str, str]: ...
    @property
    def labels(self) -> Sequence[tuple[str, str, float | None]]: ...


def report_text(view: CorpusView, language: str) -> str | None:
    """A record's report in `language`, else its original text."""
    return view.reports.get(language) or view.reports.get("orig")


def view_groups(views: Sequence[CorpusView]) -> np.ndarray:
    """The CV group of each record (`group_of`)."""
    return np.array([group_of(v.split, v.patient_id, v.key) for v in views])


def view_labels(ids: Sequence[int] | np.ndarray, views: Sequence[CorpusView],
                language: str) -> CorpusLabels:
    """`corpus_labels` of stored records: their reports, heart-axis notes and CV groups."""
    axes = [next((c for kind, c, _ in v.labels if kind == "axis"), None) for v in views]
    return corpus_labels(ids, [report_text(v, language) for v in views], axes,
                         list(view_groups(views)))


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """np.savez, atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    savez: Any = np.savez          # numpy's stub reads **arrays as its allow_pickle flag
    savez(tmp, **arrays)
    os.replace(tmp, path)


class Targets:
    """A corpus's targets keyed by index id, for voting: y/known (N, F) bool, with each
    record's key and patient (the leakage guard works on them in memory)."""

    def __init__(self, ids: np.ndarray, y: np.ndarray, known: np.ndarray,
                 keys: np.ndarray | None = None, patients: np.ndarray | None = None):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.y, self.known = y, known
        self.keys = keys if keys is not None else self.ids.astype(str)
        self.patients = patients if patients is not None else np.full(len(ids), "", dtype=object)
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[self._order]

    @classmethod
    def of_views(cls, ids: np.ndarray, y: np.ndarray, known: np.ndarray,
                 views: Sequence[CorpusView]) -> Targets:
        return cls(ids, y, known, np.array([v.key for v in views], dtype=str),
                   np.array([v.patient_id or "" for v in views], dtype=str))

    @classmethod
    def load(cls, path: Path) -> Targets:
        arr = np.load(path, allow_pickle=False)
        return cls(arr["ids"], arr["y"], arr["known"], arr["keys"], arr["patients"])

    def save(self, path: Path) -> None:
        save_arrays(path, ids=self.ids, y=self.y, known=self.known, keys=self.keys,
                    patients=np.asarray(self.patients, dtype=str))

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Index ids (any shape) -> row positions, -1 where an id is not in the corpus."""
        if len(self._sorted) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self._sorted, ids), 0, len(self._sorted) - 1)
        return np.where(self._sorted[pos] == ids, self._order[pos], -1)

    def tensor(self, rows: np.ndarray) -> np.ndarray:
        """(M, k) rows -> (M, k, F) float targets, NaN where unknown or no row."""
        lab = neighbour_label_tensor(self.y, self.known, np.maximum(rows, 0))
        lab[rows < 0] = np.nan
        return lab

    def exclude(self, ids: np.ndarray, sims: np.ndarray, k: int,
                own: Sequence[tuple[int | None, str | None]]) -> tuple[np.ndarray, np.ndarray]:
        """(M, K) search results -> (rows (M, k), sims (M, k)) without each query's own record
        and patient; padded with row -1 and similarity -inf when fewer remain."""
        rows = self.rows_of(ids)
        out_r = np.full((len(ids), k), -1, dtype=np.int64)
        out_s = np.full((len(ids), k), -np.inf, dtype=np.float64)
        for q, (rec, patient) in enumerate(own):
            ok = rows[q] >= 0
            if rec is not None:
                ok &= ids[q] != rec
            if patient:
                ok &= self.patients[np.maximum(rows[q], 0)] != patient
            keep = np.flatnonzero(ok)[:k]
            out_r[q, :len(keep)] = rows[q, keep]
            out_s[q, :len(keep)] = sims[q, keep]
        return out_r, out_s
