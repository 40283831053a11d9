"""Signal quality per lead, measured from the ECG itself: baseline drift, static noise, burst
noise and electrode problems.

Noise belongs to one recording, not to its diagnosis, so the neighbours cannot say whether a
query is noisy; this model looks at the signal. Per lead, six features of the signal at 100 Hz
(baseline wander's spread and range, the median |second difference| that static noise raises,
the loudest 1-s window's second-difference energy over the median window's, the high-passed
amplitude range, and the share of flat samples). PTB-XL's annotators mark noise per ECG more
than per lead (static noise is mostly "I-AVR", "I-AVF" or "alles"; a lead range, not the leads
one by one), so each lead also sees its ECG: the six averaged and maximised over the leads
present, averaged over its own group (limb or chest leads), and its own minus the ECG's mean;
with the lead's identity, 42 features. One logistic regression per head (each noise type, and
"any kind of noises" in that lead, which PTB-XL's columns give directly) is fitted on PTB-XL's
per-lead noise annotations (the `baseline_drift`, `static_noise`, `burst_noise` and
`electrodes_problems` columns, e.g. "I-AVF", "V1,V2", "v5-6" or "alles") of the training folds
only, with a strong L2 penalty (L2; chosen by leave-one-fold-out CV in folds 1-8,
bench/noise_cv.py).

Answers: a lead-specific question reads that lead's probability, a whole-ECG question the
largest over the leads present ("any kind of noises": its own head), compared with a
threshold per (type, lead-specific or not) chosen on the training folds' ECG-QA questions when
they are given and there are enough of them (else 0.5); see `regen.qa.answer_measured`. A type
with fewer than MIN_POSITIVE_LEADS annotated leads in training (electrode problems: 6 of
17,988 in PTB-XL folds 1-8) is not modelled: a question about it gets the usual answer of its
kind among the training folds' ECG-QA questions (`QualityModel.prior`), marked as not measured,
or "not sure" when there were none.

The shipped model is `regen/weights/quality.json`, made by
`regen quality train --data PTBXL --folds 1-8 --ecgqa ECGQA`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from regen.ecg import ECG, STANDARD_LEADS, lead_in
from regen.errors import ConfigError, DataError
from regen.metrics import fit_logistic

NOISE_TYPES = ("baseline drift", "static noise", "burst noise", "electrodes problems")
ANY_NOISE = "any kind of noises"
COLUMNS = {"baseline_drift": "baseline drift", "static_noise": "static noise",
           "burst_noise": "burst noise", "electrodes_problems": "electrodes problems"}
FS = 100.0
N_LEAD_FEATURES = 6
N_FEATURES = 5 * N_LEAD_FEATURES + 12
HEADS = NOISE_TYPES + (ANY_NOISE,)
FORMAT = 2                  # 2: context features and the "any kind of noises" head
L2 = 300.0                  # penalty; CV over {1, 30, 300} in folds 1-8 (bench/noise_cv.py)
MIN_POSITIVE_LEADS = 20     # fewer annotated leads than this: the type is not modelled
DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "quality.json"
_UPPER = [name.upper() for name in STANDARD_LEADS]


def parse_noise_leads(text: str | None) -> frozenset[int]:
    """PTB-XL's noise cell -> the standard-lead indices it names: "I-AVF" is a range in the
    standard order, "V1,V2" a list, "v5-6" and "V2,3" chest leads written short, "AVL.AVF" a
    list with a dot, "alles"/"alle" all leads, "Kontaktprobleme aVL ???" the lead among words;
    "?" marks, words ("mittel", "stark": a grade, no lead) and blanks are ignored."""
    out: set[int] = set()
    chest = False              # the last lead named was a chest lead: a bare "3" means V3
    for token in re.split(r"[,.\s]+", (text or "").upper()):
        token = token.strip("?")
        if token in ("ALLES", "ALLE", "ALL"):
            return frozenset(range(len(_UPPER)))
        first, dash, last = token.partition("-")
        if dash and first.startswith("V") and last.isdigit():
            last = f"V{last}"
        if dash and first in _UPPER and last in _UPPER:
            out.update(range(_UPPER.index(first), _UPPER.index(last) + 1))
            chest = last.startswith("V")
        elif token in _UPPER:
            out.add(_UPPER.index(token))
            chest = token.startswith("V")
        elif token.isdigit() and chest and f"V{token}" in _UPPER:
            out.add(_UPPER.index(f"V{token}"))
    return frozenset(out)


def lead_features(ecg: ECG) -> tuple[np.ndarray, np.ndarray]:
    """(12, N_FEATURES) features and the (12,) mask of leads present."""
    from regen.prepare import resample, to_standard_leads

    x, mask = to_standard_leads(ecg)
    x = resample(x, ecg.fs, FS).astype(np.float64)
    if x.shape[1] < 2 * int(FS):
        raise DataError(f"{ecg.source or ecg.id}: {x.shape[1] / FS:.1f} s of signal; signal "
                        "quality needs at least 2 s")
    return signal_features(x, mask), mask


def signal_features(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(12, T) standard leads at FS Hz (mV; absent leads any value) and the (12,) mask of those
    present -> (12, N_FEATURES) float32: each lead's own features, then its ECG's (mean and max
    over the leads present, mean over the lead's group: limb I-aVF or chest V1-V6), its own
    minus the ECG's mean, and the lead's one-hot identity."""
    x = np.nan_to_num(x - np.median(x, axis=1, keepdims=True))
    own = _own_features(x)                                              # (12, 6)
    present = mask if mask.any() else np.ones(len(x), bool)
    mean, top = own[present].mean(0), own[present].max(0)
    limb = np.arange(len(x)) < 6
    group = np.empty_like(own)
    for part in (limb, ~limb):
        inside = present & part
        group[part] = own[inside].mean(0) if inside.any() else mean
    feats = np.concatenate([own, np.broadcast_to(mean, own.shape), np.broadcast_to(top, own.shape),
                            group, own - mean, np.eye(len(x))], 1)
    return feats.astype(np.float32)


def _own_features(x: np.ndarray) -> np.ndarray:
    """(12, T) at FS Hz, median removed -> (12, N_LEAD_FEATURES) per-lead noise features."""
    from scipy.ndimage import uniform_filter1d

    wander = uniform_filter1d(x, int(FS), axis=1, mode="nearest")
    high = x - wander
    d2 = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    n_win = d2.shape[1] // int(FS)
    win = np.sqrt((d2[:, :n_win * int(FS)].reshape(len(x), n_win, int(FS)) ** 2).mean(-1)) + 1e-6
    return np.stack([
        np.log(wander.std(1) + 1e-3),
        np.log(np.ptp(wander, 1) + 1e-3),
        np.log(np.median(np.abs(d2), 1) + 1e-5),
        np.log(win.max(1) / np.median(win, 1)),
        np.log(np.percentile(high, 99, 1) - np.percentile(high, 1, 1) + 1e-3),
        (np.abs(np.diff(x, axis=1)) < 1e-4).mean(1),
    ], 1)


@dataclass
class QualityModel:
    """One logistic regression per head (HEADS: the noise types, then "any kind of noises")
    over standardized `signal_features`."""

    mean: np.ndarray                  # (F,)
    scale: np.ndarray                 # (F,)
    coef: np.ndarray                  # (H, F)
    intercept: np.ndarray             # (H,)
    thresholds: dict[str, float] = field(default_factory=dict)   # "type|lead" / "type|ecg"
    meta: dict[str, Any] = field(default_factory=dict)
    unsupported: tuple[str, ...] = ()       # heads too rare in training to model
    # "type|lead" / "type|ecg" -> (share of "yes", n) among the training folds' ECG-QA questions
    priors: dict[str, tuple[float, int]] = field(default_factory=dict)

    @property
    def supported(self) -> tuple[str, ...]:
        return tuple(t for t in NOISE_TYPES if t not in self.unsupported)

    def probabilities(self, ecg: ECG) -> dict[str, dict[str, float]]:
        """head (noise type, or "any kind of noises") -> {lead name: probability} for the leads
        the ECG has; heads not modelled are left out."""
        return self.probabilities_of(*lead_features(ecg))

    def probabilities_of(self, feats: np.ndarray,
                         mask: np.ndarray) -> dict[str, dict[str, float]]:
        """`probabilities` from `lead_features` output: (12, F) features, (12,) mask."""
        z = (feats - self.mean) / self.scale
        p = 1.0 / (1.0 + np.exp(-(z @ self.coef.T + self.intercept)))       # (12, H)
        return {t: {STANDARD_LEADS[i]: float(p[i, j]) for i in np.flatnonzero(mask)}
                for j, t in enumerate(HEADS) if t not in self.unsupported}

    def threshold(self, noise: str, lead_specific: bool) -> float:
        return self.thresholds.get(f"{noise}|{'lead' if lead_specific else 'ecg'}", 0.5)

    def prior(self, noise: str, lead_specific: bool) -> tuple[float, int] | None:
        """(share of "yes", n) among the training folds' ECG-QA questions of this kind; None
        when there were none."""
        return self.priors.get(f"{noise}|{'lead' if lead_specific else 'ecg'}")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"format": FORMAT, "heads": list(HEADS), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "thresholds": self.thresholds,
                "priors": {k: list(v) for k, v in self.priors.items()},
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
            if body.get("format") != FORMAT or tuple(body["heads"]) != HEADS:
                raise ValueError(f"format {body.get('format', 1)}, heads "
                                 f"{body.get('heads', body.get('noise_types'))}; this version "
                                 f"reads format {FORMAT} with heads {list(HEADS)}")
            model = cls(np.array(body["mean"], np.float32), np.array(body["scale"], np.float32),
                        np.array(body["coef"], np.float32),
                        np.array(body["intercept"], np.float32),
                        {k: float(v) for k, v in body.get("thresholds", {}).items()},
                        body.get("meta", {}), tuple(body.get("unsupported", ())),
                        {k: (float(v[0]), int(v[1])) for k, v in body.get("priors", {}).items()})
            if model.coef.shape != (len(HEADS), N_FEATURES):
                raise ValueError(f"coef of shape {model.coef.shape}; expected "
                                 f"{(len(HEADS), N_FEATURES)}")
            return model
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f"{path}: not a signal-quality model ({exc}); make one with "
                              "`regen quality train --data PTBXL`") from exc


def noise_score(probs: Mapping[str, Mapping[str, float]], noise: str,
                lead: str | None) -> float | None:
    """The probability a question reads: one lead's, or the largest over the leads present.
    "any kind of noises" reads its own head, or (probabilities without it) the largest over
    the modelled types. None when the ECG lacks the lead or the type is not modelled."""
    if noise == ANY_NOISE and ANY_NOISE not in probs:
        types: tuple[str, ...] = tuple(probs)
    else:
        types = (noise,)
    if not types or any(t not in probs for t in types):
        return None
    vals = [probs[t][lead] if lead else max(probs[t].values(), default=0.0)
            for t in types if lead is None or lead in probs[t]]
    return max(vals) if vals else None


# -- fitting --------------------------------------------------------------------------------

def fit_quality(data: str | Path, folds: str = "1-8", *, rate: int = 100,
                ecgqa_items: Sequence[Any] = (), l2: float = L2, progress: bool = False,
                log: Any = lambda m: None) -> QualityModel:
    """Fit on the PTB-XL folder's `folds` (records whose signals exist) and, with ECG-QA items
    about those records, choose each question kind's threshold by accuracy on them and keep
    each kind's share of "yes" (the prior for a type the model cannot measure)."""
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
        lab = np.array([[i in parse_noise_leads(row.get(c)) for c in COLUMNS]
                        for i in range(len(STANDARD_LEADS))], dtype=np.float64)
        labels.append(np.concatenate([lab, lab.max(1, keepdims=True)], 1))    # (12, H)
        feats.append(f)
        masks.append(m)
        ids.append(ecg_id)
    x = np.concatenate([f[m] for f, m in zip(feats, masks)]).astype(np.float64)
    y = np.concatenate([lab[m] for lab, m in zip(labels, masks)])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    coef, intercept = np.zeros((len(HEADS), x.shape[1])), np.zeros(len(HEADS))
    unsupported = []
    for j, name in enumerate(HEADS):
        positive = int(y[:, j].sum())
        log(f"{name}: {positive} of {len(y)} leads annotated")
        if positive < MIN_POSITIVE_LEADS:
            unsupported.append(name)
            log(f"{name}: fewer than {MIN_POSITIVE_LEADS} annotated leads; not modelled")
            continue
        coef[j], intercept[j] = fit_logistic(z, y[:, j], l2)
    model = QualityModel(mean.astype(np.float32), scale.astype(np.float32),
                         coef.astype(np.float32), intercept.astype(np.float32),
                         meta={"data": f"PTB-XL folds {folds} at {rate} Hz: {len(records)} "
                                       f"ECGs, {len(y)} leads", "l2": l2},
                         unsupported=tuple(unsupported))
    if ecgqa_items:
        model.thresholds = choose_thresholds(model, dict(zip(ids, zip(feats, masks))),
                                             ecgqa_items)
        model.priors = question_priors(ecgqa_items)
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


def question_priors(items: Iterable[Any]) -> dict[str, tuple[float, int]]:
    """Per (noise type, lead-specific or whole-ECG): the share of "yes" among ECG-QA
    single-verify noise questions, and their number."""
    counts: dict[str, list[bool]] = {}
    for it in items:
        if it.question_type == "single-verify" and it.attribute_type == "noise":
            key = f"{it.attribute[0]}|{'lead' if question_lead(it.question) else 'ecg'}"
            counts.setdefault(key, []).append(tuple(it.answer) == ("yes",))
    return {k: (round(float(np.mean(v)), 4), len(v)) for k, v in sorted(counts.items())}
