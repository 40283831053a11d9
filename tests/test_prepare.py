"""Preparation checked by its physical effect: frequencies, band power, lead placement, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regen.ecg import ECG, STANDARD_LEADS
from regen.errors import ECGReadError
from regen.prepare import bandpass, prepare, resample, to_standard_leads, windows_of
from regen.reader import read_ecg

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "ptbxl-sample"
LR = SAMPLE / "records100" / "00000" / "00095_lr"
HR = SAMPLE / "records500" / "00000" / "00095_hr"
MITDB = DATA / "other" / "mitdb" / "100"
PTBDB = DATA / "other" / "ptbdb" / "s0010_re"
HR_IDS = (95, 155, 170, 346, 445, 465)  # the sample's records with a 500 Hz copy


def band_power(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """(..., n) -> (...,) power of the components with lo <= f < hi."""
    f = np.fft.rfftfreq(x.shape[-1], 1 / fs)
    p = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64), axis=-1)) ** 2
    return p[..., (f >= lo) & (f < hi)].sum(-1)


def db(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.asarray(a) / np.asarray(b))


def sine(freq: float, fs: float, seconds: float, amp: float = 1.0,
         phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(fs * seconds))) / fs
    return amp * np.sin(2 * np.pi * freq * t + phase)


# --- resample ----------------------------------------------------------------------------------

def test_resample_500_to_100_keeps_a_5hz_sine() -> None:
    x = sine(5, 500, 10, phase=0.3)[None]
    y = resample(x, 500, 100)
    assert y.shape == (1, 1000) and y.dtype == np.float32
    f = np.fft.rfftfreq(1000, 1 / 100)
    assert f[np.argmax(np.abs(np.fft.rfft(y[0])))] == pytest.approx(5.0)
    inner = slice(100, 900)  # away from the polyphase filter's edge transients
    assert float(np.abs(y[0, inner]).max()) == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(y[0, inner], sine(5, 100, 10, phase=0.3)[inner], atol=0.01)


def test_resample_360_to_100() -> None:
    x = np.stack([sine(7, 360, 10), sine(1.3, 360, 10, amp=2.0)])
    y = resample(x, 360, 100)
    assert y.shape == (2, 1000)
    inner = slice(100, 900)
    np.testing.assert_allclose(y[0, inner], sine(7, 100, 10)[inner], atol=0.01)
    np.testing.assert_allclose(y[1, inner], sine(1.3, 100, 10, amp=2.0)[inner], atol=0.01)


def test_resample_mitdb_length_and_level() -> None:
    ecg = read_ecg(MITDB)
    y = resample(ecg.signal, ecg.fs, 100)
    assert y.shape == (2, round(650000 * 100 / 360)) == (2, 180556)
    # an ECG's power is far below 50 Hz: mean and RMS survive the rate change
    np.testing.assert_allclose(y.mean(1), ecg.signal.mean(1), atol=0.005)
    np.testing.assert_allclose(y.std(1), ecg.signal.std(1), rtol=0.05)


def test_resample_same_rate_is_identity() -> None:
    x = read_ecg(LR).signal
    np.testing.assert_array_equal(resample(x, 100, 100), x)


def test_resample_length_for_a_non_rational_rate() -> None:
    y = resample(np.zeros((1, 650000), np.float32), 977.3, 100)
    assert y.shape[1] == round(650000 * 100 / 977.3)


# --- bandpass ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("record", "fs"), [(LR, 100), (HR, 500)])
def test_bandpass_removes_baseline_wander(record: Path, fs: int) -> None:
    x = read_ecg(record).signal.astype(np.float64)
    wander = sine(0.1, fs, 10, amp=1.0)  # 1 mV at 0.1 Hz: breathing / electrode drift
    y = bandpass(x + wander, fs)
    assert y.shape == x.shape and y.dtype == np.float32
    drop = db(band_power(x + wander, fs, 0, 0.5), band_power(y, fs, 0, 0.5))
    assert drop.min() > 20, drop
    # the diagnostic band is left alone: 1-30 Hz power within 1 dB of the clean record
    keep = db(band_power(y, fs, 1, 30), band_power(x, fs, 1, 30))
    assert np.abs(keep).max() < 1.0, keep


def test_bandpass_passes_1_to_25_hz_sines() -> None:
    x = np.stack([sine(f, 500, 10, phase=0.3) for f in (1.0, 5.0, 15.0, 25.0)])
    y = bandpass(x, 500)
    inner = slice(1000, 4000)  # 2-8 s: the 0.5 Hz high-pass rings for a second or two at the ends
    gain_db = 20 * np.log10(np.abs(y[:, inner]).max(1))
    assert np.abs(gain_db).max() < 1.0, gain_db


def test_bandpass_removes_60hz_mains_at_500hz() -> None:
    x = read_ecg(HR).signal.astype(np.float64)
    mains = sine(60, 500, 10, amp=0.5)
    y = bandpass(x + mains, 500)
    drop = db(band_power(x + mains, 500, 59, 61), band_power(y, 500, 59, 61))
    assert drop.min() > 20, drop


def test_bandpass_attenuates_50hz_mains_at_500hz() -> None:
    # A 3rd-order edge at 40 Hz, forward and back: about 14 dB at 50 Hz (the encoder's own
    # 100 Hz path removes mains entirely, tested below).
    x = read_ecg(HR).signal.astype(np.float64)
    mains = sine(50, 500, 10, amp=0.5)
    y = bandpass(x + mains, 500)
    drop = db(band_power(x + mains, 500, 49, 51), band_power(y, 500, 49, 51))
    assert drop.min() > 12, drop


def test_prepare_at_100hz_removes_50hz_mains_away_from_the_edges() -> None:
    # At 100 Hz, 50 Hz is the Nyquist rate, where the digital Butterworth has its zero.
    ecg = read_ecg(HR)
    noisy = ECG(ecg.signal + sine(50, 500, 10, amp=0.5, phase=np.pi / 2).astype(np.float32),
                ecg.fs, ecg.leads, ecg.id)
    diff = prepare(noisy).windows[0] - prepare(ecg).windows[0]
    inner = diff[:, 200:800]  # the first and last 2 s carry filter edge transients
    assert float(np.sqrt((inner ** 2).mean())) < 0.01  # of 0.35 mV RMS mains: > 30 dB down


# --- leads -------------------------------------------------------------------------------------

def test_to_standard_leads_places_mitdb_leads() -> None:
    ecg = read_ecg(MITDB)
    x, mask = to_standard_leads(ecg)
    assert x.shape == (12, 650000) and x.dtype == np.float32
    ii, v5 = STANDARD_LEADS.index("II"), STANDARD_LEADS.index("V5")
    assert np.flatnonzero(mask).tolist() == [ii, v5]
    np.testing.assert_array_equal(x[ii], ecg.signal[0])  # MLII -> II
    np.testing.assert_array_equal(x[v5], ecg.signal[1])
    assert not x[~mask].any()


def test_to_standard_leads_orders_ptbdb_and_drops_frank_leads() -> None:
    ecg = read_ecg(PTBDB)
    x, mask = to_standard_leads(ecg)
    assert mask.all()
    np.testing.assert_array_equal(x, ecg.signal[:12])


def test_to_standard_leads_first_spelling_wins_and_order_is_standard() -> None:
    sig = np.arange(3 * 10, dtype=np.float32).reshape(3, 10)
    x, mask = to_standard_leads(ECG(sig, 100.0, ("V1", "MLII", "ii"), "x"))
    np.testing.assert_array_equal(x[1], sig[1])
    np.testing.assert_array_equal(x[6], sig[0])
    assert mask.sum() == 2


def test_to_standard_leads_rejects_no_standard_lead() -> None:
    ecg = ECG(np.ones((2, 10), np.float32), 100.0, ("vx", "vy"), "frank", "/some/frank")
    with pytest.raises(ECGReadError, match="/some/frank"):
        to_standard_leads(ecg)


# --- windows -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "starts"), [
    (1000, [0]),
    (2000, [0, 1000]),
    (1499, [0]),              # a tail under half a window is dropped
    (1500, [0, 500]),         # a tail of half a window adds an overlapping last window
    (2600, [0, 1000, 1600]),
    (2400, [0, 1000]),
])
def test_windows_of_starts(n: int, starts: list[int]) -> None:
    x = np.tile(np.arange(n, dtype=np.float32), (12, 1))
    w, s = windows_of(x, 1000)
    assert s.tolist() == starts
    assert w.shape == (len(starts), 12, 1000)
    for win, start in zip(w, s):
        np.testing.assert_array_equal(win, x[:, start:start + 1000])


def test_windows_of_pads_a_short_recording() -> None:
    x = np.ones((12, 300), np.float32)
    w, s = windows_of(x, 1000)
    assert w.shape == (1, 12, 1000) and s.tolist() == [0]
    assert (w[0, :, :300] == 1).all() and not w[0, :, 300:].any()


def test_prepare_mitdb_30_minutes() -> None:
    p = prepare(read_ecg(MITDB))
    n = round(650000 * 100 / 360)                           # 180556 samples at 100 Hz
    expected = list(range(0, 180 * 1000, 1000)) + [n - 1000]  # tail 556 >= 500: one more
    assert p.windows.shape == (181, 12, 1000) and p.windows.dtype == np.float32
    assert p.starts.tolist() == expected
    assert np.flatnonzero(p.mask).tolist() == [1, 10]
    assert not p.windows[:, ~p.mask].any()
    assert (p.fs, p.source_fs, p.source_leads, p.source_samples) == (
        100.0, 360.0, ("MLII", "V5"), 650000)


def test_prepare_ptbdb_1000hz() -> None:
    p = prepare(read_ecg(PTBDB))
    assert p.starts.tolist() == [0, 1000, 2000, 2840]  # 3840 samples at 100 Hz
    assert p.mask.all()


def test_prepare_pads_a_3_second_recording() -> None:
    ecg = read_ecg(LR)
    short = ECG(ecg.signal[:, :300].copy(), ecg.fs, ecg.leads, "short")
    p = prepare(short)
    assert p.windows.shape == (1, 12, 1000) and p.starts.tolist() == [0]
    assert not p.windows[0, :, 300:].any()
    assert (np.ptp(p.windows[0, :, :300], axis=1) > 0.05).all()


def test_prepare_masks_a_flat_lead() -> None:
    ecg = read_ecg(LR)
    sig = ecg.signal.copy()
    v3 = STANDARD_LEADS.index("V3")
    sig[v3] = 0.2  # unplugged electrode at a constant offset
    p = prepare(ECG(sig, ecg.fs, ecg.leads, ecg.id))
    assert not p.mask[v3] and p.mask.sum() == 11
    assert not p.windows[:, v3].any()
    full = prepare(ecg)
    np.testing.assert_array_equal(p.windows[:, ~np.eye(12, dtype=bool)[v3]],
                                  full.windows[:, ~np.eye(12, dtype=bool)[v3]])


def test_prepare_rejects_all_flat() -> None:
    ecg = ECG(np.full((12, 1000), 0.3, np.float32), 100.0, STANDARD_LEADS, "flat", "/x/flat")
    with pytest.raises(ECGReadError, match="/x/flat"):
        prepare(ecg)


@pytest.mark.parametrize("ecg_id", HR_IDS)
def test_prepare_500hz_matches_the_100hz_copy(ecg_id: int) -> None:
    hr = prepare(read_ecg(SAMPLE / "records500" / "00000" / f"{ecg_id:05d}_hr"))
    lr = prepare(read_ecg(SAMPLE / "records100" / "00000" / f"{ecg_id:05d}_lr"))
    assert hr.windows.shape == lr.windows.shape == (1, 12, 1000)
    assert hr.mask.all() and lr.mask.all()
    # PTB-XL's own 100 Hz files carry edge artefacts of their downsampling (ecg 465's aVL ends
    # in a 0.4 mV jump the 500 Hz file lacks), so compare away from the first and last second.
    a, b = hr.windows[0, :, 100:900], lr.windows[0, :, 100:900]
    corr = [np.corrcoef(a[i], b[i])[0, 1] for i in range(12)]
    assert min(corr) > 0.95, corr


def test_with_leads_masks_and_zeros() -> None:
    p = prepare(read_ecg(LR))
    keep = np.zeros(12, bool)
    keep[[0, 1]] = True
    q = p.with_leads(keep)
    assert q.mask.tolist() == keep.tolist()
    np.testing.assert_array_equal(q.windows[:, :2], p.windows[:, :2])
    assert not q.windows[:, 2:].any()
    assert q.with_id("other").id == "other" and p.id == "00095_lr"


def test_resample_bounds_the_output_before_allocating() -> None:
    # a header rate of 0.001 Hz made a 24 KB record resample to tens of GB (issue 15)
    with pytest.raises(ECGReadError, match="would become 100000000 at"):
        resample(np.zeros((12, 100), np.float32), 100.0, 1e8)
