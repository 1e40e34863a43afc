# usdm4 ships no type information (no py.typed): its classes are Any here, on purpose.
# mypy: disable-error-code="import-untyped"
"""Reading the parts of a USDM v4 file the engine models back into a protocol.

The file is read with usdm4's own model (``Wrapper``); the arms, their events and each event's
anchor, offset and calendar-day window come from the standard elements (StudyArm,
ScheduleTimeline, ScheduledActivityInstance, Timing), and what USDM cannot say from the
extension attributes ``sarcoma_sched.protocol.usdm_terms`` names. Every problem is one
``ProtocolError`` naming the file and the element.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sarcoma_sched.errors import Problem, ProtocolError
from sarcoma_sched.input_files import read_text
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.schedule import ALLOCATION
from sarcoma_sched.protocol.usdm_terms import (
    ALLOCATION_INSTANCE,
    ARM_EXTENSION,
    EVENT_EXTENSION,
    STUDY_EXTENSION,
)

__all__ = ["read_usdm"]

_DAYS = re.compile(r"^P(\d+)D$")
_BEFORE, _FIXED_REFERENCE, _END_TO_START = "C201357", "C201358", "C201353"


def read_usdm(path: Path) -> Protocol:
    """The protocol a USDM v4 file describes (its first study version and design)."""
    from pydantic import ValidationError

    from sarcoma_sched.protocol.loader import validate_protocol

    source = str(path)
    text = read_text(path, ProtocolError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(source, "", f"not JSON: {exc.msg} (line {exc.lineno})") from None
    from usdm4.api.wrapper import Wrapper

    try:
        wrapper = Wrapper.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _error(source, where, f"not a USDM v4 study: {first['msg']}") from None
    return validate_protocol(_Reader(source, wrapper).protocol(), source)


def _error(source: str, path: str, message: str) -> ProtocolError:
    return ProtocolError([Problem(source, path, message)])


def _extension(element: Any, url: str) -> dict[str, Any] | None:
    ext = element.get_extension(url)
    if ext is None or not ext.valueString:
        return None
    value = json.loads(ext.valueString)
    return value if isinstance(value, dict) else None


class _Reader:
    def __init__(self, source: str, wrapper: Any) -> None:
        self.source = source
        self.wrapper = wrapper

    def fail(self, path: str, message: str) -> ProtocolError:
        return _error(self.source, path, message)

    def protocol(self) -> dict[str, Any]:
        version = self.wrapper.study.first_version()
        if version is None or not version.studyDesigns:
            raise self.fail("study.versions", "the USDM file has no study version with a design")
        design = version.studyDesigns[0]
        if not design.arms:
            raise self.fail("study.versions[0].studyDesigns[0].arms", "the study design has no arm")
        carried = _extension(version, STUDY_EXTENSION)
        if carried is None:
            # Time zone, holiday country, sites and allocation have no USDM element.
            raise self.fail(
                "study.versions[0].extensionAttributes",
                f"no {STUDY_EXTENSION} extension: the study settings, sites and allocation "
                "the engine needs are not in this file (written by `export usdm`?)",
            )
        study = dict(carried.get("study", {}))
        # The standard elements win over the carried copy: an edit made in USDM is kept.
        study["version"] = version.versionIdentifier
        official = next((t for t in version.titles if t.is_official()), None)
        if official is not None:
            study["title"] = official.text
        return {
            "study": study,
            "sites": carried.get("sites", []),
            "fields": carried.get("fields", []),
            "criteria": carried.get("criteria", []),
            "allocation": carried.get("allocation", {}),
            "arms": [self.arm(design, arm) for arm in design.arms],
        }

    def arm(self, design: Any, arm: Any) -> dict[str, Any]:
        timeline = next((t for t in design.scheduleTimelines if t.name == arm.name), None)
        if timeline is None:
            raise self.fail(f"arms.{arm.name}", f"arm {arm.name} has no schedule timeline")
        carried = _extension(timeline, ARM_EXTENSION) or {}
        instances = {i.id: i for i in timeline.instances}
        entry = instances.get(timeline.entryId)
        timings = {
            t.relativeFromScheduledInstanceId: t
            for t in timeline.timings
            if t.type.code != _FIXED_REFERENCE
        }
        events: list[dict[str, Any]] = []
        by_key: dict[str, dict[str, Any]] = {}
        for instance in timeline.instances:
            if instance is entry:
                continue
            key = _key(arm.name, instance.name)
            ext = _extension(instance, EVENT_EXTENSION) or {}
            timing = timings.get(instance.id)
            where = f"arms.{arm.name}.{key}"
            item: dict[str, Any] = {
                "key": key,
                "kind": ext.get("kind", "visit"),
                "label": instance.label or key,
            }
            if instance.description:
                item["description"] = instance.description
            if "span" in ext:
                item["span"] = ext["span"]
            if "series" in ext:
                item["series"] = ext["series"]
            elif timing is None:
                raise self.fail(where, f"instance {instance.name} has no timing")
            else:
                window = self.window(where, timing, ext.get("timing", {}))
                parent = ext.get("component_of")
                if parent is None:
                    anchor_instance = instances.get(timing.relativeToScheduledInstanceId)
                    if anchor_instance is None:
                        raise self.fail(where, "its timing's anchor is not in the timeline")
                    anchor = (
                        ALLOCATION
                        if anchor_instance is entry
                        else _key(arm.name, anchor_instance.name)
                    )
                    ref: dict[str, Any] = {"event": anchor}
                    if timing.relativeToFrom.code == _END_TO_START:
                        ref["point"] = "end"
                    if ext.get("timing", {}).get("occurrence", "last") != "last":
                        ref["occurrence"] = ext["timing"]["occurrence"]
                    window["anchor"] = ref
            if "repeat" in ext:
                item["repeat"] = ext["repeat"]
            parent = ext.get("component_of")
            if parent is not None:
                if parent not in by_key:
                    raise self.fail(where, f"component of {parent}, which is not before it")
                item["timing"] = window
                by_key[parent].setdefault("components", []).append(item)
                continue
            if "series" not in ext:
                item["timing"] = window
            events.append(item)
            by_key[key] = item
        if not events:
            raise self.fail(f"arms.{arm.name}", f"arm {arm.name} has no scheduled event")
        out: dict[str, Any] = {"id": arm.name, "label": arm.label or arm.name, "events": events}
        if arm.description:
            out["description"] = arm.description
        if carried.get("constraints"):
            out["constraints"] = carried["constraints"]
        return out

    def window(self, where: str, timing: Any, carried: dict[str, Any]) -> dict[str, Any]:
        offset = self.days(where, timing.value)
        if timing.type.code == _BEFORE:
            offset = -offset
        window = {k: v for k, v in carried.items() if k not in ("occurrence", "anchor")}
        window["offset"] = offset
        if timing.windowLower is not None and timing.windowUpper is not None:
            window["earliest"] = offset - self.days(where, timing.windowLower)
            window["latest"] = offset + self.days(where, timing.windowUpper)
        elif "earliest" not in window or "latest" not in window:
            raise self.fail(where, "its timing has no window")
        return window

    def days(self, where: str, duration: str) -> int:
        match = _DAYS.match(duration or "")
        if match is None:
            raise self.fail(where, f"duration {duration!r} is not a whole number of days (PnD)")
        return int(match.group(1))


def _key(arm: str, name: str) -> str:
    """Instance names are ``ARM.key`` (USDM wants them unique across the file)."""
    prefix = f"{arm}."
    key = name[len(prefix) :] if name.startswith(prefix) else name
    return ALLOCATION if key == ALLOCATION_INSTANCE else key
