"""Eval plots people can read: labels grouped into per-superclass panels (each label once),
the headline metrics beside every baseline, retrieval as curves over k; every picture at most
2400 px wide. The retrieval figures come from a real eval on the bundled sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regen import load_settings
from regen.corpus import SUPERCLASSES
from regen.eval_plots import label_panels, report_figure, retrieval_figure
from regen.evalout import write
from regen.evaluate import eval_retrieval
from regen.labeller import LABELS

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
BASELINES = ("consensus", "retrieval_top1", "random", "most_frequent", "raw_signal_nn",
             "label_oracle")


def png_size(path: Path) -> tuple[int, int]:
    import matplotlib.image

    h, w = matplotlib.image.imread(path).shape[:2]
    return w, h


def test_every_label_is_in_exactly_one_panel_under_its_superclass():
    panels = label_panels()
    assert list(panels)[:5] == list(SUPERCLASSES)
    placed = [lab for labs in panels.values() for lab in labs]
    assert sorted(placed) == sorted(LABELS)
    assert {"IMI", "ASMI"} <= set(panels["MI"]) and "LVH" in panels["HYP"]
    assert {"CLBBB", "CRBBB", "1AVB"} <= set(panels["CD"]) and "AFIB" in panels["rhythm"]
    assert all(labs[0] == sup for sup, labs in panels.items() if sup in SUPERCLASSES)


def fake_report_result(seed: int = 0) -> dict:
    """The shape `eval_report` returns (scores are made up: this tests the drawing)."""
    rng = np.random.default_rng(seed)

    def scores() -> dict:
        return {"bleu1": rng.random(), "bleu4": rng.random(), "rouge_l": rng.random(),
                "meteor": rng.random(), "cider": 3 * rng.random(),
                "label_f1_macro": rng.random(),
                "label_f1_per_class": {c: float(rng.random()) for c in LABELS}}

    return {"task": "report", "refiner": "findings", "language": "en", "k": 10,
            "corpus_folds": "1-8", "query_folds": "9", "n": 60, "n_corpus": 240,
            "abstained": 3, **scores(), "baselines": {b: scores() for b in BASELINES},
            "label_support": {c: i for i, c in enumerate(LABELS)}}


def test_the_report_plot_has_headline_and_superclass_panels_and_fits(tmp_path):
    result = fake_report_result()
    fig = report_figure(result)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0].startswith("Headline metrics") and titles[1].startswith("CIDEr")
    assert [t.split(":")[0] for t in titles[2:]] == list(label_panels())
    mi = fig.axes[2 + list(label_panels()).index("MI")]
    assert [t.get_text() for t in mi.get_yticklabels()] == [
        f"{c} (n={LABELS.index(c)})" for c in label_panels()["MI"]]      # with its support
    assert len(mi.patches) == len(label_panels()["MI"]) * (1 + len(BASELINES))
    result.pop("findings", None)
    paths = write(result, tmp_path)
    w, h = png_size(tmp_path / "report.png")
    assert tmp_path / "report.png" in paths and 1000 < w <= 2400 and 800 < h <= 2400


@pytest.fixture(scope="module")
def retrieval(tmp_path_factory):
    return eval_retrieval(load_settings(tmp_path_factory.mktemp("evalhome")), SAMPLE, k=5,
                          factory="Flat")


def test_retrieval_curves_beside_baselines(retrieval):
    c = retrieval["curve"]
    assert c["k"] == [1, 3, 5, 10, 20]
    at = c["k"].index(5)
    assert retrieval["precision_at_k_any_superclass"] == c["regen"]["any_superclass"][at]
    # random retrieval's expectation, computed here from the corpus prevalences another way:
    # a NORM-only query's chance is NORM's prevalence
    per = retrieval["per_superclass_precision_at_k"]
    assert per["NORM"]["random"] == pytest.approx(
        retrieval["corpus_superclass_prevalence"]["NORM"])
    assert retrieval["baselines"]["random"]["precision_at_k_any_superclass"] < \
        retrieval["precision_at_k_any_superclass"]
    assert retrieval["baselines"]["raw_signal_knn"]["precision_at_k_any_superclass"] < \
        retrieval["precision_at_k_any_superclass"]


def test_retrieval_writes_a_plot(retrieval, tmp_path):
    fig = retrieval_figure(retrieval)
    assert len(fig.axes) == 3 and fig.axes[0].get_xscale() == "log"
    assert [len(line.get_xdata()) for line in fig.axes[0].get_lines()[:3]] == [5, 5, 5]
    paths = write(retrieval, tmp_path)
    assert {p.name for p in paths} == {"retrieval.json", "retrieval.md", "retrieval.png"}
    w, h = png_size(tmp_path / "retrieval.png")
    assert 1000 < w <= 2400 and 300 < h <= 1200
    assert "| raw_signal_knn |" in (tmp_path / "retrieval.md").read_text()
