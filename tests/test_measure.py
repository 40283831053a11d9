"""Measurements on real bundled data, checked against reference annotations: MIT-BIH 100's
beat annotations (.atr, read with wfdb), PTB-XL's heart_axis, and the same ECG at two rates."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import resample_poly

from regen import ECG, Measurements, measure, read_ecg
from regen.corpus import load_ptbxl
from regen.measure import FIELDS, measure_windows
from regen.measured import MeasuredFinding, measured_findings

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "ptbxl-sample"
MITDB = DATA / "other" / "mitdb" / "100"
BEATS = set("NLRBAaJSVrFejnE/fQ?")


@pytest.fixture(scope="module")
def mitdb() -> tuple[ECG, np.ndarray, np.ndarray]:
    """The record, its reference beat samples and their symbols."""
    import wfdb

    ann = wfdb.rdann(str(MITDB), "atr")
    keep = [i for i, s in enumerate(ann.symbol) if s in BEATS]
    return read_ecg(MITDB), np.asarray(ann.sample)[keep], np.asarray(ann.symbol)[keep]


def _head(ecg: ECG, seconds: float) -> ECG:
    return ECG(ecg.signal[:, :int(seconds * ecg.fs)], ecg.fs, ecg.leads, ecg.id, ecg.source)


def _matched(ref: np.ndarray, test: np.ndarray, tol: float) -> np.ndarray:
    """Per ref time: whether some test time lies within tol."""
    j = np.clip(np.searchsorted(test, ref), 1, len(test) - 1)
    return np.minimum(np.abs(test[j] - ref), np.abs(test[j - 1] - ref)) <= tol


def test_mitdb_r_peaks_first_five_minutes(mitdb):
    ecg, ref, _ = mitdb
    m = measure(_head(ecg, 300))
    ref_s = ref[ref < 300 * ecg.fs] / ecg.fs
    ours = np.asarray(m.r_peaks_s)
    se = _matched(ref_s, ours, 0.05).mean()
    ppv = _matched(ours, ref_s, 0.05).mean()
    assert len(ref_s) > 350
    assert se >= 0.99 and ppv >= 0.99, (se, ppv)


def test_mitdb_per_minute_heart_rate(mitdb):
    ecg, ref, _ = mitdb
    windows = measure_windows(_head(ecg, 300), window_s=60, step_s=60)
    assert [w.start_s for w in windows] == [0, 60, 120, 180, 240]
    for w in windows:
        beats = ref[(ref >= w.start_s * ecg.fs) & (ref < (w.start_s + 60) * ecg.fs)] / ecg.fs
        ref_hr = 60.0 / np.diff(beats).mean()
        assert w.hr_bpm is not None and abs(w.hr_bpm - ref_hr) < 1.0, (w.start_s, w.hr_bpm,
                                                                       ref_hr)


def test_mitdb_premature_beats_match_the_annotations(mitdb):
    ecg, ref, sym = mitdb
    m = measure(ecg)
    found = {round(b.time_s * ecg.fs): b.kind for b in m.premature_beats}
    times = np.array(sorted(found))
    for label, kind in (("A", "supraventricular"), ("V", "ventricular")):
        want = ref[sym == label]
        hit = _matched(want, times, 0.05 * ecg.fs)
        assert hit.mean() >= 0.9, (label, hit.mean())
        kinds = [found[int(times[np.argmin(np.abs(times - s))])] for s in want[hit]]
        assert kinds.count(kind) >= 0.9 * len(kinds), (label, kinds)
    assert len(m.premature_beats) <= 1.2 * ((sym == "A").sum() + (sym == "V").sum())
    labels = {f.label for f in measured_findings(m) if f.present}
    assert {"PVC", "PAC"} <= labels


def test_axis_against_ptbxl_heart_axis():
    """Unambiguous PTB-XL classes: ALAD (< -30), RAD / ARAD (> +90), MID (normal)."""
    want = {"ALAD": "left", "RAD": "right", "ARAD": "right", "MID": "normal"}
    got = []
    for rec in load_ptbxl(SAMPLE):
        axis = dict(rec.attributes).get("axis")
        if axis in want:
            got.append((want[axis], measure(read_ecg(rec.path)).axis))
    assert len(got) >= 25
    accuracy = sum(a == b for a, b in got) / len(got)
    assert accuracy >= 0.85, got
    assert {"left", "right", "normal"} <= {b for _, b in got}


def test_to_json_is_flat_and_line_is_short():
    m = measure(read_ecg(SAMPLE / "records100" / "00000" / "00033_lr"))
    js = m.to_json()
    assert set(js) == set(FIELDS) | {"n_beats", "quality", "leads_used"}
    json.dumps(js)
    assert all(js["quality"][k] == "ok" for k in FIELDS), js["quality"]
    assert 40 < js["hr_bpm"] < 120 and 60 < js["qrs_ms"] < 120 and 100 < js["pr_ms"] < 220
    assert 300 < js["qt_ms"] < 460 and js["axis"] in ("normal", "left", "right", "extreme")
    assert m.line().startswith(f"HR {m.hr_bpm:.0f} bpm, PR ") and "axis" in m.line()


def test_one_lead_works_and_says_what_it_cannot_measure():
    full = read_ecg(SAMPLE / "records100" / "00000" / "00033_lr")
    one = measure(full.select(["II"]))
    twelve = measure(full)
    assert one.leads_used == ("II",)
    assert one.n_beats == twelve.n_beats and abs(one.hr_bpm - twelve.hr_bpm) < 1
    assert one.qrs_ms is not None and one.axis_deg is None
    assert "aVF" in one.quality["axis_deg"] and one.quality["hr_bpm"] == "ok"


def test_axis_from_two_limb_leads_agrees_with_i_and_avf():
    full = read_ecg(SAMPLE / "records100" / "00000" / "00033_lr")
    a = measure(full).axis_deg
    b = measure(full.select(["II", "III", "V5"])).axis_deg
    assert a is not None and b is not None and abs(a - b) < 15


def test_flat_line_gives_nulls_with_reasons():
    flat = ECG(np.zeros((12, 1000), np.float32), 100.0, tuple(
        "I II III aVR aVL aVF V1 V2 V3 V4 V5 V6".split()), "flat")
    m = measure(flat)
    assert m.n_beats == 0 and m.leads_used == () and m.premature_beats == ()
    assert all(getattr(m, k) is None for k in FIELDS if k != "premature_beats")
    assert set(m.quality) == set(FIELDS) and all("flat" in v for v in m.quality.values())
    assert measured_findings(m) == [] and m.line() == "nothing measurable"


def test_a_flat_or_broken_lead_is_left_out():
    ecg = read_ecg(SAMPLE / "records100" / "00000" / "00033_lr")
    sig = ecg.signal.copy()
    sig[0] = 0.0
    sig[7, 100:200] = np.nan
    m = measure(ECG(sig, ecg.fs, ecg.leads, ecg.id))
    assert ecg.leads[0] not in m.leads_used and ecg.leads[7] not in m.leads_used
    assert len(m.leads_used) == 10 and m.axis_deg is not None    # I derived from II, III


def test_noise_without_beats_does_not_crash():
    rng = np.random.default_rng(0)
    m = measure(ECG(rng.normal(0, 0.001, (1, 200)).astype(np.float32) + 0.0, 100.0, ("II",),
                    "short"))
    assert m.hr_bpm is None or m.n_beats >= 2
    assert set(m.quality) >= {"hr_bpm"}


@pytest.mark.parametrize("rid", ["00155", "00170", "00445", "00465"])
def test_500_and_100_hz_give_consistent_intervals(rid):
    hi = measure(read_ecg(SAMPLE / "records500" / "00000" / f"{rid}_hr"))
    lo = measure(read_ecg(SAMPLE / "records100" / "00000" / f"{rid}_lr"))
    assert hi.n_beats == lo.n_beats and abs(hi.hr_bpm - lo.hr_bpm) < 0.5
    for k, tol in (("pr_ms", 20), ("qrs_ms", 12), ("qt_ms", 20), ("axis_deg", 10)):
        a, b = getattr(hi, k), getattr(lo, k)
        assert a is not None and b is not None and abs(a - b) <= tol, (k, a, b)


def test_resampled_record_keeps_its_intervals():
    """The 500 Hz record brought to 250 Hz with a polyphase filter measures the same."""
    ecg = read_ecg(SAMPLE / "records500" / "00000" / "00170_hr")
    down = ECG(resample_poly(ecg.signal, 1, 2, axis=-1).astype(np.float32), 250.0, ecg.leads,
               ecg.id)
    a, b = measure(ecg), measure(down)
    for k in ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms"):
        assert abs(getattr(a, k) - getattr(b, k)) <= 12, (k, getattr(a, k), getattr(b, k))


def test_p_axis_is_sinus_on_a_normal_ecg_and_turns_with_the_limb_leads():
    """A sinus P wave points down and left (the T axis too, on a normal ECG); the same ECG
    with every limb lead inverted (the frontal vectors turned by 180 degrees) has a P axis in
    the upper right quadrant, which no sinus P wave has: its line says so, and the rate rules
    no longer call it sinus."""
    from regen.measure import NON_SINUS_P, sinus_p_axis

    full = read_ecg(SAMPLE / "records100" / "00000" / "00033_lr")
    m = measure(full)
    assert m.quality["p_axis_deg"] == "ok" and m.p_axis_deg is not None
    assert 0 < m.p_axis_deg < 90 and sinus_p_axis(m.p_axis_deg)
    assert m.quality["t_axis_deg"] == "ok" and 0 < m.t_axis_deg < 90
    assert "P axis" not in m.line()
    limb = [i for i, n in enumerate(full.leads) if n.upper() in ("I", "II", "III", "AVR",
                                                                 "AVL", "AVF")]
    sig = full.signal.copy()
    sig[limb] *= -1
    turned = measure(ECG(sig, full.fs, full.leads, full.id, full.source))
    assert turned.p_axis_deg is not None
    assert abs((turned.p_axis_deg - m.p_axis_deg) % 360 - 180) < 10
    assert NON_SINUS_P[0] <= turned.p_axis_deg <= NON_SINUS_P[1]
    assert "(not sinus)" in turned.line()
    assert m.t_axis_deg is not None and turned.t_axis_deg is not None
    assert abs((turned.t_axis_deg - m.t_axis_deg) % 360 - 180) < 10
    fast = {f.label: f for f in measured_findings(_with(turned, hr_bpm=130.0))}
    assert "STACH" not in fast and "SBRAD" not in fast
    assert not fast["SR"].present and "not a sinus P wave" in fast["SR"].evidence
    assert "SR" not in {f.label for f in measured_findings(m)}
    one = measure(full.select(["V2"]))
    assert one.p_axis_deg is None and "aVF" in one.quality["p_axis_deg"]
    assert one.t_axis_deg is None and "aVF" in one.quality["t_axis_deg"]


def test_measured_findings_follow_the_rules():
    m = measure(read_ecg(SAMPLE / "records100" / "00000" / "00033_lr"))
    base = {f.label: f for f in measured_findings(m)}
    assert all(isinstance(f, MeasuredFinding) and 0 <= f.probability <= 1 for f in base.values())
    assert {"STACH", "SBRAD", "1AVB"} <= set(base)
    fast = _with(m, hr_bpm=130.0)
    stach = next(f for f in measured_findings(fast) if f.label == "STACH")
    assert stach.present and stach.probability > 0.9 and "HR 130 bpm >" in stach.evidence
    slow = _with(m, hr_bpm=40.0)
    assert next(f for f in measured_findings(slow) if f.label == "SBRAD").present
    long_pr = _with(m, pr_ms=280.0)
    avb = next(f for f in measured_findings(long_pr) if f.label == "1AVB")
    assert avb.present and avb.evidence.startswith("PR 280 ms >")
    unmeasured = _with(m, pr_ms=None, quality={**m.quality, "pr_ms": "no P wave"})
    assert "1AVB" not in {f.label for f in measured_findings(unmeasured)}


def _with(m: Measurements, **changes: Any) -> Measurements:
    from dataclasses import replace

    return replace(m, **changes)


def test_ten_second_twelve_lead_is_fast():
    ecg = read_ecg(SAMPLE / "records500" / "00000" / "00155_hr")
    measure(ecg)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        measure(ecg)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.1, times


def test_cli_measure_json_human_and_error():
    from typer.testing import CliRunner

    from regen.cli import app

    rec = str(SAMPLE / "records100" / "00000" / "00033_lr")
    out = CliRunner().invoke(app, ["measure", rec, "--json"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.stdout.splitlines()[0])
    assert row["source"] == rec and row["hr_bpm"] == measure(read_ecg(rec)).hr_bpm
    assert {"label", "probability", "present", "evidence"} == set(row["findings"][0])
    human = CliRunner().invoke(app, ["measure", rec, str(MITDB), "--window", "600"])
    assert human.exit_code == 0 and human.stdout.count("== ") == 1 + 3   # 0, 600, 1200 s
    assert "HR " in human.stdout and "not measured: axis_deg" in human.stdout
    assert "axes: P +" in human.stdout and ", QRS +" in human.stdout and ", T +" in human.stdout
    # the console entry point turns errors into one line and exit code 1
    bad = subprocess.run([sys.executable, "-m", "regen", "measure", "does/not/exist"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: ")
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_api_measure_reads_a_path(sample_home):
    from regen import Regen

    rec = SAMPLE / "records100" / "00000" / "00033_lr"
    with Regen.open(sample_home) as rg:
        assert rg.measure(rec).to_json() == measure(read_ecg(rec)).to_json()


def test_axis_rules_and_a_too_low_rate():
    from regen.errors import ECGReadError

    m = measure(read_ecg(SAMPLE / "records100" / "00000" / "00033_lr"))
    left = {f.label: f for f in measured_findings(_with(m, axis_deg=-60.0))}
    assert left["LAD"].present and not left["RAD"].present
    extreme = {f.label for f in measured_findings(_with(m, axis_deg=-150.0))}
    assert "LAD" not in extreme                      # extreme (northwest), not left
    right = {f.label: f for f in measured_findings(_with(m, axis_deg=130.0))}
    assert right["RAD"].present and right["RAD"].evidence.startswith("QRS axis +130°")
    with pytest.raises(ECGReadError, match="40 Hz; expected 50-10000 Hz"):
        measure(ECG(np.zeros((1, 400), np.float32), 40.0, ("II",), "slow"))


def test_fitting_recovers_a_known_slope_and_stays_in_range():
    from regen.labeller import truth_labels
    from regen.measured import RULES, _fit_1d, fit_params

    rng = np.random.default_rng(0)
    z = rng.uniform(-40, 40, 4000)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-0.2 * z))).astype(float)
    assert abs(_fit_1d(z, y) - 0.2) < 0.03
    recs = load_ptbxl(SAMPLE, folds="1-8")
    ms = [measure(read_ecg(r.path)) for r in recs]
    params = fit_params(ms, [truth_labels(r.scp) | {"LNGQT", "LAD", "RAD"} & set(r.scp)
                             for r in recs])
    for rule in RULES:
        cut, slope = params[rule.label]
        assert rule.search[0] <= cut < rule.search[1] and slope > 0, (rule.label, cut, slope)


def test_line_flags_values_outside_textbook_limits():
    m = measure(read_ecg(SAMPLE / "records100" / "01000" / "01001_lr"))
    plain = replace(m, pr_ms=160.0, qrs_ms=90.0, qt_ms=380.0, qtc_bazett_ms=410.0)
    assert "(" not in plain.line().split("axis")[0]
    assert "PR 230 ms (long)" in replace(plain, pr_ms=230.0).line()
    assert "PR 100 ms (short)" in replace(plain, pr_ms=100.0).line()
    assert "QT/QTc 470/480 ms (QTc long)" in replace(plain, qt_ms=470.0,
                                                      qtc_bazett_ms=480.0).line()
    marked = replace(plain, qrs_ms=150.0, qt_ms=500.0, qtc_bazett_ms=540.0).line()
    assert "QRS 150 ms (wide)" in marked and "(QTc markedly long, wide QRS)" in marked


def test_qtc_is_physiological_on_normal_ecgs_and_long_where_coded():
    """The median QTc of the sample's normal ECGs lies where healthy adults' does (a T end
    placed at the steepest downslope, as before a unit slip was fixed, read ~350 ms), and
    PTB-XL's LNGQT record 743 reads long and is flagged."""
    recs = load_ptbxl(SAMPLE)
    normal = [m.qtc_bazett_ms for r in recs if "NORM" in r.scp
              for m in [measure(read_ecg(r.path))]
              if m.qtc_bazett_ms is not None and m.quality["qt_ms"] == "ok"]
    assert len(normal) > 80 and 370 <= float(np.median(normal)) <= 430, np.median(normal)
    m = measure(read_ecg(next(r.path for r in recs if r.key == "ptbxl:743")))
    assert m.qtc_bazett_ms is not None and m.qtc_bazett_ms > 460 and "(QTc long" in m.line()


def test_a_low_t_wave_gives_an_uncertain_qt_never_a_finding():
    m = measure(read_ecg(SAMPLE / "records100" / "01000" / "01001_lr"))
    low = replace(m, qtc_bazett_ms=520.0, quality={**m.quality, "qt_ms": "uncertain: low T",
                                                   "qtc_bazett_ms": "uncertain: low T"})
    assert "low T wave: QT uncertain" in low.line() and "QTc long" not in low.line()
    assert all(f.label != "LNGQT" or not f.present for f in measured_findings(low))
    sure = replace(low, quality={**m.quality, "qt_ms": "ok", "qtc_bazett_ms": "ok"})
    assert any(f.label == "LNGQT" and f.present for f in measured_findings(sure))


def test_the_line_names_no_supraventricular_premature_beats_without_p_waves():
    m = measure(read_ecg(SAMPLE / "records100" / "00000" / "00722_lr"))     # AFIB, slow
    assert m.quality["pr_ms"] != "ok" and any(
        b.kind == "supraventricular" for b in m.premature_beats)
    assert "supraventricular" not in m.line()
