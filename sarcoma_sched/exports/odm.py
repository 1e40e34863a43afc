"""CDISC ODM 1.3.2 for setting up an EDC from the engine's schedule, built with ``odmlib``.

The study's metadata (one StudyEventDef per TV visit, numbered and named exactly as TV, each
with one "Schedule" form), the sites (AdminData Locations) and ClinicalData: per allocated
subject (SubjectKey = the study id, SiteRef = the site), one StudyEventData per scheduled visit
holding its planned day, window, status and, once done, the actual first and last day.
An EDC that imports ODM (OpenClinica, REDCap's ODM import) creates the subjects and their
scheduled events from it. No name, birth date or free-text note is in the file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sarcoma_sched import __version__
from sarcoma_sched.exports.files import write_atomic
from sarcoma_sched.exports.sdtm.common import NOT_VISITS
from sarcoma_sched.exports.sdtm.subjects import visit_finder
from sarcoma_sched.exports.sdtm.tv import planned_visits
from sarcoma_sched.vocabulary import EventStatus

if TYPE_CHECKING:
    from sarcoma_sched.services.queries.subjects import TrialSubjects

__all__ = ["FORM_OID", "ITEMS", "ITEM_GROUP_OID", "STATUS_CODELIST", "odm_document", "write_odm"]

FORM_OID = "F.SCHEDULE"
ITEM_GROUP_OID = "IG.SCHEDULE"
STATUS_CODELIST = "CL.STATUS"
# (OID, name, ODM data type, label) of the items of the schedule form, in form order.
ITEMS = (
    ("IT.PLANNED", "PLANNED", "date", "Planned day"),
    ("IT.WINDOW_START", "WINSTART", "date", "Window opens"),
    ("IT.WINDOW_END", "WINEND", "date", "Window closes"),
    ("IT.STATUS", "STATUS", "text", "Status"),
    ("IT.ACTUAL_START", "ACTSTART", "date", "Actual first day"),
    ("IT.ACTUAL_END", "ACTEND", "date", "Actual last day"),
)


def _event_oid(visitnum: int) -> str:
    return f"SE.V{visitnum}"


def _site_oid(site: str) -> str:
    return f"LOC.{site}"


def odm_document(data: TrialSubjects, *, created: dt.datetime | None = None) -> Any:
    """The ODM document (an odmlib ``ODM``) of ``data``'s study, sites and subjects."""
    from odmlib.odm_1_3_2 import model as ODM

    design = data.protocol
    study = design.id
    mdv_oid = f"MDV.{study}.{design.version}"
    when = (created or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)

    def description(value: str) -> Any:
        return ODM.Description(TranslatedText=[ODM.TranslatedText(_content=value, lang="en")])

    # Every visit of TV once, whatever arm has it (VISITNUM is unique across arms).
    visits: dict[int, str] = {}
    for per_arm in planned_visits(design).values():
        for planned in per_arm.values():
            visits.setdefault(planned.visitnum, planned.visit)
    finder = visit_finder(design)
    subjects = []
    for s in data.subjects:
        visit_of = finder(s)
        events = []
        seen: set[int] = set()
        for e in s.events:
            # Home dosing is no visit; a cancelled event is no longer planned (as in SV).
            if e.kind in NOT_VISITS or e.status == EventStatus.CANCELLED:
                continue
            v = visit_of(e.id)
            if v is None or v.visitnum in seen:
                continue
            seen.add(v.visitnum)
            visits.setdefault(v.visitnum, v.visit)  # a visit only an older version had
            done = e.status == EventStatus.DONE
            values = [
                ("IT.PLANNED", e.target.isoformat()),
                ("IT.WINDOW_START", e.earliest.isoformat()),
                ("IT.WINDOW_END", e.latest.isoformat()),
                ("IT.STATUS", e.status.value),
            ]
            if done:
                values += [
                    ("IT.ACTUAL_START", e.days[0].isoformat()),
                    ("IT.ACTUAL_END", e.days[-1].isoformat()),
                ]
            group = ODM.ItemGroupData(
                ItemGroupOID=ITEM_GROUP_OID,
                ItemData=[ODM.ItemData(ItemOID=oid, Value=value) for oid, value in values],
            )
            events.append(
                ODM.StudyEventData(
                    StudyEventOID=_event_oid(v.visitnum),
                    FormData=[ODM.FormData(FormOID=FORM_OID, ItemGroupData=[group])],
                )
            )
        subjects.append(
            ODM.SubjectData(
                SubjectKey=s.study_id,
                SiteRef=ODM.SiteRef(LocationOID=_site_oid(s.site_code)),
                StudyEventData=events,
            )
        )

    mdv = ODM.MetaDataVersion(
        OID=mdv_oid,
        Name=f"{study} version {design.version}",
        Protocol=ODM.Protocol(
            StudyEventRef=[
                ODM.StudyEventRef(StudyEventOID=_event_oid(n), OrderNumber=n, Mandatory="Yes")
                for n in sorted(visits)
            ]
        ),
        StudyEventDef=[
            ODM.StudyEventDef(
                OID=_event_oid(n),
                Name=visits[n],
                Repeating="No",
                Type="Scheduled",
                FormRef=[ODM.FormRef(FormOID=FORM_OID, Mandatory="Yes")],
            )
            for n in sorted(visits)
        ],
        FormDef=[
            ODM.FormDef(
                OID=FORM_OID,
                Name="Schedule",
                Repeating="No",
                ItemGroupRef=[ODM.ItemGroupRef(ItemGroupOID=ITEM_GROUP_OID, Mandatory="Yes")],
            )
        ],
        ItemGroupDef=[
            ODM.ItemGroupDef(
                OID=ITEM_GROUP_OID,
                Name="Schedule",
                Repeating="No",
                ItemRef=[
                    ODM.ItemRef(ItemOID=oid, OrderNumber=n, Mandatory="Yes" if n <= 4 else "No")
                    for n, (oid, *_) in enumerate(ITEMS, 1)
                ],
            )
        ],
        ItemDef=[
            ODM.ItemDef(
                OID=oid,
                Name=name,
                DataType=kind,
                **({"Length": 10} if kind == "text" else {}),
                Description=description(label),
                **(
                    {"CodeListRef": ODM.CodeListRef(CodeListOID=STATUS_CODELIST)}
                    if oid == "IT.STATUS"
                    else {}
                ),
            )
            for oid, name, kind, label in ITEMS
        ],
        CodeList=[
            ODM.CodeList(
                OID=STATUS_CODELIST,
                Name="Event status",
                DataType="text",
                CodeListItem=[
                    ODM.CodeListItem(
                        CodedValue=status.value,
                        Decode=ODM.Decode(
                            TranslatedText=[ODM.TranslatedText(_content=status.value, lang="en")]
                        ),
                    )
                    for status in EventStatus
                ],
            )
        ],
    )
    first_day: dict[str, dt.date] = {}
    for s in data.subjects:
        first_day[s.site_code] = min(first_day.get(s.site_code, s.allocated), s.allocated)
    admin = ODM.AdminData(
        StudyOID=study,
        Location=[
            ODM.Location(
                OID=_site_oid(site),
                Name=site,
                LocationType="Site",
                MetaDataVersionRef=[
                    ODM.MetaDataVersionRef(
                        StudyOID=study, MetaDataVersionOID=mdv_oid, EffectiveDate=day.isoformat()
                    )
                ],
            )
            for site, day in sorted(first_day.items())
        ],
    )
    return ODM.ODM(
        FileType="Snapshot",
        Granularity="All",
        FileOID=f"ODM.{study}",
        CreationDateTime=when.strftime("%Y-%m-%dT%H:%M:%S"),
        ODMVersion="1.3.2",
        Originator="sarcoma_sched",
        SourceSystem="sarcoma_sched",
        SourceSystemVersion=__version__,
        Study=[
            ODM.Study(
                OID=study,
                GlobalVariables=ODM.GlobalVariables(
                    StudyName=ODM.StudyName(_content=study),
                    StudyDescription=ODM.StudyDescription(_content=design.study.title or study),
                    ProtocolName=ODM.ProtocolName(_content=study),
                ),
                MetaDataVersion=[mdv],
            )
        ],
        AdminData=[admin],
        ClinicalData=[
            ODM.ClinicalData(StudyOID=study, MetaDataVersionOID=mdv_oid, SubjectData=subjects)
        ],
    )


def write_odm(data: TrialSubjects, path: Path, *, created: dt.datetime | None = None) -> int:
    """The ODM file at ``path``, replaced atomically; the number of study events in it."""
    document = odm_document(data, created=created)
    write_atomic(path, document.to_xml_string(xml_declaration=True))
    return sum(len(s.StudyEventData) for s in document.ClinicalData[0].SubjectData)
