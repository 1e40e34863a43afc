"""Pictures and pages for trial managers: CONSORT flow, patient timelines, site workload, and an
offline HTML report. Each module keeps its database query (plain numbers, testable) apart from
its drawing; matplotlib is imported only when something is drawn.
"""

from sarcoma_sched.reports.consort import ArmFlow, ConsortFlow, consort_flow, draw_consort
from sarcoma_sched.reports.html import write_html_report
from sarcoma_sched.reports.timeline import PatientTimeline, draw_timeline, patient_timeline
from sarcoma_sched.reports.workload import WORKLOAD_KINDS, draw_workload, workload

__all__ = [
    "WORKLOAD_KINDS",
    "ArmFlow",
    "ConsortFlow",
    "PatientTimeline",
    "consort_flow",
    "draw_consort",
    "draw_timeline",
    "draw_workload",
    "patient_timeline",
    "workload",
    "write_html_report",
]
