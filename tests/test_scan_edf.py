"""EDF read by data records (`regen.edf`): the samples against wfdb's own EDF reader and the
WFDB record the file was made from, and `regen scan` of the EDF file against the scan of that
WFDB record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regen.api import Regen
from regen.edf import EDFFile, write_edf
from regen.errors import ECGReadError
from regen.reader import read_ecg
from regen.scan import record_duration_s, scan

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT / "data" / "other" / "mitdb" / "100"
SECONDS = 300


@pytest.fixture(scope="module")
def rg(sample_home: Path):
    with Regen.open(sample_home) as r:
        yield r


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(WFDB record, EDF file): the first 5 minutes of MIT-BIH 100, both leads, 360 Hz."""
    import wfdb

    d = tmp_path_factory.mktemp("edf")
    e = read_ecg(MITDB)
    x = e.signal[:, : SECONDS * 360]
    wfdb.wrsamp("part", fs=360, units=["mV", "mV"], sig_name=list(e.leads),
                p_signal=x.T.astype(np.float64), fmt=["16", "16"],
                adc_gain=[200.0, 200.0], baseline=[1024, 1024], write_dir=str(d))
    # 10-s data records, written 7 s at a time
    write_edf(d / "part.edf", (x[:, a:a + 7 * 360] for a in range(0, x.shape[1], 7 * 360)),
              360.0, e.leads, x.shape[1], gain=200.0, record_s=10.0)
    return d / "part", d / "part.edf"


def test_edf_blocks_read_as_wfdb_reads_them(pair: tuple[Path, Path]) -> None:
    from wfdb.io.convert.edf import read_edf

    rec, edf = pair
    f = EDFFile(edf)
    assert f.fs == 360.0 and f.leads == ("MLII", "V5") and f.n == SECONDS * 360
    assert f.spr == 3600 and f.n_records == SECONDS // 10
    whole = f.read(0, f.n)
    oracle = read_edf(str(edf)).p_signal.T
    # wfdb's EDF reader rounds its ADC offset down by one unit (1/200 mV here): the -0.145 mV
    # first sample of 100 reads -0.150 there; the WFDB record below is the exact oracle
    assert whole.shape == oracle.shape and np.abs(whole - oracle).max() <= 1 / 200 + 1e-5
    assert np.abs(whole - read_ecg(rec).signal).max() < 1e-5      # the samples written
    for a, b in ((0, 1), (3599, 3601), (12_345, 50_000), (f.n - 7, f.n), (f.n - 5, f.n + 99)):
        part = f.read(a, b)
        assert part.shape == (2, min(b, f.n) - a)
        assert np.array_equal(part, whole[:, a:b])
    assert record_duration_s(edf) == SECONDS


def test_scan_of_the_edf_equals_the_scan_of_its_wfdb_record(rg: Regen,
                                                            pair: tuple[Path, Path]) -> None:
    rec, edf = pair
    from_edf = scan(rg, edf, progress=False, chunk_s=37)
    from_wfdb = scan(rg, rec, progress=False)
    assert len(from_edf.windows) == len(from_wfdb.windows) == 59
    for a, b in zip(from_edf.windows, from_wfdb.windows):
        assert (a.start_s, a.unreadable, a.hr_bpm) == (b.start_s, b.unreadable, b.hr_bpm)
        for c, p in a.probabilities.items():
            assert abs(p - b.probabilities[c]) < 1e-3
    assert from_edf.events == from_wfdb.events and from_edf.episodes == from_wfdb.episodes
    assert from_edf.summary == from_wfdb.summary
    assert sum(e.kind == "premature" for e in from_edf.events) >= 3      # 100's APCs


def test_a_truncated_or_foreign_edf_is_a_clear_error(pair: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    _, edf = pair
    cut = tmp_path / "cut.edf"
    cut.write_bytes(edf.read_bytes()[: edf.stat().st_size // 2])
    with pytest.raises(ECGReadError, match="truncated"):
        EDFFile(cut)
    text = tmp_path / "notes.edf"
    text.write_text("this is not an EDF recording\n" * 20)
    with pytest.raises(ECGReadError, match="notes.edf.*is this an EDF file"):
        EDFFile(text)
    gaps = tmp_path / "gaps.edf"
    raw = bytearray(edf.read_bytes())
    raw[192:197] = b"EDF+D"
    gaps.write_bytes(bytes(raw))
    with pytest.raises(ECGReadError, match="EDF\\+D file .*not contiguous"):
        EDFFile(gaps)
    with pytest.raises(ECGReadError, match="no such EDF file"):
        EDFFile(tmp_path / "missing.edf")
