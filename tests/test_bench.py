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


def test_labeller_readings_loads_the_older_labeller_from_git() -> None:
    import subprocess

    import pytest

    from regen.labeller import label_report

    have = subprocess.run(["git", "-C", str(BENCH.parent), "cat-file", "-e",
                           "05f1619:regen/labeller.py"], capture_output=True)
    if have.returncode:
        pytest.skip("this clone lacks revision 05f1619 (shallow)")
    old = _module("labeller_readings").old_labeller("05f1619")
    text = "sinus rhythm. prolonged pr interval. otherwise normal ecg."
    assert old.label_report(text) == {"SR", "LPR", "NORM"}
    assert label_report(text) == {"SR", "LPR", "1AVB", "CD", "NORM"}
