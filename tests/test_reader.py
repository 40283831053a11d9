"""The reader against wfdb's own values, and every bad input as a named ECGReadError."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import wfdb

from regen.ecg import ECG, STANDARD_LEADS, standard_lead
from regen.errors import ECGReadError
from regen.reader import read_ecg

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "ptbxl-sample"
LR = SAMPLE / "records100" / "00000" / "00095_lr"
HR = SAMPLE / "records500" / "00000" / "00095_hr"
MITDB = DATA / "other" / "mitdb" / "100"
PTBDB = DATA / "other" / "ptbdb" / "s0010_re"
STANDARD_LEADS_AS_PTBXL = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4",
                           "V5", "V6")


def wfdb_oracle(record: Path) -> np.ndarray:
    """(leads, samples) float32 mV as wfdb itself reads the record."""
    return wfdb.rdrecord(str(record)).p_signal.T.astype(np.float32)


# --- good records, checked against wfdb -------------------------------------------------------

@pytest.mark.parametrize("record", [
    LR,
    SAMPLE / "records100" / "00000" / "00028_lr",
    SAMPLE / "records100" / "01000" / "01469_lr",
    HR,
])
def test_ptbxl_record_equals_wfdb(record: Path) -> None:
    ecg = read_ecg(record)
    head = wfdb.rdheader(str(record))
    assert ecg.signal.dtype == np.float32
    np.testing.assert_array_equal(ecg.signal, wfdb_oracle(record))
    assert ecg.fs == head.fs
    assert ecg.leads == tuple(head.sig_name)
    assert ecg.n_samples == head.sig_len
    assert ecg.id == record.name


def test_every_sample_record_equals_wfdb() -> None:
    records = sorted(h.with_suffix("") for h in SAMPLE.glob("records*/*/*.hea"))
    assert len(records) == 306  # 300 at 100 Hz and 6 at 500 Hz
    for rec in records:
        ecg = read_ecg(rec)
        assert np.array_equal(ecg.signal, wfdb_oracle(rec)), rec
        assert ecg.leads == STANDARD_LEADS_AS_PTBXL, rec


def test_ptbxl_500hz_record() -> None:
    ecg = read_ecg(HR)
    assert (ecg.fs, ecg.n_leads, ecg.n_samples) == (500.0, 12, 5000)
    assert ecg.duration_s == pytest.approx(10.0)
    # PTB-XL stores mV with gain 1000: a real ECG has peaks of the order of a millivolt.
    assert 0.2 < float(np.abs(ecg.signal).max()) < 10.0


@pytest.mark.parametrize("suffix", ["", ".hea", ".dat"])
def test_path_with_or_without_extension(suffix: str) -> None:
    ecg = read_ecg(str(LR) + suffix)
    np.testing.assert_array_equal(ecg.signal, wfdb_oracle(LR))
    assert ecg.id == "00095_lr"


def test_mitdb_two_leads_360hz_30min() -> None:
    ecg = read_ecg(MITDB)
    assert ecg.leads == ("MLII", "V5")
    assert ecg.fs == 360.0
    assert ecg.signal.shape == (2, 650000)
    np.testing.assert_array_equal(ecg.signal, wfdb_oracle(MITDB))
    assert "Aldomet" in ecg.meta["comments"]


def test_ptbdb_fifteen_lower_case_leads_1000hz() -> None:
    ecg = read_ecg(PTBDB)
    assert ecg.fs == 1000.0
    assert ecg.leads == ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5",
                         "v6", "vx", "vy", "vz")
    assert ecg.signal.shape == (15, 38400)
    np.testing.assert_array_equal(ecg.signal, wfdb_oracle(PTBDB))
    assert "Myocardial infarction" in ecg.meta["comments"]
    # the twelve standard ones map, the Frank leads do not
    assert [standard_lead(x) for x in ecg.leads[:12]] == list(STANDARD_LEADS)


@pytest.mark.parametrize(("name", "expected"), [
    ("avr", "aVR"), ("AVR", "aVR"), ("aVR", "aVR"), ("aVL", "aVL"), ("avf", "aVF"),
    ("MLII", "II"), ("ii", "II"), ("I", "I"), ("iii", "III"), ("V1", "V1"), ("v6", "V6"),
    ("V5", "V5"), ("MV1", "V1"), ("lead_ii", "II"), ("ECG I", "I"), ("EKG-aVR", "aVR"),
    ("ECG V6", "V6"), ("ECG", None),
    ("vx", None), ("vy", None), ("foo", None), ("", None), ("V7", None),
])
def test_standard_lead_aliases(name: str, expected: str | None) -> None:
    assert standard_lead(name) == expected


def test_select_accepts_source_and_standard_spellings() -> None:
    ecg = read_ecg(PTBDB)
    sub = ecg.select(["aVR", "v6"])
    assert sub.leads == ("avr", "v6")
    np.testing.assert_array_equal(sub.signal, ecg.signal[[3, 11]])
    with pytest.raises(ECGReadError, match="V7"):
        ecg.select(["V7"])


def test_npy_round_trip_with_fs(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(12, 1000)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    ecg = read_ecg(tmp_path / "a.npy", fs=250)
    np.testing.assert_array_equal(ecg.signal, x)
    assert (ecg.fs, ecg.leads, ecg.id) == (250.0, STANDARD_LEADS, "a")


def test_npz_round_trip_with_signal_fs_leads(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(3, 700))
    np.savez(tmp_path / "b.npz", signal=x, fs=360.0, leads=np.array(["MLII", "V5", "vx"]))
    ecg = read_ecg(tmp_path / "b.npz")
    np.testing.assert_array_equal(ecg.signal, x.astype(np.float32))
    assert ecg.signal.dtype == np.float32
    assert (ecg.fs, ecg.leads) == (360.0, ("MLII", "V5", "vx"))


def test_npy_without_fs_says_so(tmp_path: Path) -> None:
    p = tmp_path / "a.npy"
    np.save(p, np.random.default_rng(0).normal(size=(12, 1000)))
    with pytest.raises(ECGReadError, match="fs") as err:
        read_ecg(p)
    assert str(p) in str(err.value)


def test_npy_without_lead_names_for_non_12_rows(tmp_path: Path) -> None:
    p = tmp_path / "a.npy"
    np.save(p, np.random.default_rng(0).normal(size=(3, 1000)))
    with pytest.raises(ECGReadError, match="lead names"):
        read_ecg(p, fs=100)
    assert read_ecg(p, fs=100, leads=["I", "II", "V1"]).leads == ("I", "II", "V1")


def _wrsamp(folder: Path, name: str, p_signal: np.ndarray, units: list[str],
            leads: list[str], fs: int = 100, **kw: object) -> Path:
    cwd = os.getcwd()
    os.chdir(folder)  # wrsamp writes into the current directory in every wfdb version
    try:
        wfdb.wrsamp(name, fs=fs, units=units, sig_name=leads, p_signal=p_signal,
                    fmt=["16"] * len(leads), **kw)
    finally:
        os.chdir(cwd)
    return folder / name


def _edit_signal_lines(rec: Path, field: int, value: str) -> None:
    hea = rec.with_suffix(".hea")
    lines = hea.read_text().split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() and not lines[i].startswith("#"):
            tok = lines[i].split()
            tok[field] = value
            lines[i] = " ".join(tok)
    hea.write_text("\n".join(lines))


@pytest.mark.parametrize("gain", ["1000.0(50)/mV", "1e3(0)/mV", "1000.0(0)", "0(0)/mV"])
def test_header_gain_variants_equal_wfdb(copy_record, gain: str) -> None:
    # baseline, scientific gain, units left out (mV), gain 0 (WFDB's default of 200)
    rec = copy_record(LR)
    _edit_signal_lines(rec, 2, gain)
    np.testing.assert_allclose(read_ecg(rec).signal, wfdb_oracle(rec), rtol=1e-6, atol=1e-6)


def test_baseline_defaults_to_adc_zero_like_wfdb(copy_record) -> None:
    rec = copy_record(LR)
    _edit_signal_lines(rec, 2, "1000.0/mV")  # no (baseline)
    _edit_signal_lines(rec, 4, "100")        # ADC zero 100
    assert wfdb.rdrecord(str(rec)).baseline[0] == 100
    np.testing.assert_allclose(read_ecg(rec).signal, wfdb_oracle(rec), rtol=1e-6, atol=1e-6)


def test_microvolts_are_scaled_to_millivolts(tmp_path: Path) -> None:
    uv = np.random.default_rng(2).normal(scale=800.0, size=(1000, 2))  # (samples, leads) in uV
    rec = _wrsamp(tmp_path, "uvrec", uv, ["uV", "uV"], ["I", "II"])
    assert "/uV" in rec.with_suffix(".hea").read_text()
    ecg = read_ecg(rec)
    np.testing.assert_allclose(ecg.signal, wfdb_oracle(rec) / 1000.0, rtol=1e-6)
    # and close to what was written, up to wfdb's 16-bit quantisation
    np.testing.assert_allclose(ecg.signal, uv.T / 1000.0, atol=0.01)


# --- bad inputs: ECGReadError naming the file and the problem ---------------------------------

def _message(path: object, **kw: object) -> str:
    with pytest.raises(ECGReadError) as err:
        read_ecg(path, **kw)  # type: ignore[arg-type]
    return str(err.value)


def test_missing_wfdb_record(tmp_path: Path) -> None:
    msg = _message(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in msg and "no such" in msg


def test_missing_numpy_file(tmp_path: Path) -> None:
    msg = _message(tmp_path / "nowhere.npz")
    assert str(tmp_path / "nowhere.npz") in msg and "no such" in msg


def test_missing_dat_file(copy_record) -> None:
    rec = copy_record(LR)
    rec.with_suffix(".dat").unlink()
    msg = _message(rec)
    assert str(rec.with_suffix(".dat")) in msg and "missing" in msg


def test_truncated_dat(copy_record) -> None:
    rec = copy_record(LR)
    dat = rec.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])
    msg = _message(rec)
    assert str(dat) in msg and "truncated" in msg and "12000 bytes" in msg


def test_truncated_format_212_dat(copy_record) -> None:
    rec = copy_record(MITDB)
    dat = rec.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:-3])  # one 212 frame (2 leads x 12 bits) short
    msg = _message(rec)
    assert str(dat) in msg and "truncated" in msg


def test_header_promising_more_samples_than_the_dat_holds(copy_record) -> None:
    rec = copy_record(LR)
    hea = rec.with_suffix(".hea")
    lines = hea.read_text().split("\n")
    assert lines[0] == "00095_lr 12 100 1000"
    lines[0] = "00095_lr 12 100 1500"
    hea.write_text("\n".join(lines))
    msg = _message(rec)
    assert str(rec) in msg and "1500 samples" in msg


def test_header_with_zero_sampling_rate(copy_record) -> None:
    rec = copy_record(LR)
    hea = rec.with_suffix(".hea")
    lines = hea.read_text().split("\n")
    lines[0] = "00095_lr 12 0 1000"
    hea.write_text("\n".join(lines))
    msg = _message(rec)
    assert str(hea) in msg and "sampling" in msg and " 0" in msg


def test_nan_in_npz(tmp_path: Path) -> None:
    x = np.random.default_rng(3).normal(size=(2, 1000))
    x[1, 17] = np.nan
    p = tmp_path / "nan.npz"
    np.savez(p, signal=x, fs=100.0, leads=np.array(["I", "II"]))
    msg = _message(p)
    assert str(p) in msg and "NaN" in msg and "II (1)" in msg


def test_nan_in_wfdb_record(tmp_path: Path) -> None:
    x = np.random.default_rng(4).normal(size=(1000, 2))
    x[10:13, 0] = np.nan  # wfdb stores NaN as the format's invalid-sample value
    rec = _wrsamp(tmp_path, "nanrec", x, ["mV", "mV"], ["I", "II"],
                  adc_gain=[1000.0, 1000.0], baseline=[0, 0])
    assert np.isnan(wfdb_oracle(rec)).sum() == 3
    msg = _message(rec)
    assert str(rec) in msg and "NaN" in msg and "I (3)" in msg


def test_inf_in_npz(tmp_path: Path) -> None:
    x = np.random.default_rng(3).normal(size=(12, 1000))
    x[0, 0] = np.inf
    p = tmp_path / "inf.npy"
    np.save(p, x)
    assert "non-finite" in _message(p, fs=100)


def test_flat_line(tmp_path: Path) -> None:
    p = tmp_path / "flat.npz"
    np.savez(p, signal=np.full((3, 1000), 0.25), fs=100.0, leads=np.array(["I", "II", "V1"]))
    msg = _message(p)
    assert str(p) in msg and "flat" in msg


def test_flat_standard_leads_with_a_moving_nonstandard_one(tmp_path: Path) -> None:
    # only the standard leads count: a live Frank lead does not make a flat ECG usable
    x = np.zeros((2, 1000))
    x[1] = np.sin(np.arange(1000) / 10)
    p = tmp_path / "flat2.npz"
    np.savez(p, signal=x, fs=100.0, leads=np.array(["II", "vx"]))
    assert "flat" in _message(p)


def test_one_flat_lead_is_accepted(tmp_path: Path) -> None:
    x = np.random.default_rng(5).normal(size=(2, 1000))
    x[0] = 0.0
    p = tmp_path / "oneflat.npz"
    np.savez(p, signal=x, fs=100.0, leads=np.array(["I", "II"]))
    assert read_ecg(p).n_leads == 2


def test_zero_leads_without_names(tmp_path: Path) -> None:
    p = tmp_path / "empty.npz"
    np.savez(p, signal=np.zeros((0, 1000)), fs=100.0)
    msg = _message(p)
    assert str(p) in msg and "0 leads" in msg


def test_zero_leads_with_empty_names(tmp_path: Path) -> None:
    p = tmp_path / "empty.npz"
    np.savez(p, signal=np.zeros((0, 1000)), fs=100.0, leads=np.array([], dtype=str))
    msg = _message(p)
    assert str(p) in msg and "empty" in msg and "0 leads" in msg


def test_unknown_lead_names_only(tmp_path: Path) -> None:
    p = tmp_path / "foo.npz"
    x = np.random.default_rng(6).normal(size=(2, 1000))
    np.savez(p, signal=x, fs=100.0, leads=np.array(["foo", "bar"]))
    msg = _message(p)
    assert str(p) in msg and "'foo'" in msg and "standard" in msg


def test_npz_with_zero_sampling_rate(tmp_path: Path) -> None:
    p = tmp_path / "fs0.npz"
    x = np.random.default_rng(7).normal(size=(2, 1000))
    np.savez(p, signal=x, fs=0.0, leads=np.array(["I", "II"]))
    msg = _message(p)
    assert str(p) in msg and "sampling rate is 0" in msg


def test_npz_without_signal_array(tmp_path: Path) -> None:
    p = tmp_path / "other.npz"
    np.savez(p, data=np.zeros((12, 100)), fs=100.0)
    msg = _message(p)
    assert str(p) in msg and "'signal'" in msg


def test_lead_count_mismatch(tmp_path: Path) -> None:
    p = tmp_path / "mismatch.npz"
    np.savez(p, signal=np.random.default_rng(8).normal(size=(3, 100)), fs=100.0,
             leads=np.array(["I", "II"]))
    msg = _message(p)
    assert str(p) in msg and "3 signal rows but 2 lead names" in msg


def test_ecg_rejects_bad_shapes_directly() -> None:
    with pytest.raises(ECGReadError, match="expected a positive number"):
        ECG(np.zeros((1, 10), np.float32), float("nan"), ("I",), "x")
    with pytest.raises(ECGReadError, match="leads, samples"):
        ECG(np.zeros(10, np.float32), 100.0, ("I",), "x")


def test_edf_written_by_wfdb_reads_back_the_same_signal(tmp_path: Path) -> None:
    """An EDF file made by wfdb's converter from a bundled record reads back, lead names and
    values, as the record itself (wfdb pads the file to whole 10-s data records; the first
    record is the signal)."""
    from wfdb.io.convert.edf import wfdb_to_edf

    rec = SAMPLE / "records100" / "01000" / "01469_lr"
    edf = tmp_path / "01469.edf"
    wfdb_to_edf(str(rec), output_filename=str(edf))
    got, want = read_ecg(edf), read_ecg(rec)
    assert got.fs == 100 and [standard_lead(n) for n in got.leads] == list(STANDARD_LEADS)
    np.testing.assert_allclose(got.signal[:, :want.n_samples], want.signal, atol=1e-6)


def test_bad_edf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0       not an edf header")
    with pytest.raises(ECGReadError, match=r"broken.edf: not a readable EDF file"):
        read_ecg(bad)
    with pytest.raises(ECGReadError, match=r"missing.edf: no such EDF file"):
        read_ecg(tmp_path / "missing.edf")


@pytest.mark.parametrize("planted", ["../../../../etc/passwd", "/etc/passwd", "sub/x.dat"])
def test_a_header_naming_a_file_outside_its_folder_is_refused(copy_record, tmp_path,
                                                               planted) -> None:
    """The format-16 fast path read /etc/passwd as samples (wfdb's own parser refuses such
    names for the other formats)."""
    rec = copy_record(LR, tmp_path / "a" / "b" / "c" / "d")
    hea = rec.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    fixed = [lines[0]] + [" ".join([planted, *ln.split()[1:]]) for ln in lines[1:]
                          if ln.strip() and not ln.startswith("#")]
    hea.write_text("\n".join(fixed) + "\n")
    with pytest.raises(ECGReadError, match="is not a plain file name"):
        read_ecg(rec)


# --- inputs that broke the reader (issue 15, item 9) ------------------------------------------

def _set_header_fs(rec: Path, fs: str) -> Path:
    hea = rec.with_suffix(".hea")
    lines = hea.read_text().split("\n")
    tok = lines[0].split()
    tok[2] = fs
    lines[0] = " ".join(tok)
    hea.write_text("\n".join(lines))
    return hea


@pytest.mark.parametrize("fs", ["0.001", "0.01", "1", "1e6"])
def test_header_sampling_rate_that_cannot_hold_an_ecg(copy_record, fs: str) -> None:
    # 0.001 Hz made prepare allocate 23.6 GB; 1 Hz was reported as sinus rhythm; 1e6 a traceback
    hea = _set_header_fs(copy_record(LR), fs)
    msg = _message(hea.with_suffix(""))
    assert str(hea) in msg and "sampling" in msg and "50" in msg and "10000" in msg


@pytest.mark.parametrize("fs", [1.0, 2e6])
def test_npz_sampling_rate_out_of_bounds(tmp_path: Path, fs: float) -> None:
    p = tmp_path / "slow.npz"
    np.savez(p, signal=np.random.default_rng(9).normal(size=(2, 1000)), fs=fs,
             leads=np.array(["I", "II"]))
    msg = _message(p)
    assert str(p) in msg and "'fs'" in msg and "50" in msg


def test_ecg_and_prepare_refuse_out_of_range_rates_directly() -> None:
    # an ECG built in Python (the API, the server) never reaches prepare's resampler
    with pytest.raises(ECGReadError, match="expected 50-10000 Hz"):
        ECG(np.zeros((1, 10), np.float32), 0.001, ("I",), "x")


@pytest.mark.parametrize("fs", ["'100'", "[100.0, 200.0]"])
def test_npz_whose_fs_is_a_string_or_an_array(tmp_path: Path, fs: str) -> None:
    p = tmp_path / "fs.npz"
    value = np.array("100") if fs.startswith("'") else np.array([100.0, 200.0])
    np.savez(p, signal=np.random.default_rng(10).normal(size=(2, 1000)), fs=value,
             leads=np.array(["I", "II"]))
    msg = _message(p)
    assert str(p) in msg and "'fs'" in msg and "one number" in msg


def test_complex_npy_is_refused_not_truncated(tmp_path: Path) -> None:
    p = tmp_path / "complex.npy"
    np.save(p, np.random.default_rng(11).normal(size=(12, 1000)) * (1 + 1j))
    msg = _message(p, fs=100)
    assert str(p) in msg and "complex" in msg


def test_directory_named_like_a_header(tmp_path: Path) -> None:
    (tmp_path / "x.hea").mkdir()
    msg = _message(tmp_path / "x.hea")
    assert str(tmp_path / "x.hea") in msg and "directory" in msg


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permission_denied_is_a_read_error(copy_record, tmp_path: Path) -> None:
    rec = copy_record(LR)
    npy = tmp_path / "locked.npy"
    np.save(npy, np.random.default_rng(12).normal(size=(12, 1000)))
    for path in (rec.with_suffix(".hea"), rec.with_suffix(".dat"), npy):
        path.chmod(0)
    try:
        if os.geteuid() == 0:  # root reads anything: simulate the kernel's refusal instead
            pytest.skip("running as root; see test_permission_denied_under_root")
        assert "permission" in _message(rec).lower()
        assert "permission" in _message(npy, fs=100).lower()
    finally:
        for path in (rec.with_suffix(".hea"), rec.with_suffix(".dat"), npy):
            path.chmod(0o644)


def test_permission_denied_under_root(copy_record, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = copy_record(LR)

    def refuse(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(rec.with_suffix(".hea")))

    monkeypatch.setattr(Path, "read_text", refuse)
    msg = _message(rec)
    assert str(rec) in msg and "permission" in msg.lower()


def test_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    # the name reached the database as lone surrogates: UnicodeEncodeError from SQLAlchemy
    raw = os.fsencode(tmp_path) + b"/\xff\xfe.npy"
    with open(raw, "wb") as fh:
        np.save(fh, np.random.default_rng(13).normal(size=(12, 1000)))
    ecg = read_ecg(os.fsdecode(raw), fs=100)
    assert ecg.id == "\\xff\\xfe" and ecg.source.endswith("/\\xff\\xfe.npy")
    ecg.source.encode("utf-8")
