"""Pacemaker spikes (`regen.measure.pacing_spike`, `regen.measured.pacing_finding`) and what a
report states on a paced ECG (`regen.diagnose.PACED_KEEPS`): a real paced PTB-XL record at
500 Hz, the bundled sample's unpaced 500 Hz records, and signals built with and without spikes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from conftest import synthetic_lead_ii

from regen import Regen, measure, read_ecg
from regen.diagnose import PACED_KEEPS
from regen.measure import PACING_SPIKE_MV
from regen.measured import all_findings, pacing_finding

DATA = Path(__file__).resolve().parent.parent / "data"
PACED = DATA / "other" / "ptbxl-paced" / "00385_hr"      # PTB-XL 385, "pacemaker ekg"
SAMPLE_500 = sorted((DATA / "ptbxl-sample" / "records500").glob("*/*_hr.hea"))


def test_a_paced_record_shows_its_spikes() -> None:
    m = measure(read_ecg(PACED))
    assert m.pacing_spike_mv is not None and m.pacing_spike_mv >= 1.5 * PACING_SPIKE_MV
    f = pacing_finding(m)
    assert f is not None and f.present and f.probability > 0.95
    assert "pacemaker" in f.evidence and f in all_findings(m)
    assert "pacing spikes" in m.line()


def test_unpaced_records_show_none() -> None:
    assert len(SAMPLE_500) == 6
    for hea in SAMPLE_500:
        m = measure(read_ecg(hea.with_suffix("")))
        f = pacing_finding(m)
        assert f is not None and not f.present and f.probability < 0.05, (hea.name, f)
        assert "pacing spikes" not in m.line()


def test_spikes_need_a_fast_record() -> None:
    """A 1-ms pulse 40 ms before each QRS: found at 500 Hz; at 100 Hz nothing is claimed either
    way (the spike cannot survive that rate)."""
    rr = np.full(10, 0.8)
    for fs, want in ((500.0, True), (100.0, None)):
        plain = synthetic_lead_ii(rr, True, fs=fs)
        spiked = plain.signal.copy()
        r = np.cumsum(np.concatenate([[0.6], rr]))
        for t in r:
            spiked[0, int(round((t - 0.04) * fs))] += 1.5
        m = measure(replace(plain, signal=spiked))
        f = pacing_finding(m)
        if want is None:
            assert m.pacing_spike_mv is None and f is None
        else:
            assert f is not None and f.present
            unspiked = pacing_finding(measure(plain))
            assert unspiked is not None and not unspiked.present


def test_a_paced_report_states_the_pacing_alone(sample_home: Path) -> None:
    """The sample's corpus has no paced ECG: the pacing is decided from the spikes, nothing read
    from the paced QRS is stated, and as no corpus sentence states a pacemaker, no text is
    suggested (and the reason says so) rather than a text that does not mention it."""
    with Regen.open(sample_home) as rg:
        rep = rg.report(PACED, log=False)
        floor = rg.diagnoser.model.abstain_below
    got = {f.label: f for f in rep.findings}
    assert got["PACE"].present and got["PACE"].source == "measured"
    assert {f.label for f in rep.findings if f.present} <= PACED_KEEPS
    shown = [f for f in rep.findings if f.label not in PACED_KEEPS]
    assert shown and all(not f.assessable and "paced" in f.note for f in shown)
    assert rep.abstained and rep.confidence >= floor
    assert "no corpus sentence states the decided findings" in rep.text
    text = rep.text.lower()
    assert "sinus" not in text and "bundle branch" not in text
