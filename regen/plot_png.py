"""The ECG page as PNG, drawn with PIL from `regen.plot.paper_marks`: the same layout and scale
as the matplotlib drawing, without importing matplotlib (over half of `regen plot`'s time).
Drawn at SS times the resolution and reduced (anti-aliasing); DejaVu Sans, the font
matplotlib ships, so the PNG reads like the SVG and PDF."""

from __future__ import annotations

import importlib.util
import io
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from regen.ecg import ECG
from regen.plot import HEAD_MM, MARGIN_MM, PAPER, paper_caption, paper_marks

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont, ImageFont

SS = 3                    # supersampling factor


@cache
def _font(size_px: int, style: str = "") -> FreeTypeFont | ImageFont:
    """DejaVu Sans (from matplotlib's data, read as a file: matplotlib is not imported), or
    PIL's own font when that is missing."""
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.submodule_search_locations:
        name = {"bold": "DejaVuSans-Bold.ttf", "italic": "DejaVuSans-Oblique.ttf"}.get(
            style, "DejaVuSans.ttf")
        path = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / name
        if path.exists():
            return ImageFont.truetype(str(path), size_px)
    return ImageFont.load_default(size_px)


def png_page(ecg: ECG, *, start_s: float = 0.0, title: str = "", dpi: int = 110) -> bytes:
    """The 12-lead page (paper with MARGIN_MM around and HEAD_MM for the title line) as PNG
    bytes at `dpi`; 1 mm of paper is dpi / 25.4 pixels."""
    from PIL import Image, ImageDraw

    m = paper_marks(ecg, start_s)
    fig_w, fig_h = m.width + 2 * MARGIN_MM, m.height + HEAD_MM + 2 * MARGIN_MM
    out_w, out_h = round(fig_w / 25.4 * dpi), round(fig_h / 25.4 * dpi)
    px = dpi / 25.4 * SS                       # supersampled pixels per mm
    img = Image.new("RGB", (out_w * SS, out_h * SS), "white")
    draw = ImageDraw.Draw(img)

    def xy(points: np.ndarray) -> list[tuple[float, float]]:
        """paper mm (y up) -> image pixels (y down)"""
        x = (MARGIN_MM + points[:, 0]) * px
        y = (fig_h - MARGIN_MM - points[:, 1]) * px
        return list(zip(x.tolist(), y.tolist()))

    def width(points: float) -> int:           # a line width given in typographic points
        return max(1, round(points / 72 * dpi * SS))

    def pt(size: float) -> int:                # a font size in points
        return round(size / 72 * dpi * SS)

    for step, colour, lw in ((1.0, PAPER["minor"], 0.25), (5.0, PAPER["major"], 0.6)):
        xs, ys = m.grid(step)
        for x in xs:
            draw.line(xy(np.array([[x, 0.0], [x, m.height]])), fill=colour, width=width(lw))
        for y in ys:
            draw.line(xy(np.array([[0.0, y], [m.width, y]])), fill=colour, width=width(lw))
    for stroke in m.strokes:
        draw.line(xy(stroke), fill=PAPER["trace"], width=width(0.9), joint="curve")
    for trace in m.traces:
        draw.line(xy(trace), fill=PAPER["trace"], width=width(0.7), joint="curve")
    for x, y, name in m.names:
        draw.text(xy(np.array([[x, y]]))[0], name, fill=PAPER["text"],
                  font=_font(pt(9), "bold"), anchor="la")     # left, top (ascender)
    for x, y in m.gaps:
        draw.text(xy(np.array([[x, y]]))[0], "not recorded", fill="#777777",
                  font=_font(pt(8), "italic"), anchor="mm")
    top = MARGIN_MM * 0.6 * px
    draw.text((MARGIN_MM * px, top), title, fill=PAPER["text"], font=_font(pt(11), "bold"),
              anchor="la")
    draw.text(((fig_w - MARGIN_MM) * px, top), paper_caption(ecg, start_s, m.seconds,
                                                              list(m.missing)),
              fill=PAPER["text"], font=_font(pt(8)), anchor="ra")
    small = img.reduce(SS)                     # box filter, to (out_w, out_h)
    buf = io.BytesIO()
    small.save(buf, format="PNG", dpi=(dpi, dpi), compress_level=3)
    return buf.getvalue()


__all__ = ["png_page"]
