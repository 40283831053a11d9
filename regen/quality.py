"""Signal quality per lead, measured from the ECG itself: baseline drift, static noise, burst
noise and electrode problems.

Noise belongs to one recording, not to its diagnosis, so the neighbours cannot say whether a
query is noisy; this model looks at the signal. Per lead, six features of the signal at 100 Hz
(baseline wander's spread and range, the median |second difference| that static noise raises,
the loudest 1-s window's second-difference energy over the median window's, the high-passed
amplitude range, and the share of flat samples), the same six averaged over the leads present,
and the lead's identity, feed one logistic regression per noise type. It is fitted on PTB-XL's
per-lead noise annotations (the `baseline_drift`, `static_noise`, `burst_noise` and
`electrodes_problems` columns, e.g. "I-AVF", "V1,V2" or "alles") of the training folds only.

Answers: a lead-specific question reads that lead's probability, a whole-ECG question the
largest over the leads present ("any kind of noises": over the types too), compared with a
threshold per (type, lead-specific or not) chosen on the training folds' ECG-QA questions when
they are given and there are enough of them (else 0.5); see `regen.qa.answer_measured`. A type
with fewer than MIN_POSITIVE_LEADS annotated leads in training (electrode problems: 5 of
17,988 in PTB-XL folds 1-8) is not modelled: questions about it are answered "not sure".

The shipped model is `regen/weights/quality.json`, made by
`regen quality train --data PTBXL --folds 1-8 --ecgqa ECGQA`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from regen.ecg import ECG, STANDARD_LEADS, lead_in
from regen.errors import ConfigError, DataError

NOISE_TYPES = ("baseline drift", "static noise", "burst noise", "electrodes problems")
ANY_NOISE = "any kind of noises"
COLUMNS = {"baseline_drift": "baseline drift", "static_noise": "static noise",
           "burst_noise": "burst noise", "electrodes_problems": "electrodes problems"}
FS = 100.0
N_LEAD_FEATURES = 6
MIN_POSITIVE_LEADS = 20     # fewer annotated leads than this: the type is not modelled
DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "quality.json"
_UPPER = [name.upper() for name in STANDARD_LEADS]


def parse_noise_leads(text: str | None) -> frozenset[int]:
    """PTB-XL's noise cell -> the standard-lead indices it names: "I-AVF" is a range in the
    standard order, "V1,V2" a list, "alles" all leads; "?" marks and blanks are ignored."""
    out: set[int] = set()
    for token in (text or "").replace(" ", "").split(","):
        token = token.strip("?").upper()
        if token in ("ALLES", "ALL"):
            return frozenset(range(len(_UPPER)))
        first, dash, last = token.partition("-")
        if dash and first in _UPPER and last in _UPPER:
            out.update(range(_UPPER.index(first), _UPPER.index(last) + 1))
        elif token in _UPPER:
            out.add(_UPPER.index(token))
    return frozenset(out)


def lead_features(ecg: ECG) -> tuple[np.ndarray, np.ndarray]:
    """(12, 2 * N_LEAD_FEATURES + 12) features and the (12,) mask of leads present."""
    from scipy.ndimage import uniform_filter1d

    from regen.prepare import resample, to_standard_leads

    x, mask = to_standard_leads(ecg)
    x = resample(x, ecg.fs, FS).astype(np.float64)
    if x.shape[1] < 2 * int(FS):
        raise DataError(f"{ecg.source or ecg.id}: {x.shape[1] / FS:.1f} s of signal; signal "
                        "quality needs at least 2 s")
    x = np.nan_to_num(x - np.median(x, axis=1, keepdims=True))
    wander = uniform_filter1d(x, int(FS), axis=1, mode="nearest")
    high = x - wander
    d2 = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    n_win = d2.shape[1] // int(FS)
    win = np.sqrt((d2[:, :n_win * int(FS)].reshape(len(x), n_win, int(FS)) ** 2).mean(-1)) + 1e-6
    own = np.stack([
        np.log(wander.std(1) + 1e-3),
        np.log(np.ptp(wander, 1) + 1e-3),
        np.log(np.median(np.abs(d2), 1) + 1e-5),
        np.log(win.max(1) / np.median(win, 1)),
        np.log(np.percentile(high, 99, 1) - np.percentile(high, 1, 1) + 1e-3),
        (np.abs(np.diff(x, axis=1)) < 1e-4).mean(1),
    ], 1)
    mean = own[mask].mean(0) if mask.any() else np.zeros(N_LEAD_FEATURES)
    feats = np.concatenate([own, np.repeat(mean[None], len(x), 0), np.eye(len(x))], 1)
    return feats.astype(np.float32), mask


@dataclass
class QualityModel:
    """One logistic regression per noise type over standardized lead features."""

    mean: np.ndarray                  # (F,)
    scale: np.ndarray                 # (F,)
    coef: np.ndarray                  # (T, F)
    intercept: np.ndarray             # (T,)
    thresholds: dict[str, float] = field(default_factory=dict)   # "type|lead" / "type|ecg"
    meta: dict[str, Any] = field(default_factory=dict)
    unsupported: tuple[str, ...] = ()       # types too rare in training to model

    @property
    def supported(self) -> tuple[str, ...]:
        return tuple(t for t in NOISE_TYPES if t not in self.unsupported)

    def probabilities(self, ecg: ECG) -> dict[str, dict[str, float]]:
        """noise type -> {lead name: probability} for the leads the ECG has."""
        return self.probabilities_of(*lead_features(ecg))

    def probabilities_of(self, feats: np.ndarray,
                         mask: np.ndarray) -> dict[str, dict[str, float]]:
        """`probabilities` from `lead_features` output: (12, F) features, (12,) mask."""
        z = (feats - self.mean) / self.scale
        p = 1.0 / (1.0 + np.exp(-(z @ self.coef.T + self.intercept)))       # (12, T)
        return {t: {STANDARD_LEADS[i]: float(p[i, j]) for i in np.flatnonzero(mask)}
                for j, t in enumerate(NOISE_TYPES) if t not in self.unsupported}

    def threshold(self, noise: str, lead_specific: bool) -> float:
        return self.thresholds.get(f"{noise}|{'lead' if lead_specific else 'ecg'}", 0.5)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"noise_types": list(NOISE_TYPES), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "thresholds": self.thresholds,
                "unsupported": list(self.unsupported), "meta": self.meta}
        tmp = path.with_name(f".tmp-{path.name}")
        tmp.write_text(json.dumps(body, indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> QualityModel:
        path = Path(path)
        try:
            body = json.loads(path.read_text())
            if tuple(body["noise_types"]) != NOISE_TYPES:
                raise ValueError(f"noise types {body['noise_types']}")
            return cls(np.array(body["mean"], np.float32), np.array(body["scale"], np.float32),
                       np.array(body["coef"], np.float32),
                       np.array(body["intercept"], np.float32),
                       {k: float(v) for k, v in body.get("thresholds", {}).items()},
                       body.get("meta", {}), tuple(body.get("unsupported", ())))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a signal-quality model ({exc}); make one with "
                              "`regen quality train --data PTBXL`") from exc


def noise_score(probs: Mapping[str, Mapping[str, float]], noise: str,
                lead: str | None) -> float | None:
    """The probability a question reads: one lead's, or the largest over the leads present;
    over every modelled type for "any kind of noises". None when the ECG lacks the lead or the
    type is not modelled."""
    types = tuple(probs) if noise == ANY_NOISE else (noise,)
    if any(t not in probs for t in types):
        return None
    vals = [probs[t][lead] if lead else max(probs[t].values(), default=0.0)
            for t in types if lead is None or lead in probs[t]]
    return max(vals) if vals else None


# -- fitting --------------------------------------------------------------------------------

def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression by L-BFGS (intercept not penalized)."""
    from scipy.optimize import minimize

    n, d = x.shape

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w[:d] + w[d]
        p = 1.0 / (1.0 + np.exp(-z))
        nll = np.logaddexp(0.0, z).sum() - (y * z).sum()
        g = p - y
        return (nll + 0.5 * l2 * w[:d] @ w[:d],
                np.concatenate([x.T @ g + l2 * w[:d], [g.sum()]]))

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": 1000})
    return res.x[:d], float(res.x[d])


def fit_quality(data: str | Path, folds: str = "1-8", *, rate: int = 100,
                ecgqa_items: Sequence[Any] = (), progress: bool = False,
                log: Any = lambda m: None) -> QualityModel:
    """Fit on the PTB-XL folder's `folds` (records whose signals exist) and, with ECG-QA items
    about those records, choose each question kind's threshold by accuracy on them."""
    from tqdm import tqdm

    from regen.corpus import load_ptbxl
    from regen.qa_data import record_ecg_id
    from regen.reader import read_ecg

    data = Path(data)
    records = load_ptbxl(data, folds=folds, rate=rate)
    if not records:
        raise DataError(f"{data}: no records with signals in folds {folds}")
    cells = _noise_cells(data / "ptbxl_database.csv")
    feats, labels, masks, ids = [], [], [], []
    for rec in tqdm(records, desc="signal quality", unit="ecg", disable=not progress):
        f, m = lead_features(read_ecg(rec.path))
        ecg_id = record_ecg_id(rec)
        row = cells.get(ecg_id, {})
        labels.append(np.array([[i in parse_noise_leads(row.get(c)) for c in COLUMNS]
                                for i in range(len(STANDARD_LEADS))], dtype=np.float64))
        feats.append(f)
        masks.append(m)
        ids.append(ecg_id)
    x = np.concatenate([f[m] for f, m in zip(feats, masks)]).astype(np.float64)
    y = np.concatenate([lab[m] for lab, m in zip(labels, masks)])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    coef, intercept = np.zeros((len(NOISE_TYPES), x.shape[1])), np.zeros(len(NOISE_TYPES))
    unsupported = []
    for j, name in enumerate(NOISE_TYPES):
        positive = int(y[:, j].sum())
        log(f"{name}: {positive} of {len(y)} leads annotated")
        if positive < MIN_POSITIVE_LEADS:
            unsupported.append(name)
            log(f"{name}: fewer than {MIN_POSITIVE_LEADS} annotated leads; not modelled")
            continue
        coef[j], intercept[j] = _logistic(z, y[:, j])
    model = QualityModel(mean.astype(np.float32), scale.astype(np.float32),
                         coef.astype(np.float32), intercept.astype(np.float32),
                         meta={"data": f"PTB-XL folds {folds} at {rate} Hz: {len(records)} "
                                       f"ECGs, {len(y)} leads"},
                         unsupported=tuple(unsupported))
    if ecgqa_items:
        model.thresholds = choose_thresholds(model, dict(zip(ids, zip(feats, masks))),
                                             ecgqa_items)
        model.meta["thresholds_from"] = f"{len(ecgqa_items)} ECG-QA noise questions, folds {folds}"
    return model


def _noise_cells(csv_path: Path) -> dict[int, dict[str, str]]:
    with csv_path.open(newline="", encoding="utf-8") as fh:
        return {int(float(r["ecg_id"])): {c: r.get(c, "") for c in COLUMNS}
                for r in csv.DictReader(fh)}


def question_lead(question: str) -> str | None:
    """"... in lead aVL?" -> "aVL"."""
    return lead_in(question)


MIN_QUESTIONS = 30


def choose_thresholds(model: QualityModel,
                      feats_by_id: Mapping[int, tuple[np.ndarray, np.ndarray]],
                      items: Iterable[Any]) -> dict[str, float]:
    """Per (noise type, lead-specific or whole-ECG): the threshold with the best accuracy on
    ECG-QA single-verify noise questions (ties: the one nearest 0.5). A kind with fewer than
    MIN_QUESTIONS questions keeps 0.5: too few to choose from, and 0.5 rarely says yes."""
    groups: dict[str, list[tuple[float, bool]]] = {}
    for it in items:
        if it.question_type != "single-verify" or it.attribute_type != "noise":
            continue
        found = feats_by_id.get(it.ecg_ids[0])
        if found is None:
            continue
        probs = model.probabilities_of(*found)
        lead = question_lead(it.question)
        score = noise_score(probs, it.attribute[0], lead)
        if score is not None:
            key = f"{it.attribute[0]}|{'lead' if lead else 'ecg'}"
            groups.setdefault(key, []).append((score, tuple(it.answer) == ("yes",)))
    out = {}
    for key, rows in sorted(groups.items()):
        if len(rows) < MIN_QUESTIONS:
            continue
        cands = sorted({s for s, _ in rows} | {0.5, 1.01})
        out[key] = float(max(cands, key=lambda c: (sum((s >= c) == y for s, y in rows),
                                                   -abs(c - 0.5))))
    return out
