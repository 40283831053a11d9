"""Eval plots people can read: `eval report` as its headline metrics (regen beside every
baseline) over per-superclass panels of label F1 (each superclass with its own statements,
then rhythm and form statements); `eval retrieval` as precision against k and per superclass.
One colour per system across a figure; at most ~1800 x 1400 px at 110 dpi."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from regen.corpus import SUPERCLASSES
from regen.labeller import LABELS, SCP_SUPERCLASS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

HEADLINE = (("bleu1", "BLEU-1"), ("bleu4", "BLEU-4"), ("rouge_l", "ROUGE-L"),
            ("meteor", "METEOR"), ("bertscore", "BERTScore F1"),
            ("label_f1_macro", "label F1 (macro)"))
RHYTHM = ("SR", "AFIB", "STACH", "SBRAD", "SARRH", "PAC", "PVC", "PACE")
DPI = 110


def label_panels(labels: Sequence[str] = LABELS) -> dict[str, list[str]]:
    """Panel title -> labels: each superclass first with the diagnostic statements PTB-XL files
    under it, then the rhythm statements, then the other form statements."""
    panels: dict[str, list[str]] = {c: [c] for c in SUPERCLASSES}
    rhythm: list[str] = []
    form: list[str] = []
    for lab in labels:
        if lab in SUPERCLASSES:
            continue
        sup = SCP_SUPERCLASS.get(lab)
        if sup in panels:
            panels[sup].append(lab)
        else:
            (rhythm if lab in RHYTHM else form).append(lab)
    return {**panels, "rhythm": rhythm, "form (no superclass)": form}


def _figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI, facecolor="white")


def _colours(names: Sequence[str]) -> dict[str, str]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {n: matplotlib.colors.to_hex(cmap(i % 10)) for i, n in enumerate(names)}


def _hbars(ax: Axes, rows: Sequence[str], series: dict[str, dict[str, float]],
           colours: dict[str, str], xlim: tuple[float, float] = (0, 1),
           names: Sequence[str] | None = None) -> None:
    """Horizontal bars: one group per row (top to bottom), one bar per system; `names`: the
    rows' tick labels (default the rows)."""
    n = len(series)
    height = 0.8 / n
    for i, (name, vals) in enumerate(series.items()):
        y = np.arange(len(rows)) + i * height
        v = [vals.get(r) for r in rows]
        ax.barh(y, [x if isinstance(x, float | int) and x == x else 0 for x in v], height,
                color=colours[name], label=name)
    ax.set_yticks(np.arange(len(rows)) + height * (n - 1) / 2)
    ax.set_yticklabels(names or rows, fontsize=9)
    ax.set_ylim(len(rows) - 0.1, -0.1 - height)
    ax.set_xlim(*xlim)
    ax.grid(axis="x", alpha=0.3)


def plot_report(result: dict, path: Path) -> Path:
    report_figure(result).savefig(path, dpi=DPI)
    return path


def plot_retrieval(result: dict, path: Path) -> Path:
    retrieval_figure(result).savefig(path, dpi=DPI)
    return path


def report_figure(result: dict) -> Figure:
    """Headline metrics (regen and its baselines) over label-F1 panels per superclass."""
    systems = {f"regen ({result['refiner']})": result, **result["baselines"]}
    colours = _colours(list(systems))
    metrics = [(k, name) for k, name in HEADLINE if k in result]
    panels = {t: labs for t, labs in label_panels(list(result["label_f1_per_class"])).items()
              if labs}
    fig = _figure(16, 12.5)
    grid = fig.add_gridspec(3, 4, height_ratios=[1.25, 1, 1], hspace=0.42, wspace=0.38,
                            left=0.09, right=0.985, top=0.9, bottom=0.05)
    head = fig.add_subplot(grid[0, :3])
    best = max([r.get(k) or 0.0 for r in systems.values() for k, _ in metrics] + [0.1])
    _hbars(head, [n for _, n in metrics], {s: {n: r.get(k) for k, n in metrics}
                                            for s, r in systems.items()}, colours,
           (0, min(1.0, best * 1.15)))
    head.set_title("Headline metrics (higher is better)", fontsize=11, loc="left")
    cider = fig.add_subplot(grid[0, 3])
    if "cider" in result:
        vals = {s: r.get("cider") for s, r in systems.items()}
        top = max([v for v in vals.values() if isinstance(v, float | int)] + [0.1])
        _hbars(cider, ["CIDEr-D"], {s: {"CIDEr-D": v} for s, v in vals.items()}, colours,
               (0, top * 1.1))
        cider.set_title("CIDEr-D (0-10)", fontsize=11, loc="left")
    else:
        cider.set_axis_off()
    support = result.get("label_support", {})
    for i, (title, labs) in enumerate(list(panels.items())[:7]):
        ax = fig.add_subplot(grid[1 + i // 4, i % 4])
        _hbars(ax, labs, {s: r.get("label_f1_per_class", {}) for s, r in systems.items()},
               colours, names=[f"{c} (n={support[c]})" if c in support else c for c in labs])
        ax.set_title(f"{title}: label F1", fontsize=11, loc="left")
    fig.text(0.765, 0.08, "Label F1: the labels the report\nlabeller reads in each text "
             "against\nthose it reads in the reference.\nn: references stating the label.\n"
             "No bar: F1 0 (or no text and no\nreference states the label).\n"
             "CIDEr-D has its own scale (0-10).", fontsize=9, color="#444444", va="bottom")
    handles, names = head.get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(systems), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.995))
    fig.text(0.5, 0.955, f"regen eval report: folds {result['query_folds']} (n={result['n']}) "
             f"against corpus folds {result['corpus_folds']}, k={result['k']}; label F1 from "
             "the report labeller on each text vs its reference", ha="center", fontsize=9,
             color="#444444")
    return fig


def retrieval_figure(result: dict) -> Figure:
    """Precision against k (any shared superclass; the same set), and per superclass at k."""
    curve = result["curve"]
    systems = {"regen": "regen", "raw_signal_knn": "raw-signal kNN",
               "random": "random corpus record"}
    colours = _colours(list(systems.values()))
    fig = _figure(15, 4.8)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.2]})
    for ax, key, title in ((axes[0], "any_superclass", "share a superclass with the query"),
                           (axes[1], "same_superclasses", "have the same superclass set")):
        for name, label in systems.items():
            ax.plot(curve["k"], curve[name][key], marker="o", ms=4, color=colours[label],
                    label=label, ls="--" if name == "random" else "-")
        ax.set(xscale="log", xlabel="k (neighbours)", ylabel="precision@k", ylim=(0, 1),
               title=f"Neighbours that {title}")
        ax.set_xticks(curve["k"], [str(x) for x in curve["k"]])
        ax.axvline(result["k"], color="0.7", lw=1, ls=":")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=9, loc="lower left")
    per = result["per_superclass_precision_at_k"]
    rows = [f"{c} (n={per[c]['n']})" for c in SUPERCLASSES]
    _hbars(axes[2], rows, {label: {f"{c} (n={per[c]['n']})": per[c][name] for c in SUPERCLASSES}
                           for name, label in systems.items()}, colours)
    axes[2].set_title(f"Per superclass at k={result['k']}: share of neighbours with it",
                      fontsize=10)
    axes[2].set_xlabel("queries with the superclass: share of their k neighbours having it")
    fig.suptitle(f"regen eval retrieval: folds {result['query_folds']} (n={result['n']}) "
                 f"against corpus folds {result['corpus_folds']} (n={result['n_corpus']})",
                 fontsize=11)
    fig.tight_layout()
    return fig


__all__ = ["label_panels", "plot_report", "plot_retrieval", "report_figure", "retrieval_figure"]
