"""The measured atrial-fibrillation score (`regen.measured.af_score`) and how a scan blends it
with the retrieved AFIB probability (`regen.scan.af_probability`): on real bundled PTB-XL ECGs
(12-lead and lead II alone) and on signals built to have or lack a repeating P wave."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_lead_ii

from regen.measure import measure
from regen.measured import AF_FEATURES, AF_WEIGHTS, af_features, af_score, fit_weights
from regen.reader import read_ecg
from regen.scan import AF_BLEND, AF_CUT, af_probability

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"


def _auc(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum())
                 / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def sample_scores() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(score, AFIB?, P consistency) per lead set for the sample's 15 AFIB ECGs and its first
    60 ECGs without AFIB (the sample holds folds 1-9; the weights were fitted on folds 1-8, so
    this checks the score still works, it does not measure it: docs/SCAN.md does)."""
    import pandas as pd

    db = pd.read_csv(SAMPLE / "ptbxl_database.csv", index_col="ecg_id")
    lab = {int(i): frozenset(ast.literal_eval(s)) for i, s in db.scp_codes.items()}
    af = [i for i in lab if "AFIB" in lab[i]]
    other = [i for i in lab if "AFIB" not in lab[i]][:60]
    assert len(af) == 15
    out = {}
    for name, leads in (("12-lead", None), ("lead II", ["II"])):
        s, y, pc = [], [], []
        for i in af + other:
            e = read_ecg(SAMPLE / db.loc[i, "filename_lr"])
            m = measure(e if leads is None else e.select(leads))
            sc = af_score(m)
            s.append(0.0 if sc is None else sc)
            y.append(i in af)
            pc.append(np.nan if m.p_consistency is None else m.p_consistency)
        out[name] = (np.array(s), np.array(y), np.array(pc))
    return out


@pytest.mark.parametrize("name", ["12-lead", "lead II"])
def test_af_score_separates_real_afib_ecgs_on_one_lead_too(sample_scores, name: str) -> None:
    s, y, pc = sample_scores[name]
    assert _auc(s, y) >= 0.95
    assert np.mean(s[y] >= 0.5) >= 0.5 and np.mean(s[~y] >= 0.5) <= 0.05
    # the P wave repeats beat to beat in sinus rhythm, not in atrial fibrillation
    assert np.nanmedian(pc[y]) < 0.7 < 0.85 < np.nanmedian(pc[~y])


def test_af_score_needs_an_irregular_rhythm_without_a_repeating_p_wave() -> None:
    rng = np.random.default_rng(1)
    regular = np.full(11, 0.8)
    irregular = rng.uniform(0.45, 1.05, 14)
    sinus = measure(synthetic_lead_ii(regular, True))
    af = measure(synthetic_lead_ii(irregular, False))
    assert sinus.p_consistency is not None and sinus.p_consistency > 0.9
    assert af.p_consistency is not None and af.p_consistency < 0.6
    s_sinus, s_af = af_score(sinus), af_score(af)
    assert s_sinus is not None and s_af is not None
    assert s_sinus < 0.05 and s_af > 0.7
    # irregular but with a P wave before every beat (sinus arrhythmia, PACs): below AF
    s_irr_p = af_score(measure(synthetic_lead_ii(irregular, True)))
    assert s_irr_p is not None and s_irr_p < s_af and s_irr_p < 0.5
    # too few beats to say
    assert af_score(measure(synthetic_lead_ii(np.array([0.8, 0.8]), True))) is None


def test_af_features_and_weights_agree() -> None:
    assert len(AF_WEIGHTS) == len(AF_FEATURES) + 1
    x = af_features(measure(synthetic_lead_ii(np.full(11, 0.8), True)))
    assert x is not None and x.shape == (len(AF_FEATURES),)
    assert x[AF_FEATURES.index("no_p_wave")] == 0.0


def test_fit_af_recovers_a_logistic() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2)) * [1.0, 10.0]
    true = np.array([2.0, -0.3, 0.5])
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x @ true[:2] + true[2])))).astype(float)
    w = np.array(fit_weights(x, y, l2=0.01))
    assert np.allclose(w, true, atol=0.25), w


def test_af_probability_blends_on_each_cut_off() -> None:
    thr = 0.3
    # a regular rhythm is never AF; without a score, or at blend 0, the retrieved one stands
    assert af_probability(0.9, thr, 0.9, 0.01) == 0.0
    assert af_probability(0.4, thr, None, 0.2) == 0.4
    assert af_probability(0.4, thr, 0.01, 0.2, blend=0.0) == 0.4
    # both at their cut-offs -> the retrieved threshold; the score alone at blend 1
    assert math.isclose(af_probability(thr, thr, AF_CUT, 0.2), thr, rel_tol=1e-9)
    at1 = af_probability(0.05, thr, 0.9, 0.2, blend=1.0, cut=0.5)
    assert at1 > thr and math.isclose(at1, 1 / (1 + (1 - thr) / thr / 9), rel_tol=1e-6)
    # rises with either input
    lo, hi = af_probability(0.35, thr, 0.1, 0.2), af_probability(0.35, thr, 0.9, 0.2)
    assert (lo < hi) if AF_BLEND > 0 else (lo == hi)
    assert af_probability(0.2, thr, 0.5, 0.2) < af_probability(0.6, thr, 0.5, 0.2) or \
        AF_BLEND >= 1


def _windows(p_af: list[float], thr: float = 0.3) -> list:
    from regen.scan import Window

    out = []
    for i, p in enumerate(p_af):
        a = 5.0 * i
        out.append(Window(a, a + 10, False, (a + 2.5, a + 7.5), {"AFIB": p, "PVC": p},
                          {"AFIB": thr, "PVC": thr}))
    return out


def test_af_episodes_follow_their_own_rule() -> None:
    from regen.scan import merge

    w = _windows([0.0, 0.0, 0.9, 0.0, 0.0, 0.5, 0.2, 0.5, 0.0])
    one = merge(w, ["AFIB", "PVC"], af_rule=(0.5, 1))
    assert [(e.finding, e.start_s, e.end_s) for e in one if e.finding == "AFIB"] == \
        [("AFIB", 12.5, 17.5), ("AFIB", 27.5, 42.5)]
    # PVC keeps MIN_WINDOWS 2: its lone window is no episode
    assert [(e.start_s, e.end_s) for e in one if e.finding == "PVC"] == [(27.5, 42.5)]
    # needing two windows drops the lone AF window; OFF 1.0 cuts the dip at 0.2
    assert [(e.start_s, e.end_s) for e in merge(w, ["AFIB"], af_rule=(0.5, 2))] == \
        [(27.5, 42.5)]
    assert [(e.start_s, e.end_s) for e in merge(w, ["AFIB"], af_rule=(1.0, 1))] == \
        [(12.5, 17.5), (27.5, 32.5), (37.5, 42.5)]


def test_no_supraventricular_premature_beats_are_counted_inside_af() -> None:
    import numpy as np

    from regen.scan_events import BeatEvent, Episode, summarise

    eps = [Episode("AFIB", 10.0, 40.0, 0.9, 0.8)]
    events = [BeatEvent(5.0, "premature", "supraventricular"),
              BeatEvent(20.0, "premature", "supraventricular"),
              BeatEvent(25.0, "premature", "ventricular")]
    core = np.arange(0.0, 60.0, 10.0)
    s = summarise(60.0, core, core + 10.0, np.ones(6, bool), np.full(6, 80.0), eps, events)
    assert s.n_sve == 1 and s.n_ve == 1 and s.af_burden == 0.5
