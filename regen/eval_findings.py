"""Scoring findings on query folds: calibration (ECE, reliability), decisions (F1) and
selective reporting (risk-coverage), and their plot. Used by `regen eval report`; the findings
model is fitted on the corpus folds only (regen.findings), so nothing here chose anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from regen.labeller import LABELS, label_f1

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error with `bins` equal-width bins: sum over bins of the share of
    ECGs in the bin times |mean probability - observed rate|; and the bins themselves."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out, rows = 0.0, []
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        gap = abs(float(p[m].mean()) - float(y[m].mean()))
        out += gap * m.mean()
        rows.append({"bin": b, "n": int(m.sum()), "mean_p": float(p[m].mean()),
                     "rate": float(y[m].mean())})
    return float(out), rows


def ece_if_calibrated(p: np.ndarray, bins: int = 10, draws: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """The ECE a perfectly calibrated model would still show on these ECGs: outcomes drawn from
    the probabilities themselves (seeded), scored like `ece`. Its mean and 95th percentile are
    the sampling floor an observed ECE on a few hundred ECGs is read against."""
    rng = np.random.default_rng(seed)
    sims = np.array([ece(p, rng.random(len(p)) < p, bins)[0] for _ in range(draws)])
    return {"mean": float(sims.mean()), "p95": float(np.percentile(sims, 95))}


def per_report_f1(pred: frozenset[str], true: frozenset[str]) -> float:
    """F1 of one report's labels against its reference's (1 when both state none)."""
    if not pred and not true:
        return 1.0
    return 2 * len(pred & true) / (len(pred) + len(true))


def risk_coverage(conf: np.ndarray, pred: Sequence[frozenset[str]],
                  true: Sequence[frozenset[str]], steps: int = 10) -> list[dict]:
    """Label F1 (macro and micro over the 29 labels, and the mean per-report F1 that the
    confidence estimates) over the most confident share of reports, for shares 1/steps .. 1.
    Macro F1 on a small confident share is noisy: a label seen once there weighs a 29th."""
    order = np.argsort(-conf, kind="mergesort")
    out = []
    for i in range(1, steps + 1):
        n = max(1, int(round(len(order) * i / steps)))
        keep = order[:n]
        sc = label_f1([pred[j] for j in keep], [true[j] for j in keep])
        out.append({"coverage": n / len(order), "label_f1_macro": sc.macro_f1,
                    "label_f1_micro": sc.micro_f1,
                    "mean_report_f1": float(np.mean([per_report_f1(pred[j], true[j])
                                                     for j in keep])),
                    "min_confidence": float(conf[keep].min())})
    return out


def findings_scores(p: np.ndarray, present: np.ndarray, true: Sequence[frozenset[str]],
                    conf: np.ndarray, abstained: np.ndarray, findings: Sequence[str]) -> dict:
    """p, present (M, F) over `findings`; true: the labeller's labels of each reference; conf,
    abstained (M,) of the reports -> JSON-ready scores."""
    col = {c: i for i, c in enumerate(findings)}
    y = np.array([[c in t for c in LABELS] for t in true])
    calib_ece: dict[str, float] = {}
    calib_bins: dict[str, list[dict]] = {}
    floor: dict[str, dict[str, float]] = {}
    for c in SUPERCLASSES:
        calib_ece[c], calib_bins[c] = ece(p[:, col[c]], y[:, LABELS.index(c)])
        floor[c] = ece_if_calibrated(p[:, col[c]])
    decided = [frozenset(c for c in LABELS if present[i, col[c]]) for i in range(len(true))]
    dec = label_f1(decided, list(true))
    curve = risk_coverage(conf, decided, true)
    answered = ~abstained
    at80 = next(r for r in curve if r["coverage"] >= 0.8 - 1e-9)
    return {"decisions_label_f1_macro": dec.macro_f1,
            "decisions_f1_per_class": {c: round(dec.per_label[c]["f1"], 4) for c in LABELS},
            "ece": {c: round(calib_ece[c], 4) for c in SUPERCLASSES},
            "ece_if_calibrated": {c: {k: round(v, 4) for k, v in floor[c].items()}
                                  for c in SUPERCLASSES},
            "reliability": calib_bins,
            "risk_coverage": curve, "label_f1_at_80pct_coverage": at80["label_f1_macro"],
            "operating_point": {"coverage": float(answered.mean()),
                                "label_f1_macro": label_f1(
                                    [d for d, a in zip(decided, answered) if a],
                                    [t for t, a in zip(true, answered) if a]).macro_f1
                                if answered.any() else float("nan")}}


def plot_findings(scores: dict, path: Path) -> Path:
    """Reliability diagram per superclass and the risk-coverage curve, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    a.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    for c in SUPERCLASSES:
        rows = scores["reliability"][c]
        floor = scores.get("ece_if_calibrated", {}).get(c)
        line, = a.plot([r["mean_p"] for r in rows], [r["rate"] for r in rows], lw=1,
                       label=f"{c} (ECE {scores['ece'][c]:.3f}"
                             + (f"; calibrated {floor['mean']:.3f}" if floor else "") + ")")
        # marker area by the bin's ECGs: a swing in a bin of three ECGs should look small
        a.scatter([r["mean_p"] for r in rows], [r["rate"] for r in rows],
                  s=[6 + 6 * r["n"] ** 0.5 for r in rows], color=line.get_color(), alpha=0.7)
    a.set(xlabel="predicted probability", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1),
          title="Reliability (query folds; marker area: ECGs in the bin)")
    if "ece_if_calibrated" in scores:
        a.text(0.98, 0.02, "calibrated: the mean ECE of a perfectly calibrated\nmodel on "
               "the same ECGs (the sampling floor)", ha="right", va="bottom", fontsize=7,
               color="0.35", transform=a.transAxes)
    a.legend(fontsize=8, loc="upper left")
    curve = scores["risk_coverage"]
    for key, name in (("label_f1_macro", "macro label F1"), ("label_f1_micro", "micro label F1"),
                      ("mean_report_f1", "mean per-report F1 (what confidence estimates)")):
        b.plot([r["coverage"] for r in curve], [r[key] for r in curve], marker="o", ms=4,
               label=name)
    op = scores["operating_point"]
    b.scatter([op["coverage"]], [op["label_f1_macro"]], color="crimson", zorder=3, s=60,
              label=f"operating point ({op['coverage']:.0%} answered)")
    b.axvline(0.8, color="0.7", lw=1, ls=":")
    b.set(xlabel="coverage (share of ECGs reported, most confident first)",
          ylabel="label F1 (29 labels)", xlim=(0, 1.02), ylim=(0, 1), title="Risk-coverage")
    b.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
