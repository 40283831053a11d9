"""Scores of the findings on query folds: ECE and its sampling floor, risk-coverage."""

from __future__ import annotations

import numpy as np

from regen.eval_findings import ece, ece_if_calibrated, risk_coverage


def test_ece_by_hand():
    p = np.array([0.05, 0.05, 0.95, 0.95])
    y = np.array([False, True, True, True])
    got, rows = ece(p, y)
    # bin 0: mean p 0.05, rate 0.5 -> 0.45 x half; bin 9: 0.95 vs 1.0 -> 0.05 x half
    assert abs(got - (0.45 * 0.5 + 0.05 * 0.5)) < 1e-9
    assert [r["n"] for r in rows] == [2, 2]


def test_a_calibrated_model_sits_under_the_floor_and_a_miscalibrated_one_above():
    rng = np.random.default_rng(3)
    p = rng.beta(0.6, 1.4, 1500)
    floor = ece_if_calibrated(p, draws=200)
    calibrated = rng.random(len(p)) < p
    overconfident = rng.random(len(p)) < np.clip(0.5 + (p - 0.5) * 0.5, 0, 1)
    assert ece(p, calibrated)[0] <= floor["p95"]
    assert ece(p, overconfident)[0] > 2 * floor["p95"]
    # the floor shrinks with more ECGs: few hundred ECGs cannot show a small ECE
    small = ece_if_calibrated(p[:245], draws=200)
    assert small["mean"] > floor["mean"] and 0 < floor["mean"] < floor["p95"]


def test_risk_coverage_keeps_the_most_confident_first():
    conf = np.array([0.9, 0.1, 0.8, 0.2])
    pred = [frozenset({"NORM"}), frozenset({"MI"}), frozenset({"NORM"}), frozenset({"CD"})]
    true = [frozenset({"NORM"}), frozenset({"NORM"}), frozenset({"NORM"}), frozenset({"MI"})]
    curve = risk_coverage(conf, pred, true, steps=2)
    assert [r["coverage"] for r in curve] == [0.5, 1.0]
    assert curve[0]["mean_report_f1"] == 1.0 and curve[1]["mean_report_f1"] == 0.5
    assert curve[0]["min_confidence"] == 0.8
