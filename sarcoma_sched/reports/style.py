"""What every picture shares: colours by event kind, fonts, and saving as SVG or PNG.

matplotlib is imported inside the functions that draw, never at module import, so the command
line's ``--help`` stays fast; the Agg backend is chosen before pyplot is touched, so nothing
ever needs a display.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sarcoma_sched.errors import Conflict, NotFound
from sarcoma_sched.files import write_atomic
from sarcoma_sched.reports.fonts import font_families
from sarcoma_sched.vocabulary import EventKind

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEVIATION",
    "FORMATS",
    "KIND_COLOURS",
    "KIND_LABELS",
    "NBSP",
    "FontStyle",
    "check_out_path",
    "figure",
    "png_data",
    "preserve_spaces",
    "save",
    "svg_text",
    "text_width",
    "wrap_text",
]

# The font styles matplotlib draws.
FontStyle = Literal["normal", "italic", "oblique"]

# Colour-blind-safe (Okabe-Ito and Paul Tol muted); red is kept for deviations only.
KIND_COLOURS: dict[str, str] = {
    EventKind.BASELINE: "#9e9e9e",
    EventKind.RADIOTHERAPY: "#882255",
    EventKind.LABS: "#88ccee",
    EventKind.INFUSION: "#0072b2",
    EventKind.ORAL: "#44aa99",
    EventKind.IMAGING: "#117733",
    EventKind.SURGERY: "#e69f00",
    EventKind.POSTOP: "#ddcc77",
    EventKind.FOLLOW_UP: "#6b4c9a",
    EventKind.VISIT: "#555555",
}
KIND_LABELS: dict[str, str] = {
    EventKind.BASELINE: "baseline",
    EventKind.RADIOTHERAPY: "radiotherapy fraction",
    EventKind.LABS: "labs",
    EventKind.INFUSION: "infusion day",
    EventKind.ORAL: "oral (at home)",
    EventKind.IMAGING: "imaging",
    EventKind.SURGERY: "surgery",
    EventKind.POSTOP: "post-op check",
    EventKind.FOLLOW_UP: "follow-up visit",
    EventKind.VISIT: "visit",
}
DEVIATION = "#d62728"
FORMATS = (".svg", ".png")


def check_out_path(path: Path) -> Path:
    """Refuse, before any work, an output file the pictures cannot be written to."""
    if path.suffix.lower() not in FORMATS:
        raise Conflict(f"--out {path}: the file name must end in .svg or .png")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise NotFound(f"--out {path}: directory {parent} does not exist")
    if path.is_dir():
        raise Conflict(f"--out {path} is a directory; give a file name ending in .svg or .png")
    return path


def _matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    # Text stays text in SVG (searchable, testable, small); PNG is unaffected.
    matplotlib.rcParams["svg.fonttype"] = "none"
    # Fixed ids and no creation date: the same data gives byte-identical SVG files.
    matplotlib.rcParams["svg.hashsalt"] = "sarcoma-sched"
    # A chain, not one font: matplotlib takes each glyph from the first font that has it, so
    # Chinese site names and reasons are drawn, not boxes (reports/fonts.py).
    matplotlib.rcParams["font.family"] = font_families()
    matplotlib.rcParams["font.size"] = 9
    return matplotlib


def figure(width: float, height: float) -> Figure:
    """A new figure (inches) not registered with pyplot, so nothing leaks between reports."""
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def save(fig: Figure, path: Path, *, dpi: int = 150) -> Path:
    """Write the figure as SVG or PNG (by suffix), replacing the file atomically."""
    import io

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    # Rendered in memory, then handed to the one atomic writer: matplotlib opening a file by
    # name would follow a symlink planted there.
    if fmt == "svg":
        return write_atomic(path, svg_text(fig))
    buf = io.BytesIO()
    metadata = {"Software": "sarcoma-sched"}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata, facecolor="white")
    return write_atomic(path, buf.getvalue())


def png_data(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding in an HTML page)."""
    import io

    buf = io.BytesIO()
    fig.savefig(
        buf, format="png", dpi=dpi, metadata={"Software": "sarcoma-sched"}, facecolor="white"
    )
    return buf.getvalue()


def svg_text(fig: Figure) -> str:
    """The figure as an SVG document (for embedding in an HTML page)."""
    import io

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, facecolor="white")
    return preserve_spaces(buf.getvalue())


def preserve_spaces(svg: str) -> str:
    """The document with ``xml:space="preserve"`` on its root element.

    SVG text collapses runs of spaces and drops leading ones unless told otherwise (SVG 1.1
    section 10.15), so a browser would join "ai.1  AI+A" and pull an indented line left.
    matplotlib writes text verbatim; one attribute on the root is inherited by every <text>.
    """
    return svg.replace("<svg ", '<svg xml:space="preserve" ', 1)


@lru_cache(maxsize=4096)
def text_width(
    text: str, size: float, weight: str = "normal", style: FontStyle = "normal"
) -> float:
    """Width in inches of ``text`` as matplotlib will draw it (for wrapping and layout)."""
    _matplotlib()
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    # At 72 dpi one pixel is one point.
    renderer = _renderer(RendererAgg)
    prop = FontProperties(family=font_families(), size=size, weight=weight, style=style)
    width, _, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)
    return float(width) / 72


@lru_cache(maxsize=1)
def _renderer(cls: Any) -> Any:
    return cls(10, 10, 72)


def wrap_text(
    text: str,
    width: float,
    size: float,
    *,
    weight: str = "normal",
    style: FontStyle = "normal",
    indent: str = "",
    follow: str = "",
) -> list[str]:
    """Greedy word wrap by measured width. Words split on plain spaces only, so a no-break
    space (U+00A0, see ``NBSP``) keeps "(n = 12)" on one line; it is drawn as a space."""

    def fits(line: str) -> bool:
        return text_width(line.replace(NBSP, " "), size, weight, style) <= width

    lines: list[str] = []
    current = ""
    for word in (w for w in text.split(" ") if w):
        trial = f"{current} {word}" if current else (follow if lines else indent) + word
        if current and not fits(trial):
            lines.append(current)
            current = follow + word
        else:
            current = trial
    lines.append(current)
    return [line.replace(NBSP, " ") for line in lines]


NBSP = "\u00a0"
