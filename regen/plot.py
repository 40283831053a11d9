"""A 12-lead ECG drawn as on ECG paper, for people: the standard 3x4 layout (2.5 s per lead)
plus a 10 s lead-II rhythm strip, at 25 mm/s and 10 mm/mV on a 1 mm / 5 mm grid (1 mm = 0.04 s
= 0.1 mV), with a 1 mV calibration pulse on each row, lead names, and "not recorded" where a
lead is missing. The layout is computed once (`paper_marks`, in mm); PNG is drawn with PIL
(`regen.plot_png`: no matplotlib import, most of a command's time), SVG and PDF with
matplotlib.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Marks:
    """What goes on the paper, in mm from its bottom-left corner (x right, y up): computed
    once, drawn by matplotlib (SVG, PDF, the report page) or by PIL (PNG, `regen.plot_png`).

    traces: (n, 2) polylines of the signal; strokes: calibration pulses and lead-change
    markers; names: (x, y top, lead name); gaps: (x, y) centres of "not recorded"."""

    width: float
    height: float
    traces: tuple[np.ndarray, ...]
    strokes: tuple[np.ndarray, ...]
    names: tuple[tuple[float, float, str], ...]
    gaps: tuple[tuple[float, float], ...]
    seconds: float                      # drawn from the window
    missing: tuple[str, ...]            # standard leads the recording lacks

    def grid(self, step: float) -> tuple[np.ndarray, np.ndarray]:
        """x and y positions (mm) of the grid lines every `step` mm."""
        return (np.arange(0.0, self.width + 1e-6, step), np.arange(0.0, self.height + 1e-6, step))


def _calibration(y0: float) -> np.ndarray:
    """1 mV for 0.2 s: 10 mm high, 5 mm wide, inside the left margin of each row."""
    return np.column_stack([[1.5, 3.0, 3.0, 8.0, 8.0, 9.5],
                            y0 + np.array([0.0, 0.0, MM_PER_MV, MM_PER_MV, 0.0, 0.0])])


def _trace(sig: np.ndarray, fs: float, t0: float, t1: float, x0: float, y0: float,
           clip_mv: float) -> np.ndarray | None:
    a, b = int(round(t0 * fs)), int(round(t1 * fs))
    seg = sig[a:b].astype(np.float64)
    if seg.size < 2:
        return None
    finite = seg[np.isfinite(seg)]
    base = float(np.median(finite)) if finite.size else 0.0
    mv = np.clip(seg - base, -clip_mv, clip_mv)
    return np.column_stack([x0 + np.arange(seg.size) / fs * MM_PER_S, y0 + mv * MM_PER_MV])


def paper_marks(ecg: ECG, start_s: float = 0.0, row_mm: float = ROW_MM) -> Marks:
    """The 10 s from `start_s` laid out as 3x4 leads and a lead-II strip. A narrower `row_mm`
    (a printed page) keeps the scale and clips a trace at one row's height."""
    if not 0 <= start_s < ecg.duration_s:
        raise ECGReadError(f"{ecg.source or ecg.id}: window start {start_s} s is outside the "
                           f"recording (0-{ecg.duration_s:.1f} s)")
    leads = standard_view(ecg)
    t_end = min(WINDOW_S, ecg.duration_s - start_s)
    height = 4 * row_mm
    traces, strokes, names, gaps = [], [], [], []
    for r, row in enumerate([*LAYOUT, (RHYTHM,)]):
        y0 = height - (r + 0.5) * row_mm
        strokes.append(_calibration(y0))
        span = WINDOW_S / len(row)
        for c, name in enumerate(row):
            t0 = c * span
            x0, x1 = CAL_MM + t0 * MM_PER_S, CAL_MM + (t0 + span) * MM_PER_S
            if c:          # lead change marker, as printed ECGs have
                strokes.append(np.array([[x0, y0 + 4], [x0, y0 + 8]]))
            names.append((x0 + 1.5, y0 + row_mm / 2 - 2.0, name))
            if name not in leads:
                gaps.append(((x0 + x1) / 2, y0))
            elif t0 < t_end:
                tr = _trace(leads[name], ecg.fs, start_s + t0, start_s + min(t0 + span, t_end),
                            x0, y0, row_mm / MM_PER_MV)
                if tr is not None:
                    traces.append(tr)
    return Marks(PAPER_W_MM, height, tuple(traces), tuple(strokes), tuple(names), tuple(gaps),
                 t_end, tuple(n for n in STANDARD_LEADS if n not in leads))


def draw_paper(ax: Axes, ecg: ECG, start_s: float = 0.0,
               row_mm: float = ROW_MM) -> tuple[float, list[str]]:
    """Draw `paper_marks` on `ax`, whose data units are millimetres of paper; the caller sizes
    the axes so one unit is one printed millimetre. Returns (seconds drawn, the standard leads
    the recording lacks)."""
    from matplotlib.collections import LineCollection

    m = paper_marks(ecg, start_s, row_mm)
    ax.set_xlim(0, m.width)
    ax.set_ylim(0, m.height)
    ax.set_axis_off()
    for step, colour, lw in ((1.0, PAPER["minor"], 0.25), (5.0, PAPER["major"], 0.6)):
        xs, ys = m.grid(step)
        lines = [((x, 0.0), (x, m.height)) for x in xs] + [((0.0, y), (m.width, y)) for y in ys]
        ax.add_collection(LineCollection(lines, colors=colour, linewidths=lw, zorder=0))
    ax.add_collection(LineCollection(list(m.strokes), colors=PAPER["trace"], linewidths=0.9))
    ax.add_collection(LineCollection(list(m.traces), colors=PAPER["trace"], linewidths=0.7))
    for x, y, name in m.names:
        ax.text(x, y, name, fontsize=9, fontweight="bold", va="top", color=PAPER["text"])
    for x, y in m.gaps:
        ax.text(x, y, "not recorded", ha="center", va="center", fontsize=8, style="italic",
                color="#777777")
    return m.seconds, list(m.missing)


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
    if fmt == "png":          # PIL: no matplotlib to import (most of a command's time)
        from regen.plot_png import png_page

        return png_page(ecg, start_s=start_s, title=title or f"{ecg.id}", dpi=dpi)
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
