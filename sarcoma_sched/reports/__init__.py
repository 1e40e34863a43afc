"""Pictures and pages for trial managers: CONSORT flow, patient timelines, site workload, and an
offline HTML report. Renderers only: each takes the data ``services.queries`` reads (plain
numbers, testable without a picture) and never a session; matplotlib is imported only when
something is drawn.
"""

from sarcoma_sched.reports.consort import consort_rows, draw_consort
from sarcoma_sched.reports.html import write_html_report
from sarcoma_sched.reports.timeline import draw_timeline
from sarcoma_sched.reports.workload import draw_workload

__all__ = [
    "consort_rows",
    "draw_consort",
    "draw_timeline",
    "draw_workload",
    "write_html_report",
]
