"""The CONSORT SVG keeps its layout in a browser: headless Chromium (Playwright, the Debian
``chromium`` package, no browser download) opens the file, and the rendered left edge of each
line is measured.

Leading spaces in SVG text are dropped by browsers unless ``xml:space="preserve"`` applies, so
an indent written as spaces is pulled back to the margin there while matplotlib's PNG keeps it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.pictures import chinese
from tests.pictures.tools import chromium, cjk_font

# Each <text>: its characters and the rendered box, in CSS pixels.
MEASURE = """() => [...document.querySelectorAll('text')].map(t => {
  const r = t.getBoundingClientRect();
  return {text: t.textContent, left: r.left, top: r.top, width: r.width};
})"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


def render(browser, svg: Path, screenshot: Path) -> list[dict]:
    page = browser.new_page(viewport={"width": 1000, "height": 1400})
    try:
        page.goto(svg.as_uri())
        boxes = page.evaluate(MEASURE)
        # (full_page waits forever on a bare SVG document: the viewport is made big enough.)
        page.screenshot(path=str(screenshot))
    finally:
        page.close()
    return boxes


def line(boxes: list[dict], start: str) -> dict:
    found = [b for b in boxes if b["text"].lstrip().startswith(start)]
    assert found, f"no line starting {start!r} in {[b['text'] for b in boxes]}"
    return found[0]


def test_the_consort_svg_keeps_its_indents_in_chromium(browser, tmp_path):
    from sarcoma_sched.reports import draw_consort

    flow = chinese.consort()
    # A long criterion text wraps: its second line is indented further still.
    flow.criteria_text["INC-13"] = "Age 18-75 years at the date of signing the informed consent"
    svg = draw_consort(flow, tmp_path / "consort.svg")
    shot = tmp_path / "consort.png"
    boxes = render(browser, svg, shot)

    head = line(boxes, "Excluded (n")
    item = line(boxes, "• Not meeting eligibility criteria")
    sub = line(boxes, "INC-13 (n")
    # In points at 72 per inch the SVG is drawn at 1 CSS px per point: the item's bullet sits
    # at the box margin, the criterion under it 5 spaces in (about 14 px at 9 pt).
    assert abs(item["left"] - head["left"]) < 1.5
    assert sub["left"] - item["left"] > 10, (sub, item)
    # The wrapped criterion's next line starts further in than its first (7 spaces vs 5).
    follow = next(b for b in boxes if b["top"] > sub["top"] + 5 and b["left"] > sub["left"])
    assert follow["left"] - sub["left"] > 3, (follow, sub)
    # An arm's withdrawal reason in Chinese is a "sub" line of its follow-up box, in line with
    # the "withdrawn" line above it (each arm's box has one).
    reason = line(boxes, f"– {chinese.WITHDRAWN}")
    withdrawn = [b for b in boxes if b["text"].startswith("withdrawn (n")]
    assert min(abs(reason["left"] - w["left"]) for w in withdrawn) < 1.5
    assert reason["width"] > 6 * 9, "six ideographs at 9 pt are at least 54 px wide"

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 600
    import matplotlib.image

    assert matplotlib.image.imread(str(shot)).std() > 0.05, "the screenshot is blank"


def test_a_chinese_timeline_renders_in_chromium_with_the_cjk_font(browser, tmp_path):
    import datetime as dt

    from sarcoma_sched.reports import draw_timeline

    family = cjk_font()
    svg = draw_timeline(chinese.timeline(), tmp_path / "timeline.svg", today=dt.date(2026, 12, 20))
    page = browser.new_page()
    try:
        page.goto(svg.as_uri())
        # The browser has the family the SVG names, so it draws Han glyphs, not boxes.
        assert page.evaluate(f"() => document.fonts.check(\"9px '{family}'\", '北京')")
        subtitle = page.evaluate(
            "() => [...document.querySelectorAll('text')].map(t => t.textContent)"
            ".find(t => t.includes('site '))"
        )
        page.screenshot(path=str(tmp_path / "timeline.png"))
    finally:
        page.close()
    assert chinese.SITE in subtitle
    # The row label's two spaces between id and label survive (xml:space="preserve").
    assert 'xml:space="preserve"' in svg.read_text(encoding="utf-8")[:600]
