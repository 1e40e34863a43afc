"""A timeline's date axis names the months it shows, starting with the first.

matplotlib's concise formatter captions the axis with its last tick, and a chart drawn to
31 December ends on the 1 January boundary: December's schedule was captioned "2027-Jan".
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from tests.pictures import chinese

SVG_NS = "{http://www.w3.org/2000/svg}"


def axis(date_from: dt.date, date_to: dt.date) -> tuple[list[str], str]:
    """The x tick labels and the axis caption of a timeline drawn from ``date_from``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from sarcoma_sched.reports.timeline import timeline_figure

    fig = timeline_figure(chinese.timeline(), dt.date(2026, 12, 20), date_from, date_to)
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    return [t.get_text() for t in ax.get_xticklabels()], ax.xaxis.get_offset_text().get_text()


def test_a_december_timeline_is_captioned_december_not_the_next_january():
    labels, caption = axis(dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert caption == "2026-Dec"
    assert labels[0] == "Dec"
    # No tick names a day after the chart: the 1 January boundary is not labelled.
    assert "Jan" not in labels and "2027" not in labels
    assert all(label.isdigit() for label in labels[1:]), labels


def test_a_timeline_over_new_year_is_captioned_with_both_months():
    labels, caption = axis(dt.date(2026, 12, 3), dt.date(2027, 1, 20))
    assert caption == "2026-Dec – 2027-Jan"
    assert "Jan" in labels
    assert labels.index("Jan") > 0  # the December days come first


def test_the_svg_of_a_patient_allocated_in_december_is_captioned_from_november():
    from sarcoma_sched.reports.style import svg_text
    from sarcoma_sched.reports.timeline import timeline_figure

    fig = timeline_figure(chinese.timeline(dt.date(2026, 12, 2)), dt.date(2026, 12, 20))
    root = ET.fromstring(svg_text(fig).encode("utf-8"))
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]
    # Allocated 2 December, the chart opens 3 days earlier (28 November) and runs to 120 days
    # after the last treatment event (surgery on 22 December).
    assert "2026-Nov – 2027-Apr" in texts
    assert texts[0] == "Dec"


@given(
    start=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)),
    days=st.integers(7, 800),
)
def test_the_caption_always_names_the_first_and_last_month_shown(start, days):
    from sarcoma_sched.reports.timeline import months_shown

    end = start + dt.timedelta(days=days)
    caption = months_shown(start, end)
    assert caption.startswith(start.strftime("%Y-%b"))
    assert caption.endswith(end.strftime("%Y-%b"))
