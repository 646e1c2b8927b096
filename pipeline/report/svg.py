"""SVG markup for the report's charts: elements, escaping and text widths, nothing else.

The charts are a few dozen rectangles, circles, lines and texts each, so they are written as
plain strings: no drawing library to load (matplotlib took half a second to import and a second
to draw an hour's charts). Every text and attribute value goes through :func:`esc`, so a name
from the data is always text, never markup. Numbers are written with at most one decimal, so the
same figures always give the same bytes.

Text widths come from DejaVu Sans's advance widths (the report's first font) instead of from a
layout engine: a label's room is reserved before it is drawn. Other fonts are narrower, so the
reserved room is never too small.
"""

from __future__ import annotations

from html import escape

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"
SIZE = 12.0  # px: axis and tick labels (9 pt)
SMALL = 10.7  # px: value labels and legends (8 pt)
TITLE = 14.7  # px: the chart's title (11 pt, bold)
INK = "#1d232a"  # text, as the report's body text
AXIS = "#333333"
GRID = "#dddddd"

#: Advance widths of DejaVu Sans for " " to "~", in 1/2048 em (the font's units).
_WIDTHS = (
    651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690, 1303,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716, 1087, 2048,
    1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604, 604, 1343, 1141, 1767, 1532, 1612, 1235,
    1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690, 799, 1716, 1024, 1024,
    1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569, 1995, 1298, 1253, 1300,
    1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1303, 690, 1303, 1716,
)  # fmt: skip
_OTHER = 2048  # any other character: a full em, more than any letter of the font but a few


def text_width(text: str, size: float = SIZE) -> float:
    """Width in px of ``text`` set in DejaVu Sans at ``size`` px (an upper bound elsewhere)."""
    units = sum(_WIDTHS[o - 32] if 32 <= (o := ord(c)) < 127 else _OTHER for c in text)
    return units * size / 2048


def esc(value: object) -> str:
    """``value`` as SVG/XML text or attribute value: ``& < > " '`` escaped."""
    return escape(str(value), quote=True)


def num(value: float) -> str:
    """A coordinate with at most one decimal, without a trailing ``.0``."""
    text = f"{value:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def _attrs(attrs: dict[str, object]) -> str:
    """``name="value"`` pairs; a ``_`` in a keyword is a ``-`` (``text_anchor``); None is left
    out; floats are written by :func:`num`."""
    out = []
    for name, value in attrs.items():
        if value is None:
            continue
        shown = num(value) if isinstance(value, float) else esc(value)
        out.append(f' {name.rstrip("_").replace("_", "-")}="{shown}"')
    return "".join(out)


def el(tag: str, content: str | None = None, **attrs: object) -> str:
    """One element; ``content`` is markup already (use :func:`esc` for text)."""
    if content is None:
        return f"<{tag}{_attrs(attrs)} />"
    return f"<{tag}{_attrs(attrs)}>{content}</{tag}>"


def text(x: float, y: float, value: str, size: float = SIZE, anchor: str = "start",
         **attrs: object) -> str:  # fmt: skip
    """A line of text; ``y`` is its baseline."""
    return el("text", esc(value), x=float(x), y=float(y), font_size=float(size),
              text_anchor=None if anchor == "start" else anchor, **attrs)  # fmt: skip


def rect(x: float, y: float, width: float, height: float, fill: str, tip: str = "") -> str:
    """A filled rectangle; ``tip`` is shown on hover (an SVG ``title``)."""
    inner = el("title", esc(tip)) if tip else None
    return el("rect", inner, x=float(x), y=float(y), width=float(max(width, 0.0)),
              height=float(height), fill=fill)  # fmt: skip


def line(x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1.0) -> str:
    return el("line", x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), stroke=stroke,
              stroke_width=float(width))  # fmt: skip


def document(key: str, title: str, desc: str, width: float, height: float,
             body: list[str]) -> str:  # fmt: skip
    """The whole ``<svg>`` element of chart ``key``: its title and description (the alt text)
    are what assistive technology reads for it (``role="img"``, ``aria-labelledby``). The ids
    start with the chart's key, so several charts can sit in one HTML page."""
    ids = f"chart-{key}-title", f"chart-{key}-desc"
    head = (
        f'<svg xmlns="{SVG_NS}" width="{num(width)}" height="{num(height)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" role="img" '
        f'aria-labelledby="{esc(ids[0])} {esc(ids[1])}" font-family="{FONT}" '
        f'font-size="{num(SIZE)}" fill="{INK}">'
    )
    labels = el("title", esc(title), id=ids[0]) + el("desc", esc(desc), id=ids[1])
    return head + labels + "".join(body) + "</svg>"
