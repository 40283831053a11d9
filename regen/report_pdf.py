"""A one-page printable report (PDF, landscape A4 or Letter): the 12-lead trace at paper scale
(25 mm/s, 10 mm/mV, the layout of `regen.plot`) with, above it, the report text, the findings
stated (probability / threshold, where from) and the notable ones not stated, the measurement
line, the input notes, the cited corpus reports by key, and the decision-support notice.

Page coordinates are millimetres from the bottom-left corner: one axes spans the page for the
text, one sized 260 x 120 mm holds the paper (rows of 30 mm instead of the picture's 35), so
a printed millimetre is a paper millimetre.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from regen.ecg import ECG
from regen.errors import ConfigError, StorageError
from regen.plot import PAPER, PAPER_W_MM, draw_paper, new_figure, paper_caption
from regen.types import Finding, Report

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PAGES = {"a4": (297.0, 210.0), "letter": (279.4, 215.9)}       # landscape, mm
EDGE_MM, FOOT_MM = 8.0, 11.0          # text margin; the notice's band at the foot
PT_MM = 25.4 / 72                     # one typographic point in mm
NOTABLE_BELOW = 0.6                   # an unstated finding this close to its threshold is shown
ROW_MM = 30.0                         # the page's paper rows: 4 x 30 mm, traces clipped at 3 mV


def _wrap(text: str, width_mm: float, size: float) -> list[str]:
    """Lines of `text` that fit `width_mm` at `size` pt (DejaVu Sans averages ~0.55 em)."""
    return textwrap.wrap(text, max(10, int(width_mm / (size * PT_MM * 0.55)))) or [""]


class Column:
    """Text written down a column of the page from `top` (mm), stopping at `bottom` with a
    line saying what did not fit."""

    def __init__(self, ax: Axes, x: float, width: float, top: float, bottom: float) -> None:
        self.ax, self.x, self.width, self.y, self.bottom = ax, x, width, top, bottom
        self.cut = 0

    def line(self, text: str, size: float = 7.0, *, bold: bool = False, colour: str = "",
             x: float = 0.0, gap: float = 0.0) -> bool:
        """One line (no wrapping); once the column is full (one line kept for `close`), the
        rest are counted, not drawn."""
        if self.cut or self.y - gap - size * PT_MM * 1.3 - 6.5 * PT_MM * 1.3 < self.bottom:
            self.cut += 1
            return False
        self.y -= gap
        self.y -= size * PT_MM * 1.3
        self.ax.text(self.x + x, self.y, text, fontsize=size, va="baseline",
                     fontweight="bold" if bold else "normal", color=colour or PAPER["text"])
        return True

    def para(self, text: str, size: float = 7.0, **kw: object) -> None:
        for i, ln in enumerate(_wrap(text, self.width, size)):
            self.line(ln, size, **(kw if i == 0 else {k: v for k, v in kw.items()
                                                      if k != "gap"}))  # type: ignore[arg-type]

    def close(self, what: str) -> None:
        if self.cut:
            self.y -= 6.5 * PT_MM * 1.3
            self.ax.text(self.x, self.y, f"... {self.cut} more {what} lines (regen report "
                         "--json has all)", fontsize=6.5, style="italic", color="#777777")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def notable_absent(findings: tuple[Finding, ...]) -> list[Finding]:
    """Findings not stated that a reader should know of: not assessable from this input, or
    overruled by a measurement, or within NOTABLE_BELOW of their threshold."""
    return [f for f in findings if not f.present and (
        not f.assessable or f.note or f.probability >= NOTABLE_BELOW * f.threshold)]


def _finding_row(col: Column, f: Finding, colour: str = "") -> None:
    """name (label), then probability / threshold and where it came from, right-aligned."""
    fit = int((col.width - 33) / (7.0 * PT_MM * (0.62 if f.present else 0.55)))
    name = f.name if len(f.name) + len(f.label) + 3 <= fit else \
        f.name[:max(4, fit - len(f.label) - 4)] + "."
    if not col.line(f"{name} ({f.label})", 7.0, bold=f.present, colour=colour):
        return
    col.ax.text(col.x + col.width - 15, col.y, f"{_pct(f.probability)} / {_pct(f.threshold)}",
                fontsize=7.0, ha="right", color=colour or PAPER["text"])
    col.ax.text(col.x + col.width, col.y, f.source, fontsize=6.3, ha="right",
                color="#555555")
    if f.note or not f.assessable:
        col.para(("not assessable: " if not f.assessable else "") + (f.note or ""), 6.3,
                 colour="#777777", x=3.0)


def draw_report_page(report: Report, ecg: ECG, *, paper: str = "a4", start_s: float = 0.0,
                     provenance: str = "", dpi: int = 150) -> Figure:
    """The page as a matplotlib Figure (no pyplot state), for `write_report_pdf` or a PNG."""
    if paper not in PAGES:
        raise ConfigError(f"paper {paper!r}; expected one of {sorted(PAGES)}")
    w, h = PAGES[paper]
    fig = new_figure(w, h, dpi)
    page = fig.add_axes((0, 0, 1, 1))
    page.set_xlim(0, w)
    page.set_ylim(0, h)
    page.set_axis_off()
    # the paper: centred, resting on the notice band
    gx, gy = (w - PAPER_W_MM) / 2, FOOT_MM
    grid = fig.add_axes((gx / w, gy / h, PAPER_W_MM / w, 4 * ROW_MM / h))
    t_end, missing = draw_paper(grid, ecg, start_s, ROW_MM)
    cap_y = gy + 4 * ROW_MM + 1.2
    page.text(gx, cap_y, f"{ecg.id}" + (f"   ({Path(ecg.source).name})" if ecg.source else ""),
              fontsize=7.5, fontweight="bold", color=PAPER["text"])
    page.text(gx + PAPER_W_MM, cap_y, paper_caption(ecg, start_s, t_end, missing),
              fontsize=7, ha="right", color=PAPER["text"])
    # the notice, where every page has it
    page.text(EDGE_MM, 4.0, report.disclaimer, fontsize=8.5, fontweight="bold",
              color="#8a1c1c")
    if provenance:
        page.text(w - EDGE_MM, 4.0, provenance, fontsize=6, ha="right", color="#777777")

    top, bottom = h - EDGE_MM + 1.0, cap_y + 4.0
    usable = w - 2 * EDGE_MM
    a = Column(page, EDGE_MM, usable * 0.42, top, bottom)
    b = Column(page, EDGE_MM + usable * 0.44, usable * 0.31, top, bottom)
    c = Column(page, EDGE_MM + usable * 0.77, usable * 0.23, top, bottom)

    a.line("ECG report (regen)", 11.0, bold=True)
    a.para(report.text, 8.5, gap=1.0)
    state = ("abstained: the evidence is too weak to report" if report.abstained
             else f"refiner {report.refiner}")
    a.line(f"confidence {report.confidence:.2f}   ({state})", 7.5, gap=1.0,
           colour="#b00020" if report.abstained else "")
    m = report.measurements or {}
    if m.get("line") or m.get("error"):
        a.para(f"Measured from the signal: {m.get('line') or m.get('error')}", 8.0,
               bold=True, gap=1.0)
    if report.input is not None:
        n = report.input
        a.para(f"Input: {len(n.leads_used)} of 12 leads"
               + (f" (missing {', '.join(n.leads_missing)})" if n.leads_missing else "")
               + f"; {n.fs_in:g} Hz read, {n.fs_used:g} Hz used; {n.duration_s:.1f} s in "
               f"{n.n_windows} window(s) of {n.window_s:g} s", 7.0, gap=0.8)
        for warn in n.warnings:
            a.para(f"warning: {warn}", 7.0, colour="#b00020")
    a.close("report")

    b.line("Findings stated", 8.5, bold=True)
    b.ax.text(b.x + b.width - 15, b.y, "p / threshold", fontsize=6.5, ha="right",
              color="#555555")
    stated = [f for f in report.findings if f.present]
    for f in stated:
        _finding_row(b, f)
    if not stated:
        b.line("none", 7.0, colour="#777777")
    others = notable_absent(report.findings)
    if others:
        b.line("Not stated (near the threshold, overruled, or not assessable)", 7.0,
               bold=True, gap=1.2, colour="#555555")
        for f in others:
            _finding_row(b, f, "#777777")
    b.close("finding")

    c.line("Cited corpus reports", 8.5, bold=True)
    sources = dict.fromkeys(k for _, k in report.sentences)
    if report.sentences:
        for text, key in report.sentences:
            c.para(f"{key}: {text}", 6.5)
    more = [k for k in report.cited if k not in sources]
    if more:
        c.para(("Their reports state its findings: " if sources else "")
               + ", ".join(more), 6.5, colour="#444444", gap=0.8)
    if report.neighbours:
        c.line("Most similar ECGs", 7.0, bold=True, gap=1.2)
        for nb in report.neighbours[:3]:
            c.para(f"{nb.key} ({nb.score:.2f}): {nb.report}", 6.3, colour="#444444")
    c.close("source")
    return fig


def pdf_target(out: str | Path) -> Path:
    """`out` if a PDF can be written there, checked before any work: a .pdf name in a folder
    that exists and is writable."""
    path = Path(out)
    if path.suffix.lower() != ".pdf":
        raise ConfigError(f"{path}: a printable report is a .pdf; got {path.suffix or 'none'!r}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK) or path.is_dir():
        why = ("is a folder" if path.is_dir() else f"folder {parent} does not exist"
               if not parent.is_dir() else f"folder {parent} is not writable")
        raise StorageError(f"cannot write {path}: {why}; choose a writable .pdf path")
    return path


def write_report_pdf(report: Report, ecg: ECG, out: str | Path, *, paper: str = "a4",
                     start_s: float = 0.0, provenance: str = "") -> Path:
    """Write the one-page PDF to `out` atomically (a temporary file beside it, then renamed):
    a reader never sees half a file, and a failed write leaves no file behind."""
    path = pdf_target(out)
    fig = draw_report_page(report, ecg, paper=paper, start_s=start_s, provenance=provenance)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="pdf", facecolor="white")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; choose a folder that "
                           "exists and is writable") from None
    return path


__all__ = ["draw_report_page", "notable_absent", "pdf_target", "write_report_pdf"]
