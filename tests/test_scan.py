"""`regen scan` on real signals: MIT-BIH 100 against its .atr annotations, long records
spliced from the bundled PTB-XL fold-9 ECGs with known labels at known times, and a record
with long flat and disconnected stretches."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regen.api import Regen
from regen.ecg import ECG
from regen.reader import read_ecg
from regen.scan import scan
from regen.splice import Piece, splice

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "data" / "other" / "mitdb" / "100"
SAMPLE = ROOT / "data" / "ptbxl-sample"
TARGETS = {"AFIB", "PVC", "STACH"}


@pytest.fixture(scope="module")
def rg(sample_home: Path):
    with Regen.open(sample_home) as r:
        yield r


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def test_mitdb_100_premature_beats_located_and_no_af(rg: Regen) -> None:
    import wfdb

    ann = wfdb.rdann(str(MITDB), "atr")
    sym = np.array(ann.symbol)
    apc, pvc = ann.sample[sym == "A"] / 360.0, ann.sample[sym == "V"] / 360.0
    assert len(apc) == 33 and len(pvc) == 1
    sc = scan(rg, MITDB, progress=False)
    assert not [e for e in sc.episodes if e.finding == "AFIB"]
    prem = [e for e in sc.events if e.kind == "premature"]
    t = np.array([e.time_s for e in prem])
    near = [np.abs(t - x).min() <= 1.0 for x in apc]
    assert sum(near) >= 25, f"{sum(near)} of 33 APCs within 1 s"
    i = int(np.abs(t - pvc[0]).argmin())
    assert abs(t[i] - pvc[0]) <= 1.0 and prem[i].origin == "ventricular"
    # nothing like 33 extra: false premature beats stay few on a clean sinus record
    assert len(prem) <= 40
    s = sc.summary
    assert s.unreadable_share == 0 and 60 < s.hr_mean_bpm < 90
    assert s.n_ve == 1 and 25 <= s.n_sve <= 40


def _spliced(leads: list[str] | None) -> tuple[ECG, tuple[Piece, ...]]:
    """18 normal fold-9 ECGs with the two AFIB ECGs (722, 1817: a 20-s episode at 60 s) and a
    PVC ECG (796, at 140 s) between them."""
    import pandas as pd

    db = pd.read_csv(SAMPLE / "ptbxl_database.csv", index_col="ecg_id")
    f9 = db[db.strat_fold == 9]
    lab = {int(i): frozenset(ast.literal_eval(s)) for i, s in f9.scp_codes.items()}
    normal = [i for i in lab if "NORM" in lab[i] and lab[i] <= {"NORM", "SR"}]
    ids = normal[:6] + [722, 1817] + normal[6:12] + [796] + normal[12:18]
    ecgs = [read_ecg(SAMPLE / f9.loc[i, "filename_lr"]) for i in ids]
    rec, pieces = splice(ecgs, [lab[i] for i in ids], leads=leads)
    assert [p.start_s for p in pieces if "AFIB" in p.labels] == [60.0, 70.0]
    assert [p.start_s for p in pieces if "PVC" in p.labels] == [140.0]
    return rec, pieces


@pytest.mark.parametrize("leads", [None, ["II"]], ids=["12-lead", "lead-II"])
def test_spliced_ptbxl_episodes_at_the_right_times(rg: Regen, leads: list[str] | None) -> None:
    rec, pieces = _spliced(leads)
    sc = scan(rg, rec, progress=False)
    af_truth = (60.0, 80.0)
    af = [e for e in sc.episodes if e.finding == "AFIB"]
    normal = [(p.start_s, p.end_s) for p in pieces if not p.labels & TARGETS]
    on_af = [w.probabilities["AFIB"] for w in sc.windows
             if w.start_s >= af_truth[0] and w.end_s <= af_truth[1]]
    on_normal = [w.probabilities["AFIB"] for w in sc.windows
                 if any(a <= w.start_s and w.end_s <= b for a, b in normal)]
    # whatever the lead set, the AF windows are more AF-like than any window of a normal ECG
    assert max(on_af) > max(on_normal)
    # ... and so is the measured AF score (rhythm and P waves alone), which each window keeps
    # beside the retrieved probability it was blended with
    score_af = [w.measured["af_score"] or 0.0 for w in sc.windows
                if w.start_s >= af_truth[0] and w.end_s <= af_truth[1]]
    score_normal = [w.measured["af_score"] or 0.0 for w in sc.windows
                    if any(a <= w.start_s and w.end_s <= b for a, b in normal)]
    # (ECG 1817 is only mildly irregular, and on lead II a P-like bump shows: its own score
    # is low there, 722's is high)
    assert max(score_af) > 0.8 > 0.35 > max(score_normal), (score_af, max(score_normal))
    assert np.mean(np.array(score_normal) >= 0.1) <= 0.1
    assert all(set(w.retrieved) == set(w.probabilities) for w in sc.windows)
    # with the measured AF score blended in, lead II alone finds the episode too
    assert any(_overlap((e.start_s, e.end_s), af_truth) >= 5 for e in af), sc.episodes
    pvc_piece = next(p for p in pieces if "PVC" in p.labels)
    span = (pvc_piece.start_s, pvc_piece.end_s)
    by_episode = any(e.finding == "PVC" and _overlap((e.start_s, e.end_s), span) > 0
                     for e in sc.episodes)
    by_beat = any(e.kind == "premature" and e.origin == "ventricular"
                  and span[0] <= e.time_s < span[1] for e in sc.events)
    assert by_episode and by_beat
    # splice points are not episodes: every AFIB/PVC/STACH episode lies on an abnormal piece
    abnormal = [(p.start_s, p.end_s) for p in pieces if p.labels & TARGETS]
    for e in sc.episodes:
        if e.finding in TARGETS:
            assert any(_overlap((e.start_s, e.end_s), a) >= 1 for a in abnormal), e
    assert sc.summary.af_burden < 0.25


def _flat_record(tmp_path: Path) -> Path:
    """MIT-BIH 100: 5 min of signal, 10 min flat line, 2 min disconnected (invalid samples),
    5 min of signal; written as a WFDB record."""
    import wfdb

    e = read_ecg(MITDB)
    fs = int(e.fs)
    sig = e.signal[:, : 12 * 60 * fs].T.astype(np.float64).copy()      # (samples, leads)
    flat = np.full((10 * 60 * fs, 2), 0.01)
    gone = np.full((2 * 60 * fs, 2), np.nan)
    x = np.concatenate([sig[: 5 * 60 * fs], flat, gone, sig[5 * 60 * fs: 10 * 60 * fs]])
    wfdb.wrsamp("flat", fs=fs, units=["mV", "mV"], sig_name=list(e.leads), p_signal=x,
                fmt=["16", "16"], adc_gain=[200.0, 200.0], baseline=[0, 0],
                write_dir=str(tmp_path))
    return tmp_path / "flat"


def test_flat_and_disconnected_hours_are_unreadable_not_episodes(rg: Regen,
                                                                 tmp_path: Path) -> None:
    rec = _flat_record(tmp_path)
    sc = scan(rg, rec, progress=False, chunk_s=120)
    bad = (300.0, 1020.0)
    inside = [w for w in sc.windows if w.start_s >= bad[0] and w.end_s <= bad[1]]
    assert inside and all(w.unreadable for w in inside)
    assert all(not w.unreadable for w in sc.windows if w.end_s <= bad[0] or w.start_s >= bad[1])
    assert abs(sc.summary.unreadable_share - 720 / 1320) < 0.02
    (a, b), = sc.unreadable_spans()
    assert abs(a - bad[0]) <= 5 and abs(b - bad[1]) <= 5
    for e in sc.episodes:
        assert _overlap((e.start_s, e.end_s), (bad[0] + 5, bad[1] - 5)) <= 0, e
    assert not [e for e in sc.events if e.kind == "pause"]
    assert sc.summary.hr_mean_bpm is not None and 60 < sc.summary.hr_mean_bpm < 90


def test_streamed_chunks_equal_the_record_in_memory(rg: Regen, tmp_path: Path) -> None:
    import wfdb

    e = read_ecg(MITDB)
    part = e.signal[:, : 200 * 360].T.astype(np.float64)
    wfdb.wrsamp("part", fs=360, units=["mV", "mV"], sig_name=list(e.leads), p_signal=part,
                fmt=["16", "16"], adc_gain=[200.0, 200.0], baseline=[1024, 1024],
                write_dir=str(tmp_path))
    streamed = scan(rg, tmp_path / "part", progress=False, chunk_s=37)
    whole = scan(rg, read_ecg(tmp_path / "part"), progress=False)
    assert len(streamed.windows) == len(whole.windows) == 39
    for a, b in zip(streamed.windows, whole.windows):
        assert a.start_s == b.start_s and a.hr_bpm == b.hr_bpm
        for c, p in a.probabilities.items():
            assert abs(p - b.probabilities[c]) < 1e-3
    assert streamed.events == whole.events


def test_cli_scan_json_and_timeline(sample_home: Path, tmp_path: Path) -> None:
    import wfdb

    e = read_ecg(MITDB)
    wfdb.wrsamp("short", fs=360, units=["mV", "mV"], sig_name=list(e.leads),
                p_signal=e.signal[:, : 120 * 360].T.astype(np.float64), fmt=["16", "16"],
                adc_gain=[200.0, 200.0], baseline=[1024, 1024], write_dir=str(tmp_path))
    png = tmp_path / "timeline.png"
    proc = subprocess.run([sys.executable, "-m", "regen", "scan", str(tmp_path / "short"),
                           "--json", "--plot", str(png), "--home", str(sample_home)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"summary", "episodes", "windows"} <= set(out)
    assert len(out["windows"]) == 23 and out["summary"]["duration_s"] == 120.0
    w = out["windows"][5]
    assert 10 <= w["measured"]["n_beats"] <= 16 and 60 < w["hr_bpm"] < 95
    assert set(w["probabilities"]) == {"AFIB", "PVC", "PAC", "STACH", "SBRAD"}
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run([sys.executable, "-m", "regen", "scan", str(tmp_path / "none"),
                          "--home", str(sample_home)], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1


def test_pause_inserted_into_mitdb_is_found_with_its_length(rg: Regen) -> None:
    """2.5 s of baseline inserted into MIT-BIH 100 right after a T wave (an arrest of that
    length) -> one pause of RR + 2.5 s at that beat, the longest in the summary."""
    import wfdb

    e = read_ecg(MITDB)
    fs = 360
    ann = wfdb.rdann(str(MITDB), "atr", sampto=200 * fs)
    beats = ann.sample[np.isin(ann.symbol, ["N"])]
    k = int(np.searchsorted(beats, 100 * fs))
    r0, r1 = int(beats[k]), int(beats[k + 1])
    cut = r0 + int(0.45 * fs)                      # after the T wave
    base = np.median(e.signal[:, cut - 20:cut + 20], axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    gap = base + rng.normal(0, 0.005, (2, int(2.5 * fs))).astype(np.float32)
    sig = np.concatenate([e.signal[:, cut - 60 * fs:cut], gap, e.signal[:, cut:cut + 60 * fs]],
                         axis=1)
    sc = scan(rg, ECG(sig, 360.0, e.leads, "paused"), progress=False)
    pauses = [x for x in sc.events if x.kind == "pause"]
    assert len(pauses) == 1
    expect_at = (r0 - (cut - 60 * fs)) / fs
    assert abs(pauses[0].time_s - expect_at) < 0.1
    assert abs(pauses[0].duration_s - ((r1 - r0) / fs + 2.5)) < 0.1
    assert sc.summary.longest_pause_s == pauses[0].duration_s
    assert sc.summary.unreadable_share == 0
