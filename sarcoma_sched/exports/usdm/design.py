# usdm4 ships no type information (no py.typed): its classes are Any here, on purpose.
# mypy: disable-error-code="import-untyped"
"""A protocol version as a USDM v4 study (usdm4's own model classes).

One study design; one StudyArm per arm; three epochs (screening, treatment, follow-up); one
Encounter and one Activity per event of an arm; one ScheduleTimeline per arm whose entry
instance is the day of allocation, with one ScheduledActivityInstance per event (and per
component of a cycle) and one Timing each: its anchor (``relativeToScheduledInstanceId``,
start or end of the anchor in ``relativeToFrom``), the target offset as an ISO 8601 duration
and the window as ``windowLower``/``windowUpper``. What USDM cannot say travels in extension
attributes (``sarcoma_sched.protocol.usdm_terms``).
"""

from __future__ import annotations

import html
import itertools
import json
from typing import Any

from sarcoma_sched.exports.usdm.codes import Codes, Ids
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.schedule import ALLOCATION, Arm, Component, Event, EventRef, Window
from sarcoma_sched.protocol.usdm_terms import (
    ALLOCATION_INSTANCE,
    ARM_EXTENSION,
    EVENT_EXTENSION,
    STUDY_EXTENSION,
)
from sarcoma_sched.vocabulary import EventKind

__all__ = ["build_study"]

# CDISC concepts (USDM and SDTM controlled terminology).
OFFICIAL_TITLE, BRIEF_TITLE = "C207616", "C207615"
SPONSOR_ROLE, HEALTHCARE_FACILITY, STUDY_REGISTRY = "C70793", "C21541", "C93453"
INVESTIGATIONAL_ARM, DATA_WITHIN_STUDY = "C174266", "C188866"
PARALLEL, SINGLE_GROUP = "C82639", "C82640"
VISIT = "C25716"
AFTER, BEFORE, FIXED_REFERENCE = "C201356", "C201357", "C201358"
START_TO_START, END_TO_START = "C201355", "C201353"
INCLUSION, EXCLUSION = "C25532", "C25370"
INTERVENTIONAL, PRIMARY_OBJECTIVE, PRIMARY_ENDPOINT = "C98388", "C85826", "C94496"
FEMALE, MALE, YEARS = "C16576", "C20197", "C29848"
PHASES = {
    "1": "C15600",
    "1/2": "C15693",
    "2": "C15601",
    "2/3": "C15694",
    "3": "C15602",
    "4": "C15603",
    "N/A": "C48660",
}
# The epoch an event belongs to, by kind: before allocation, the treatment, and after it.
EPOCHS = (
    ("SCREENING", "Screening", "C202487"),
    ("TREATMENT", "Treatment", "C101526"),
    ("FOLLOW_UP", "Follow-up", "C202578"),
)
_EPOCH_OF_KIND = {
    EventKind.BASELINE: "SCREENING",
    EventKind.POSTOP: "FOLLOW_UP",
    EventKind.FOLLOW_UP: "FOLLOW_UP",
}


def build_study(protocol: Protocol) -> Any:
    """The usdm4 ``Wrapper`` of one protocol version."""
    from usdm4.__info__ import __model_version__
    from usdm4.api.wrapper import Wrapper

    import sarcoma_sched

    return Wrapper(
        study=_Builder(protocol).study(),
        usdmVersion=__model_version__,
        systemName="sarcoma-sched",
        systemVersion=sarcoma_sched.__version__,
    )


def _json(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _days(n: int) -> str:
    return f"P{abs(n)}D"


class _Builder:
    def __init__(self, protocol: Protocol) -> None:
        self.p = protocol
        self.ids = Ids()
        self.codes = Codes(self.ids)

    def ext(self, url: str, data: object) -> Any:
        from usdm4.api.extension import ExtensionAttribute

        return ExtensionAttribute(
            id=self.ids.next("ExtensionAttribute"),
            url=url,
            valueString=_json(data),
            instanceType="ExtensionAttribute",
        )

    def study(self) -> Any:
        from usdm4.api.identifier import StudyIdentifier
        from usdm4.api.organization import Organization
        from usdm4.api.study import Study
        from usdm4.api.study_role import StudyRole
        from usdm4.api.study_title import StudyTitle
        from usdm4.api.study_version import StudyVersion

        info = self.p.study
        sponsor = Organization(
            id=self.ids.next("Organization"),
            name=info.sponsor or info.id,
            type=self.codes.code(HEALTHCARE_FACILITY),
            identifierScheme="sponsor",
            identifier=info.sponsor or info.id,
        )
        registry = Organization(
            id=self.ids.next("Organization"),
            name="ClinicalTrials.gov",
            type=self.codes.code(STUDY_REGISTRY),
            identifierScheme="registry",
            identifier="ClinicalTrials.gov",
        )
        titles = [
            StudyTitle(
                id=self.ids.next("StudyTitle"),
                text=info.title,
                type=self.codes.code(OFFICIAL_TITLE),
            )
        ]
        if info.short_title:
            titles.append(
                StudyTitle(
                    id=self.ids.next("StudyTitle"),
                    text=info.short_title,
                    type=self.codes.code(BRIEF_TITLE),
                )
            )
        version_id = self.ids.next("StudyVersion")
        carried = self.p.model_dump(
            mode="json",
            by_alias=True,
            include={"study", "sites", "fields", "criteria", "allocation"},
        )
        version = StudyVersion(
            id=version_id,
            versionIdentifier=info.version,
            rationale=info.variant_note or f"{info.id} protocol version {info.version}",
            titles=titles,
            studyIdentifiers=[
                StudyIdentifier(
                    id=self.ids.next("StudyIdentifier"), text=info.id, scopeId=sponsor.id
                ),
                StudyIdentifier(
                    id=self.ids.next("StudyIdentifier"),
                    text=info.registry_id,
                    scopeId=registry.id,
                ),
            ],
            organizations=[sponsor, registry],
            roles=[
                StudyRole(
                    id=self.ids.next("StudyRole"),
                    name="SPONSOR",
                    code=self.codes.code(SPONSOR_ROLE),
                    appliesToIds=[version_id],
                    organizationIds=[sponsor.id],
                )
            ],
            studyDesigns=[self.design()],
            eligibilityCriterionItems=self.criterion_items,
            extensionAttributes=[self.ext(STUDY_EXTENSION, carried)],
        )
        return Study(
            name=info.id,
            label=info.short_title or info.id,
            description=info.title,
            versions=[version],
        )

    def design(self) -> Any:
        from usdm4.api.population_definition import StudyDesignPopulation
        from usdm4.api.study_cell import StudyCell
        from usdm4.api.study_design import InterventionalStudyDesign
        from usdm4.api.study_element import StudyElement

        self.criterion_items: list[Any] = []
        criteria = self.criteria()
        self.encounters: list[Any] = []
        self.activities: list[Any] = []
        epochs = self.epochs()
        arms = [self.arm(arm) for arm in self.p.arms]
        timelines = [self.timeline(arm, epochs) for arm in self.p.arms]
        elements, cells = [], []
        for arm, study_arm in zip(self.p.arms, arms, strict=True):
            for epoch in epochs.values():
                element = StudyElement(
                    id=self.ids.next("StudyElement"),
                    name=f"{arm.id}.{epoch.name}",
                    label=f"{arm.label}: {epoch.label}",
                )
                elements.append(element)
                cells.append(
                    StudyCell(
                        id=self.ids.next("StudyCell"),
                        armId=study_arm.id,
                        epochId=epoch.id,
                        elementIds=[element.id],
                    )
                )
        _link(self.encounters)
        _link(self.activities)
        info = self.p.study
        return InterventionalStudyDesign(
            id=self.ids.next("InterventionalStudyDesign"),
            name=f"{info.id}_DESIGN",
            label=info.short_title or info.id,
            rationale=info.title,
            studyType=self.codes.code(INTERVENTIONAL),
            objectives=[self.objective()],
            model=self.codes.code(PARALLEL if info.design == "parallel" else SINGLE_GROUP),
            studyPhase=self.codes.alias(PHASES[info.phase]),
            arms=arms,
            epochs=list(epochs.values()),
            studyCells=cells,
            elements=elements,
            encounters=self.encounters,
            activities=self.activities,
            scheduleTimelines=timelines,
            eligibilityCriteria=criteria,
            population=StudyDesignPopulation(
                id=self.ids.next("StudyDesignPopulation"),
                name="POPULATION",
                includesHealthySubjects=False,
                criterionIds=[c.id for c in criteria],
                plannedAge=self.planned_age(),
                plannedSex=self.planned_sex(),
            ),
        )

    def objective(self) -> Any:
        # The engine's protocol file holds no objectives; USDM requires a primary one with a
        # primary endpoint, so they point to the registration instead of inventing a text.
        from usdm4.api.endpoint import Endpoint
        from usdm4.api.objective import Objective

        where = f"the registration {self.p.study.registry_id}"
        return Objective(
            id=self.ids.next("Objective"),
            name="PRIMARY_OBJECTIVE",
            text=f"<p>As stated in {where} (not part of the scheduling protocol file).</p>",
            level=self.codes.code(PRIMARY_OBJECTIVE),
            endpoints=[
                Endpoint(
                    id=self.ids.next("Endpoint"),
                    name="PRIMARY_ENDPOINT",
                    text=f"<p>As stated in {where}.</p>",
                    purpose="Primary",
                    level=self.codes.code(PRIMARY_ENDPOINT),
                )
            ],
        )

    def planned_age(self) -> Any:
        """The age range an inclusion criterion sets on a field counted in years, if any."""
        from usdm4.api.quantity_range import Quantity, Range

        years = {f.id for f in self.p.fields if getattr(f, "unit", "") == "years"}
        for criterion in self.p.criteria:
            rule = criterion.rule.model_dump(mode="json")
            if criterion.kind != "inclusion" or rule.get("type") != "range":
                continue
            if rule.get("field") in years and rule.get("min") is not None and rule.get("max"):

                def quantity(value: float) -> Any:
                    return Quantity(
                        id=self.ids.next("Quantity"), value=value, unit=self.codes.alias(YEARS)
                    )

                return Range(
                    id=self.ids.next("Range"),
                    minValue=quantity(rule["min"]),
                    maxValue=quantity(rule["max"]),
                    isApproximate=False,
                )
        return None

    def planned_sex(self) -> list[Any]:
        # No screening field of the engine restricts sex unless a criterion reads one named so.
        if any("sex" in json.dumps(c.rule.model_dump(mode="json")) for c in self.p.criteria):
            return []
        return [self.codes.code(FEMALE), self.codes.code(MALE)]

    def criteria(self) -> list[Any]:
        from usdm4.api.eligibility_criterion import EligibilityCriterion, EligibilityCriterionItem

        out = []
        for criterion in self.p.criteria:
            item = EligibilityCriterionItem(
                id=self.ids.next("EligibilityCriterionItem"),
                name=criterion.id,
                text=f"<p>{html.escape(criterion.text)}</p>",
            )
            self.criterion_items.append(item)
            category = INCLUSION if criterion.kind == "inclusion" else EXCLUSION
            out.append(
                EligibilityCriterion(
                    id=self.ids.next("EligibilityCriterion"),
                    name=criterion.id,
                    identifier=criterion.id,
                    category=self.codes.code(category),
                    criterionItemId=item.id,
                )
            )
        _link(out)
        return out

    def epochs(self) -> dict[str, Any]:
        from usdm4.api.study_epoch import StudyEpoch

        epochs = {
            name: StudyEpoch(
                id=self.ids.next("StudyEpoch"), name=name, label=label, type=self.codes.code(code)
            )
            for name, label, code in EPOCHS
        }
        _link(list(epochs.values()))
        return epochs

    def arm(self, arm: Arm) -> Any:
        from usdm4.api.comment_annotation import CommentAnnotation
        from usdm4.api.study_arm import StudyArm

        # A reader of the USDM file sees each hard constraint in words; the machine form is
        # in the timeline's extension.
        notes = [
            CommentAnnotation(
                id=self.ids.next("CommentAnnotation"), text=f"{c.id}: {c.description}"
            )
            for c in arm.constraints
        ]
        return StudyArm(
            id=self.ids.next("StudyArm"),
            name=arm.id,
            label=arm.label,
            description=arm.description or None,
            type=self.codes.code(INVESTIGATIONAL_ARM),
            dataOriginDescription="Data collected in the study",
            dataOriginType=self.codes.code(DATA_WITHIN_STUDY),
            notes=notes,
        )

    def timeline(self, arm: Arm, epochs: dict[str, Any]) -> Any:
        from usdm4.api.schedule_timeline import ScheduleTimeline
        from usdm4.api.schedule_timeline_exit import ScheduleTimelineExit
        from usdm4.api.scheduled_instance import ScheduledActivityInstance
        from usdm4.api.timing import Timing

        timeline_id = self.ids.next("ScheduleTimeline")
        exit_ = ScheduleTimelineExit(id=self.ids.next("ScheduleTimelineExit"))
        entry = ScheduledActivityInstance(
            id=self.ids.next("ScheduledActivityInstance"),
            name=f"{arm.id}.{ALLOCATION_INSTANCE}",
            label="Allocation",
            epochId=epochs["TREATMENT"].id,
        )
        instances: dict[str, Any] = {ALLOCATION: entry}
        # The anchor of the timeline: a Fixed Reference timing from and to the allocation.
        timings = [
            Timing(
                id=self.ids.next("Timing"),
                name=f"{arm.id}.{ALLOCATION_INSTANCE}",
                type=self.codes.code(FIXED_REFERENCE, submission_value=True),
                value="P0D",
                valueLabel="Day of allocation",
                relativeToFrom=self.codes.code(START_TO_START),
                relativeFromScheduledInstanceId=entry.id,
                relativeToScheduledInstanceId=entry.id,
            )
        ]
        # Instances first, timings after: an anchor may come later in the file than the event
        # timed from it (the anchor order is the engine's, not the file's).
        pending: list[tuple[str, Any, EventRef | None, Window]] = []
        for event in arm.events:
            epoch = epochs[_EPOCH_OF_KIND.get(event.kind, "TREATMENT")]
            instance = self.instance(arm, event, epoch, _event_extension(event))
            instances[event.key] = instance
            if event.timing is not None:
                pending.append((event.key, instance, event.timing.anchor, event.timing))
            for component in event.components:
                sub = self.instance(
                    arm, component, epoch, _component_extension(event.key, component)
                )
                instances[component.key] = sub
                pending.append((component.key, sub, None, component.timing))
            if event.series is not None:
                self.series_timing(arm, event, instance, timings, instances)
        for key, instance, anchor, window in pending:
            # A component is timed from its own cycle's D1: the parent's start.
            parent = instances[anchor.event] if anchor else instances[_parent_of(arm, key)]
            point_end = anchor is not None and anchor.point == "end"
            timings.append(self.timing(arm, key, instance, parent, window, point_end))
        ordered = list(instances.values())
        # USDM walks a timeline by each instance's default condition: the file's order.
        for before, after in itertools.pairwise(ordered):
            before.defaultConditionId = after.id
        ordered[-1].timelineExitId = exit_.id
        return ScheduleTimeline(
            id=timeline_id,
            name=arm.id,
            label=arm.label,
            mainTimeline=arm is self.p.arms[0],
            entryCondition=f"Patient allocated to {arm.id}",
            entryId=entry.id,
            exits=[exit_],
            timings=timings,
            instances=ordered,
            extensionAttributes=[
                self.ext(
                    ARM_EXTENSION,
                    {
                        "constraints": [
                            c.model_dump(mode="json", by_alias=True, exclude_none=True)
                            for c in arm.constraints
                        ]
                    },
                )
            ],
        )

    def instance(self, arm: Arm, event: Event | Component, epoch: Any, ext: dict[str, Any]) -> Any:
        from usdm4.api.activity import Activity
        from usdm4.api.encounter import Encounter
        from usdm4.api.scheduled_instance import ScheduledActivityInstance

        name = f"{arm.id}.{event.key}"
        encounter = Encounter(
            id=self.ids.next("Encounter"),
            name=name,
            label=event.label,
            description=event.description or None,
            type=self.codes.code(VISIT),
        )
        activity = Activity(
            id=self.ids.next("Activity"),
            name=name,
            label=event.label,
            description=event.description or None,
        )
        self.encounters.append(encounter)
        self.activities.append(activity)
        instance = ScheduledActivityInstance(
            id=self.ids.next("ScheduledActivityInstance"),
            name=name,
            label=event.label,
            description=event.description or None,
            epochId=epoch.id,
            encounterId=encounter.id,
            activityIds=[activity.id],
            extensionAttributes=[self.ext(EVENT_EXTENSION, ext)],
        )
        encounter.scheduledAtId = None
        return instance

    def timing(
        self, arm: Arm, key: str, instance: Any, anchor: Any, window: Window, point_end: bool
    ) -> Any:
        from usdm4.api.timing import Timing

        offset = window.offset
        lower = upper = label = None
        # USDM's window is calendar days around the target; a working-day window (or a target
        # outside its window) is carried by the event's extension instead.
        if window.window_counting == "calendar_days" and window.earliest <= offset <= window.latest:
            lower, upper = _days(offset - window.earliest), _days(window.latest - offset)
            label = f"{window.earliest:+d} to {window.latest:+d} days"
        return Timing(
            id=self.ids.next("Timing"),
            name=f"{arm.id}.{key}",
            type=self.codes.code(BEFORE if offset < 0 else AFTER),
            value=_days(offset),
            valueLabel=f"{offset:+d} days from {anchor.name}",
            relativeToFrom=self.codes.code(END_TO_START if point_end else START_TO_START),
            relativeFromScheduledInstanceId=instance.id,
            relativeToScheduledInstanceId=anchor.id,
            windowLower=lower,
            windowUpper=upper,
            windowLabel=label,
        )

    def series_timing(
        self, arm: Arm, event: Event, instance: Any, timings: list[Any], instances: dict[str, Any]
    ) -> None:
        # The first visit of the series, in months: the rest of the clock is in the extension.
        from usdm4.api.timing import Timing

        assert event.series is not None
        first = event.series.phases[0]
        anchor = event.series.anchor
        timings.append(
            Timing(
                id=self.ids.next("Timing"),
                name=f"{arm.id}.{event.key}",
                type=self.codes.code(AFTER),
                value=f"P{first.every_months}M",
                valueLabel=f"every {first.every_months} months from {anchor.event}",
                relativeToFrom=self.codes.code(
                    END_TO_START if anchor.point == "end" else START_TO_START
                ),
                relativeFromScheduledInstanceId=instance.id,
                relativeToScheduledInstanceId=instances[anchor.event].id,
                windowLower=_days(first.window_days),
                windowUpper=_days(first.window_days),
                windowLabel=f"±{first.window_days} days",
            )
        )


def _parent_of(arm: Arm, component_key: str) -> str:
    return next(e.key for e in arm.events if any(c.key == component_key for c in e.components))


def _window_extension(window: Window) -> dict[str, Any]:
    return window.model_dump(mode="json", exclude={"offset"}, exclude_none=True)


def _event_extension(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": event.kind, "span": event.span.model_dump(mode="json")}
    if event.timing is not None:
        data["timing"] = _window_extension(event.timing) | {
            "occurrence": event.timing.anchor.occurrence
        }
        data["timing"].pop("anchor", None)
    if event.repeat is not None:
        data["repeat"] = event.repeat.model_dump(mode="json", exclude_none=True)
    if event.series is not None:
        data["series"] = event.series.model_dump(mode="json", exclude_none=True)
    return data


def _component_extension(parent: str, component: Component) -> dict[str, Any]:
    return {
        "component_of": parent,
        "kind": component.kind,
        "span": component.span.model_dump(mode="json"),
        "timing": _window_extension(component.timing),
    }


def _link(items: list[Any]) -> None:
    """USDM orders epochs, encounters, activities and criteria by previousId/nextId."""
    for before, after in itertools.pairwise(items):
        before.nextId = after.id
        after.previousId = before.id
