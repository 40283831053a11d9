"""The benchmarks score with the metrics regen's evals use, not copies of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from regen.labeller import label_f1

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _module(name: str):  # noqa: ANN202 - a script loaded by path
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_report_quality_label_f1_is_the_eval_reports() -> None:
    bench = _module("report_quality")
    # classes absent from both sides are not scored (its own copy counted them as F1 0: 0.2)
    pred = [("NORM",), ("MI", "STTC"), ()]
    true = [("NORM",), ("MI",), ("CD",)]
    want = label_f1([frozenset(p) for p in pred], [frozenset(t) for t in true],
                    labels=("NORM", "MI", "STTC", "CD", "HYP")).macro_f1
    assert bench.macro_f1(pred, true) == want
    assert bench.macro_f1([("NORM",)], [("NORM",)]) == 1.0
