"""The timeline of a scanned record: heart rate, finding probabilities and unreadable share
along the record, with the episodes shaded (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regen.scan import Scan

COLOURS = {"AFIB": "tab:red", "PVC": "tab:purple", "PAC": "tab:orange", "STACH": "tab:green",
           "SBRAD": "tab:blue"}


def _unit(duration_s: float) -> tuple[float, str]:
    """Seconds per axis unit and its name: minutes up to 2 h, hours beyond."""
    return (3600.0, "hours") if duration_s > 7200 else (60.0, "minutes")


def plot_scan(sc: Scan, path: str | Path, title: str | None = None) -> Path:
    """Write the timeline PNG (or any format matplotlib knows by suffix) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per, unit = _unit(sc.summary.duration_s)
    W = sc.windows
    mid = np.array([(w.start_s + w.end_s) / 2 for w in W]) / per
    hr = np.array([np.nan if w.hr_bpm is None else w.hr_bpm for w in W])
    bad = np.array([w.unreadable for w in W], float)
    fig, axes = plt.subplots(3, 1, figsize=(12, 6.5), sharex=True,
                             gridspec_kw={"height_ratios": [2, 2.4, 0.8]})
    ax_hr, ax_p, ax_q = axes
    ax_hr.plot(mid, hr, lw=0.8, color="black")
    ax_hr.set_ylabel("heart rate (bpm)")
    s = sc.summary
    if s.hr_min_bpm is not None and s.hr_max_bpm is not None:
        ax_hr.set_title(title or f"{Path(sc.source).name}: HR {s.hr_min_bpm:.0f}-"
                        f"{s.hr_max_bpm:.0f} bpm, AF burden {s.af_burden:.1%}, "
                        f"{s.n_sve} SVE, {s.n_ve} VE, unreadable {s.unreadable_share:.1%}",
                        fontsize=10)
    for c, colour in COLOURS.items():
        p = np.array([w.probabilities.get(c, np.nan) for w in W])
        if np.isfinite(p).any():
            ax_p.plot(mid, p, lw=0.8, color=colour, label=c)
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("probability")
    ax_p.legend(loc="upper right", ncol=len(COLOURS), fontsize=8, framealpha=0.8)
    # unreadable share per display bin, so a 24-h record stays legible
    bins = max(1, min(len(W), 400))
    edges = np.linspace(0, s.duration_s / per, bins + 1)
    which = np.clip(np.digitize(mid, edges) - 1, 0, bins - 1)
    share = np.bincount(which, bad, bins) / np.maximum(np.bincount(which, None, bins), 1)
    ax_q.fill_between(edges[:-1], share, step="post", color="grey")
    ax_q.set_ylim(0, 1.05)
    ax_q.set_ylabel("unreadable")
    ax_q.set_xlabel(f"time from start ({unit})")
    for e in sc.episodes:
        for ax in axes:
            ax.axvspan(e.start_s / per, e.end_s / per, color=COLOURS.get(e.finding, "grey"),
                       alpha=0.18, lw=0)
    ax_q.set_xlim(0, s.duration_s / per)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["plot_scan"]
