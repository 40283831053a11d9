"""Writing eval results: JSON for machines, a markdown table for people, a plot where people
would rather look (per-class bars of the system beside its baselines)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REPORT_COLS = ("bleu1", "bleu4", "rouge_l", "meteor", "cider", "bertscore", "label_f1_macro")


def _fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)


def markdown(result: dict) -> str:
    task = result["task"]
    if task == "report":
        cols = [c for c in REPORT_COLS if c in result]
        rows = [(f"regen ({result['refiner']})", result)]
        rows += [(name, r) for name, r in result["baselines"].items()]
        lines = ["| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        lines += ["| " + name + " | " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |"
                  for name, r in rows]
        head = (f"Report quality, {result['language']}, folds {result['query_folds']} "
                f"(n={result['n']}) against corpus folds {result['corpus_folds']}, "
                f"k={result['k']}; abstained {result['abstained']}.")
        if "bertscore_model" in result:
            head += f" BERTScore model: {result['bertscore_model']}."
        if "latency_s" in result:
            lat = result["latency_s"]
            head += (f" Time per report (retrieval + refinement): p50 {lat['p50']:.3f} s, "
                     f"p90 {lat['p90']:.3f} s, max {lat['max']:.3f} s"
                     + (f" (the model loaded once before, in {result['model_load_s']:.1f} s)"
                        if "model_load_s" in result else "") + ".")
        if "fallback" in result:
            fb = result["fallback"]
            head += (f" Fell back to consensus: {fb['n']} ({fb['share']:.0%}): "
                     + ", ".join(f"{k} {v}" for k, v in fb["reasons"].items()) + ".")
        sup = ("NORM", "MI", "STTC", "CD", "HYP")
        lines += ["", "Superclass F1 of the report text:", "",
                  "| system | " + " | ".join(sup) + " |", "|---" * (len(sup) + 1) + "|"]
        lines += ["| " + name + " | " + " | ".join(
            _fmt(r.get("label_f1_per_class", {}).get(c, "")) for c in sup) + " |"
            for name, r in rows]
        if "codes_f1_macro" in result:
            lines += ["", "Label F1 of the report text against the queries' PTB-XL SCP codes "
                      "(cardiologists' codes; no labeller reads the reference):", "",
                      "| system | macro | " + " | ".join(sup) + " |",
                      "|---" * (len(sup) + 2) + "|"]
            lines += ["| " + name + " | " + _fmt(r.get("codes_f1_macro")) + " | " + " | ".join(
                _fmt(r.get("codes_f1_per_class", {}).get(c, "")) for c in sup) + " |"
                for name, r in rows]
        if "findings" in result:
            f = result["findings"]
            op = f["operating_point"]
            lines += ["", f"Findings ({f['model']['chosen_by']}: k={f['model']['k']}, "
                      f"temperature {f['model']['temperature']}): label F1 of the decisions "
                      f"{_fmt(f['decisions_label_f1_macro'])}; at 80% coverage "
                      f"{_fmt(f['label_f1_at_80pct_coverage'])}; operating point "
                      f"{op['coverage']:.0%} answered, label F1 {_fmt(op['label_f1_macro'])}. "
                      "ECE: " + ", ".join(f"{c} {v:.3f}" for c, v in f["ece"].items()) + "."
                      + ("" if "ece_if_calibrated" not in f else
                         " A perfectly calibrated model's ECE on the same ECGs (outcomes drawn "
                         "from its probabilities; mean / 95th percentile): " + ", ".join(
                             f"{c} {v['mean']:.3f} / {v['p95']:.3f}"
                             for c, v in f["ece_if_calibrated"].items()) + "."),
                      "", f"Abstention: regen {f['model']['rule']}."]
        return head + "\n\n" + "\n".join(lines) + "\n"
    if task == "cv":
        lines = [f"Leave-one-fold-out CV inside corpus folds {result['corpus_folds']} "
                 f"(n={result['n']}): chosen k={result['k']}, temperature "
                 f"{result['temperature']}; abstain below confidence "
                 f"{result['abstain_below']:.3f} ({result['coverage']:.0%} answered).", "",
                 "| k | temperature | mean OOF AUC over findings | superclass macro AUC |",
                 "|---|---|---|---|"]
        lines += [f"| {g['k']} | {g['temperature']} | {g['mean_auc']:.4f} | "
                  f"{_fmt(g.get('superclass_macro_auc', ''))} |" for g in result["grid"]]
        lines += ["", "Superclass macro AUC, out of fold (mean ± sd over folds):", "",
                  "| source | mean | sd |", "|---|---|---|"]
        lines += [f"| {src} | {v['mean']:.4f} | {v['sd']:.4f} |"
                  for src, v in result["superclass_macro_auc"].items()]
        lines += ["", "| finding | positives | AUC neighbours | AUC probe | AUC fused | "
                  "threshold | OOF F1 |", "|---|---|---|---|---|---|---|"]
        for name, v in result["per_finding"].items():
            lines.append(f"| {name} | {v['positives']} | {_fmt(v.get('auc_neighbours', ''))} | "
                         f"{_fmt(v.get('auc_probe', ''))} | {_fmt(v.get('auc_fused', ''))} | "
                         f"{_fmt(v.get('threshold', ''))} | {_fmt(v.get('oof_f1', ''))} |")
        return "\n".join(lines) + "\n"
    if task == "classify":
        cls = list(result["per_class"])
        lines = ["| system | macro AUC | " + " | ".join(cls) + " |",
                 "|---" * (len(cls) + 2) + "|"]
        for name, r in [("regen kNN", result)] + list(result["baselines"].items()):
            lines.append(f"| {name} | {r['macro_auc']:.4f} | "
                         + " | ".join(f"{r['per_class'][c]:.4f}" for c in cls) + " |")
        return (f"kNN classification (k={result['k']}, n={result['n']}), leads "
                f"{','.join(result['leads'])}, noise {result['noise_snr_db']} dB SNR.\n\n"
                + "\n".join(lines) + "\n")
    if task == "qa":
        parts = [f"ECG-QA exact-set-match accuracy (k={result['k']}), questions on folds "
                 f"{result['query_folds']}, answered from folds {result['corpus_folds']}."]
        for part in ("derived", "ecgqa"):
            if part not in result:
                continue
            r = result[part]
            base = r["baselines"].get("majority", {})
            knn = r["baselines"].get("knn_vote", {})
            ctl = r.get("random_ecg_control", {})
            lines = [f"\n**{part}** (n={r['n']}, answered {r['answered']}, skipped "
                     f"{sum(r['skipped'].values())})\n",
                     "| question type | n | regen | abstained | regen, answered only | "
                     "kNN vote (n) | majority answer | regen, random ECG |",
                     "|---|---|---|---|---|---|---|---|"]
            qa_rows = [("overall", r["overall"], knn.get("overall", {}),
                        base.get("overall", {}), ctl.get("overall", {}))]
            qa_rows += [(t, v, knn.get("by_attribute", {}).get(t, {}),
                         base.get("by_attribute", {}).get(t, {}),
                         ctl.get("by_attribute", {}).get(t, {}))
                        for t, v in r["by_attribute"].items()]
            for name, v, kv, b, c in qa_rows:
                knn_cell = (f"{_fmt(kv['accuracy'])} ({kv['n']})" if kv.get("n") else "-")
                lines.append(f"| {name} | {v['n']} | {_fmt(v['accuracy'])} | "
                             f"{_fmt(v['abstained'])} | {_fmt(v.get('answered_accuracy'))} | "
                             f"{knn_cell} | {_fmt(b.get('accuracy', ''))} | "
                             f"{_fmt(c.get('accuracy', '-'))} |")
            if "signal_gap" in r:
                lines.append("\nAccuracy lost when each question is asked about a random "
                             "corpus ECG instead (the signal gap): "
                             + ", ".join(f"{t} {_fmt(g)}" for t, g in
                                         [("overall", r["signal_gap"]["overall"])]
                                         + list(r["signal_gap"]["by_type"].items())) + ".")
            parts.append("\n".join(lines))
        return "\n".join(parts) + "\n"
    if task == "free-form":
        names = [n for n in ("regen", "majority", "random_ecg") if n in result]
        kinds = sorted(result["regen"]["by_kind"])
        lines = [f"Plain-word questions ({result['questions']}, n={result['n']}), answered "
                 f"from corpus folds {result['corpus_folds']}; answered by: "
                 + ", ".join(f"{k} {v}" for k, v in result["answered_by"].items()) + ".", "",
                 "| system | accuracy | not sure | " + " | ".join(kinds) + " |",
                 "|---" * (len(kinds) + 3) + "|"]
        label = {"regen": "regen", "majority": "majority answer per kind",
                 "random_ecg": "regen, random corpus ECG"}
        for n in names:
            r = result[n]
            lines.append(f"| {label[n]} | {_fmt(r['accuracy'])} | {_fmt(r['not_sure'])} | "
                         + " | ".join(_fmt(r["by_kind"].get(k, {}).get("accuracy", ""))
                                      for k in kinds) + " |")
        return "\n".join(lines) + "\n"
    if task == "retrieval" and "baselines" in result:
        systems = [("regen", result), *result["baselines"].items()]
        return (f"Retrieval, folds {result['query_folds']} (n={result['n']}) against corpus "
                f"folds {result['corpus_folds']} (n={result['n_corpus']}), k={result['k']}; "
                f"{result['factory']} recall@k against exact search "
                f"{_fmt(result['recall_at_k_vs_exact'])}.\n\n"
                "| system | precision@k, any shared superclass | same superclass set |\n"
                "|---|---|---|\n"
                + "\n".join(f"| {n} | {_fmt(r['precision_at_k_any_superclass'])} | "
                            f"{_fmt(r['precision_at_k_same_superclasses'])} |"
                            for n, r in systems) + "\n")
    keys = [k for k, v in result.items() if isinstance(v, float | int) and k != "k"]
    return (f"{task} (k={result.get('k')})\n\n| metric | value |\n|---|---|\n"
            + "\n".join(f"| {k} | {_fmt(result[k])} |" for k in keys) + "\n")


def plot(result: dict, path: Path) -> Path | None:
    """report and retrieval: regen.eval_plots; qa and classify: grouped per-class bars
    (accuracy, ROC-AUC)."""
    if result["task"] in ("report", "retrieval") and (
            result["task"] == "report" or "curve" in result):
        from regen.eval_plots import plot_report, plot_retrieval

        return (plot_report if result["task"] == "report" else plot_retrieval)(result, path)
    if result["task"] == "qa":
        r = result["derived"]
        series = {"regen": {t: v["accuracy"] or 0.0 for t, v in r["by_attribute"].items()},
                  "kNN vote": {t: (v["accuracy"] or 0.0) for t, v in
                               r["baselines"]["knn_vote"]["by_attribute"].items()},
                  "majority answer": {t: (v["accuracy"] or 0.0) for t, v in
                                      r["baselines"]["majority"]["by_attribute"].items()}}
        ylabel = "accuracy (derived ECG-QA-style set)"
    elif result["task"] == "classify":
        series = {"regen kNN": result["per_class"]}
        series.update({n: r["per_class"] for n, r in result["baselines"].items()})
        ylabel = "ROC-AUC"
    else:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(next(iter(series.values())))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(classes) * len(series) / 2 + 3), 4))
    for i, (name, vals) in enumerate(series.items()):
        x = np.arange(len(classes)) + i * width
        ax.bar(x, [vals[c] if vals[c] == vals[c] else 0 for c in classes], width, label=name)
    ax.set_xticks(np.arange(len(classes)) + width * (len(series) - 1) / 2)
    ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title(f"regen eval {result['task']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(result: dict, out: str | Path, name: str | None = None) -> list[Path]:
    """OUT/NAME.json, OUT/NAME.md and (where it helps) OUT/NAME.png; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or result["task"]
    paths = [out / f"{name}.json", out / f"{name}.md"]
    paths[0].write_text(json.dumps(result, indent=2, default=float) + "\n")
    paths[1].write_text(markdown(result))
    png = plot(result, out / f"{name}.png")
    paths += [png] if png else []
    if "findings" in result:
        from regen.eval_findings import plot_findings

        paths.append(plot_findings(result["findings"], out / f"{name}-findings.png"))
    return paths
