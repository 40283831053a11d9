"""The ECG picture by its physical scale: a known square wave drawn at 25 mm/s and 10 mm/mV
measures 10 mm high and 25 mm per second in the PNG's pixels; missing leads and the window of
a long record are named; drawing is fast; `regen plot` writes the file."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from regen.ecg import ECG
from regen.errors import ConfigError
from regen.plot import CAL_MM, HEAD_MM, MARGIN_MM, ROW_MM, WINDOW_S, plot_ecg
from regen.reader import read_ecg

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
Q1 = SAMPLE / "records100" / "01000" / "01469_lr"
DPI = 200


def square(fs: float = 500.0, seconds: float = 10.0) -> ECG:
    """Lead II only: 0 mV, then 1 mV for the last quarter of every second."""
    t = np.arange(int(fs * seconds)) / fs
    return ECG(((t % 1.0) >= 0.75).astype(np.float32)[None, :], fs, ("II",), "square")


def test_a_square_wave_measures_10_mm_per_mv_and_25_mm_per_s():
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(plot_ecg(square(), dpi=DPI)))
    px_per_mm = DPI / 25.4
    h = img.shape[0]
    # the rhythm strip: the 4th row of the paper, right of the calibration pulse and label
    top = round((MARGIN_MM + HEAD_MM + 3 * ROW_MM) * px_per_mm)
    band = img[top:top + round(ROW_MM * px_per_mm), round((MARGIN_MM + CAL_MM + 8) * px_per_mm):]
    assert top + band.shape[0] <= h
    dark = (band[..., :3] < 0.4).all(axis=2)
    rows = np.flatnonzero(dark.any(axis=1))
    assert abs((rows[-1] - rows[0]) / px_per_mm - 10.0) < 0.5        # 1 mV -> 10 mm
    cols = np.flatnonzero(dark.sum(axis=0) > 5 * px_per_mm)           # the vertical edges
    edges = cols[np.insert(np.diff(cols) > px_per_mm, 0, True)]
    steps = np.diff(edges) / px_per_mm                                # rise->fall->rise
    assert np.allclose(steps[::2] + steps[1::2][:len(steps[::2])], 25.0, atol=0.6)


def test_missing_leads_and_a_long_window_are_named():
    svg = plot_ecg(square(), fmt="svg").decode()
    assert svg.count("not recorded") == 11 + 1                         # 11 panels + footer
    long = ECG(np.tile(square(fs=100, seconds=10).signal, (1, 180)), 100.0, ("II",), "long")
    t0 = time.perf_counter()
    svg = plot_ecg(long, fmt="svg", start_s=600).decode()
    assert time.perf_counter() - t0 < 3
    assert f"window 600-{600 + WINDOW_S:g} s of 1800 s" in svg


def test_a_12_lead_record_draws_fast_in_every_format():
    ecg = read_ecg(Q1)
    t0 = time.perf_counter()
    png = plot_ecg(ecg)
    assert time.perf_counter() - t0 < 1.5 and png.startswith(b"\x89PNG")
    assert plot_ecg(ecg, fmt="pdf").startswith(b"%PDF")
    assert "not recorded" not in plot_ecg(ecg, fmt="svg").decode()
    with pytest.raises(ConfigError, match="expected one of"):
        plot_ecg(ecg, fmt="gif")


def test_the_png_needs_no_matplotlib_and_matches_the_other_formats_size():
    """PNG is drawn with PIL from the same marks (so `regen plot` does not import
    matplotlib); its size is the page's in mm at the dpi, like the matplotlib drawing's."""
    code = ("import sys; from regen.plot import plot_ecg; from regen.reader import read_ecg; "
            f"png = plot_ecg(read_ecg({str(Q1)!r}), dpi=200); "
            "print('matplotlib' in sys.modules, png[:8] == b'\\x89PNG\\r\\n\\x1a\\n')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["False", "True"], done.stderr
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(plot_ecg(read_ecg(Q1), dpi=200)))
    w_mm, h_mm = CAL_MM + WINDOW_S * 25 + 2 * MARGIN_MM, 4 * ROW_MM + HEAD_MM + 2 * MARGIN_MM
    assert img.shape[:2] == (round(h_mm / 25.4 * 200), round(w_mm / 25.4 * 200))


def test_plot_command_writes_the_picture(tmp_path):
    out = tmp_path / "ecg.svg"
    done = subprocess.run([sys.executable, "-m", "regen", "plot", str(Q1), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("<?xml") and "V6" in out.read_text()


def test_regen_plot_draws_a_path_or_an_ecg(sample_home, tmp_path):
    from regen import Regen

    rec = Path(__file__).resolve().parent.parent / "data/ptbxl-sample/records100/01000/01469_lr"
    with Regen.open(sample_home) as rg:
        out = rg.plot(rec, tmp_path / "ecg.png")
        svg = rg.plot(rec, tmp_path / "ecg.svg")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    assert b"<svg" in svg.read_bytes()[:500]
