"""Which fonts the pictures draw with: a CJK font first, found at run time, then DejaVu Sans.

Chinese trials name their sites, arms and reasons in Chinese (北京大学人民医院, 手术,
撤回知情同意); DejaVu Sans, matplotlib's own font, has no Han glyphs, so alone it draws every
one as a box. ``font_families()`` returns the fallback chain matplotlib draws with, glyph by
glyph: the first installed font of ``CJK_FAMILIES`` (the README's setup installs
``fonts-noto-cjk``), then DejaVu Sans, which matplotlib always ships. Without any CJK font the
chain is DejaVu Sans alone, as before, and matplotlib warns of each missing glyph.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["CJK_FAMILIES", "FALLBACK", "cjk_family", "font_families"]

# Simplified Chinese forms first (the trials run in mainland China); the Traditional and
# Japanese cuts of the same families hold the same code points with regional glyph shapes.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Noto Sans CJK TC",
    "Source Han Sans TC",
    "Noto Sans CJK JP",
    "Source Han Sans",
)
FALLBACK = "DejaVu Sans"

# The file names these families ship under (Debian's fonts-noto-cjk, fonts-wqy-zenhei,
# fonts-wqy-microhei, Adobe's Source Han releases).
_FILES = re.compile(r"(NotoSansCJK|SourceHanSans|wqy-zenhei|wqy-microhei)", re.IGNORECASE)


def _installed() -> set[str]:
    from matplotlib import font_manager

    return {f.name for f in font_manager.fontManager.ttflist}


@lru_cache(maxsize=1)
def cjk_family() -> str | None:
    """The first family of ``CJK_FAMILIES`` matplotlib can draw with, or None."""
    from matplotlib import font_manager

    names = _installed()
    if not any(f in names for f in CJK_FAMILIES):
        # matplotlib's font list is cached per user and version and never notices a font
        # installed after it was written: look for the files themselves once.
        for path in font_manager.findSystemFonts():
            if _FILES.search(path):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue  # an unreadable file is no font; the next candidate may be
        names = _installed()
    return next((f for f in CJK_FAMILIES if f in names), None)


def font_families() -> list[str]:
    """The chain matplotlib draws text with: the CJK family found, then DejaVu Sans."""
    found = cjk_family()
    return [found, FALLBACK] if found else [FALLBACK]
