"""A 12-lead ECG drawn as on ECG paper, for people: the standard 3x4 layout (2.5 s per lead)
plus a 10 s lead-II rhythm strip, at 25 mm/s and 10 mm/mV on a 1 mm / 5 mm grid (1 mm = 0.04 s
= 0.1 mV), with a 1 mV calibration pulse on each row, lead names, and "not recorded" where a
lead is missing. matplotlib (Agg) only; PNG, SVG or PDF.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from regen.ecg import ECG, STANDARD_LEADS, standard_lead
from regen.errors import ConfigError, ECGReadError

if TYPE_CHECKING:    # matplotlib loads on the first drawing
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MM_PER_S, MM_PER_MV = 25.0, 10.0
LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM = "II"
WINDOW_S, COLUMN_S = 10.0, 2.5
ROW_MM, CAL_MM, MARGIN_MM, HEAD_MM = 35.0, 10.0, 6.0, 9.0
CLIP_MV = ROW_MM / MM_PER_MV        # a trace may reach into the next row, no further
PAPER_W_MM, PAPER_H_MM = CAL_MM + WINDOW_S * MM_PER_S, 4 * ROW_MM      # 260 x 140 mm
FORMATS = ("png", "svg", "pdf")
PAPER = {"minor": "#f4c7c3", "major": "#e08a84", "trace": "#111111", "text": "#222222"}


def standard_view(ecg: ECG) -> dict[str, np.ndarray]:
    """{standard lead name: (samples,) mV} for the leads the recording has (first spelling
    wins); leads with no standard name are left out."""
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(ecg.leads):
        std = standard_lead(name)
        if std and std not in out:
            out[std] = ecg.signal[i]
    return out


def _grid(ax: object, width: float, height: float) -> None:
    from matplotlib.collections import LineCollection

    for step, colour, lw in ((1.0, PAPER["minor"], 0.25), (5.0, PAPER["major"], 0.6)):
        xs = np.arange(0.0, width + 1e-6, step)
        ys = np.arange(0.0, height + 1e-6, step)
        lines = [((x, 0.0), (x, height)) for x in xs] + [((0.0, y), (width, y)) for y in ys]
        ax.add_collection(LineCollection(lines, colors=colour, linewidths=lw, zorder=0))  # type: ignore[attr-defined]


def _calibration(ax: object, y0: float) -> None:
    """1 mV for 0.2 s: 10 mm high, 5 mm wide, inside the left margin of each row."""
    x = np.array([1.5, 3.0, 3.0, 8.0, 8.0, 9.5])
    y = y0 + np.array([0.0, 0.0, MM_PER_MV, MM_PER_MV, 0.0, 0.0])
    ax.plot(x, y, color=PAPER["trace"], lw=0.9)  # type: ignore[attr-defined]


def _trace(ax: object, sig: np.ndarray, fs: float, t0: float, t1: float, x0: float,
           y0: float, clip_mv: float = CLIP_MV) -> None:
    a, b = int(round(t0 * fs)), int(round(t1 * fs))
    seg = sig[a:b].astype(np.float64)
    if seg.size < 2:
        return
    finite = seg[np.isfinite(seg)]
    base = float(np.median(finite)) if finite.size else 0.0
    mv = np.clip(seg - base, -clip_mv, clip_mv)
    x = x0 + np.arange(seg.size) / fs * MM_PER_S
    ax.plot(x, y0 + mv * MM_PER_MV, color=PAPER["trace"], lw=0.7)  # type: ignore[attr-defined]


def _missing(ax: object, x0: float, x1: float, y0: float) -> None:
    ax.text((x0 + x1) / 2, y0, "not recorded", ha="center", va="center",  # type: ignore[attr-defined]
            fontsize=8, style="italic", color="#777777")


def draw_paper(ax: Axes, ecg: ECG, start_s: float = 0.0,
               row_mm: float = ROW_MM) -> tuple[float, list[str]]:
    """Draw the grid, calibration pulses, lead names and traces of the 10 s from `start_s` on
    `ax`, whose data units are millimetres of paper (x 0..PAPER_W_MM, y 0..4 * row_mm); the
    caller sizes the axes so one unit is one printed millimetre. A narrower `row_mm` (a
    printed page) keeps the scale and clips a trace at one row's height. Returns (seconds
    drawn, the standard leads the recording lacks)."""
    if not 0 <= start_s < ecg.duration_s:
        raise ECGReadError(f"{ecg.source or ecg.id}: window start {start_s} s is outside the "
                           f"recording (0-{ecg.duration_s:.1f} s)")
    leads = standard_view(ecg)
    t_end = min(WINDOW_S, ecg.duration_s - start_s)
    width, height = PAPER_W_MM, 4 * row_mm
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    _grid(ax, width, height)
    rows = [*LAYOUT, (RHYTHM,)]
    for r, row in enumerate(rows):
        y0 = height - (r + 0.5) * row_mm
        _calibration(ax, y0)
        span = WINDOW_S / len(row)
        for c, name in enumerate(row):
            t0 = c * span
            x0, x1 = CAL_MM + t0 * MM_PER_S, CAL_MM + (t0 + span) * MM_PER_S
            if c:          # lead change marker, as printed ECGs have
                ax.plot([x0, x0], [y0 + 4, y0 + 8], color=PAPER["trace"], lw=0.9)
            ax.text(x0 + 1.5, y0 + row_mm / 2 - 2.0, name, fontsize=9, fontweight="bold",
                    va="top", color=PAPER["text"])
            if name not in leads:
                _missing(ax, x0, x1, y0)
            elif t0 < t_end:
                _trace(ax, leads[name], ecg.fs, start_s + t0,
                       start_s + min(t0 + span, t_end), x0, y0, row_mm / MM_PER_MV)
    return t_end, [n for n in STANDARD_LEADS if n not in leads]


def paper_caption(ecg: ECG, start_s: float, t_end: float, missing: list[str]) -> str:
    """Scale, rate, the window of a long record, and the leads not recorded."""
    window = (f"; window {start_s:g}-{start_s + t_end:g} s of {ecg.duration_s:.0f} s"
              if ecg.duration_s > WINDOW_S + 1e-6 else "")
    return (f"25 mm/s   10 mm/mV   {ecg.fs:g} Hz{window}"
            + (f"   not recorded: {', '.join(missing)}" if missing else ""))


def new_figure(width_mm: float, height_mm: float, dpi: int) -> Figure:
    """A white matplotlib Figure (Agg, no pyplot state) of the given size in millimetres."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi, facecolor="white")


def figure_bytes(fig: Figure, fmt: str, dpi: int) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):    # SVG text stays text
        fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white")
    return buf.getvalue()


def plot_ecg(ecg: ECG, *, fmt: str = "png", start_s: float = 0.0, title: str | None = None,
             dpi: int = 110) -> bytes:
    """The ECG's 10 s from `start_s` as a clinical 12-lead page; `fmt` png, svg or pdf.

    Shorter records leave the paper blank after their end; longer ones show the window used
    (e.g. "window 0-10 s of 1800 s") in the footer.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"plot format {fmt!r}; expected one of {list(FORMATS)}")
    width, height = PAPER_W_MM, PAPER_H_MM
    fig_w, fig_h = width + 2 * MARGIN_MM, height + HEAD_MM + 2 * MARGIN_MM
    fig = new_figure(fig_w, fig_h, dpi)
    ax = fig.add_axes((MARGIN_MM / fig_w, MARGIN_MM / fig_h, width / fig_w, height / fig_h))
    t_end, missing = draw_paper(ax, ecg, start_s)
    fig.text(MARGIN_MM / fig_w, 1 - (MARGIN_MM * 0.6) / fig_h, title or f"{ecg.id}",
             fontsize=11, fontweight="bold", va="top", color=PAPER["text"])
    fig.text(1 - MARGIN_MM / fig_w, 1 - (MARGIN_MM * 0.6) / fig_h,
             paper_caption(ecg, start_s, t_end, missing),
             fontsize=8, ha="right", va="top", color=PAPER["text"])
    return figure_bytes(fig, fmt, dpi)


def save_plot(ecg: ECG, out: str | Path, *, start_s: float = 0.0,
              title: str | None = None) -> Path:
    """Draw to `out`, the format from its extension (.png, .svg, .pdf)."""
    path = Path(out)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"{path}: extension {path.suffix!r}; expected .png, .svg or .pdf")
    path.write_bytes(plot_ecg(ecg, fmt=fmt, start_s=start_s, title=title))
    return path
