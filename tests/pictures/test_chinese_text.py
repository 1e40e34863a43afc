"""Chinese site names, arm labels and reasons are drawn with glyphs, not boxes.

matplotlib warns "Glyph N (...) missing from font(s) ..." for every character no font of the
chain has, and draws a box in its place: here that warning is an error.
"""

from __future__ import annotations

import datetime as dt
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.pictures import chinese
from tests.pictures.tools import cjk_font

SVG_NS = "{http://www.w3.org/2000/svg}"
TODAY = dt.date(2026, 12, 20)


def draw_all(out: Path) -> list[Path]:
    from sarcoma_sched.reports import draw_consort, draw_timeline

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"Glyph \d+ .* missing from font")
        return [
            draw_consort(chinese.consort(), out / "consort.png"),
            draw_consort(chinese.consort(), out / "consort.svg"),
            draw_timeline(chinese.timeline(), out / "timeline.png", today=TODAY),
            draw_timeline(chinese.timeline(), out / "timeline.svg", today=TODAY),
        ]


def test_chinese_names_and_reasons_render_with_no_glyph_missing(tmp_path):
    family = cjk_font()
    written = draw_all(tmp_path)
    assert [p.name for p in written] == [
        "consort.png",
        "consort.svg",
        "timeline.png",
        "timeline.svg",
    ]
    consort = ET.parse(tmp_path / "consort.svg").getroot()
    texts = [("".join(t.itertext()), t.get("style") or "") for t in consort.iter(f"{SVG_NS}text")]
    drawn = " ".join(text for text, _ in texts)
    for words in (chinese.SURGERY, chinese.WITHDRAWN, chinese.CRITERION, "新辅助化疗后手术"):
        assert words in drawn, words
    # A browser is told the same chain: the CJK family first, DejaVu Sans after it.
    assert all(f"font-family: '{family}', 'DejaVu Sans'" in style for _, style in texts)
    timeline = ET.parse(tmp_path / "timeline.svg").getroot()
    drawn = " ".join("".join(t.itertext()) for t in timeline.iter(f"{SVG_NS}text"))
    assert f"site {chinese.SITE}" in drawn and f"arm {chinese.SURGERY}" in drawn
    assert chinese.WITHDRAWN in drawn


def test_the_font_chosen_holds_every_chinese_character_drawn():
    from matplotlib import ft2font
    from matplotlib.font_manager import FontProperties, findfont

    family = cjk_font()
    path = findfont(FontProperties(family=family), fallback_to_default=False)
    charmap = ft2font.FT2Font(path).get_charmap()
    missing = {c for text in chinese.CHINESE for c in text if ord(c) not in charmap}
    assert not missing, f"{path} lacks {sorted(missing)}"


def test_dejavu_sans_alone_would_draw_boxes_and_the_check_says_so(tmp_path):
    """The check above can fail: DejaVu Sans, the font pinned before, has no Han glyphs."""
    import matplotlib

    from sarcoma_sched.reports.style import figure

    fig = figure(3, 1)
    fig.text(0.1, 0.5, chinese.SITE, family="DejaVu Sans")
    with (
        warnings.catch_warnings(),
        pytest.raises(UserWarning, match=r"Glyph \d+ .* missing from font\(s\) DejaVu Sans"),
    ):
        warnings.filterwarnings("error", message=r"Glyph \d+ .* missing from font")
        fig.savefig(tmp_path / "boxes.png", format="png")
    assert matplotlib.rcParams["font.family"][-1] == "DejaVu Sans"
