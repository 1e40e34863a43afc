"""define.xml 2.1 for the SDTM datasets written, built with ``odmlib``'s Define-XML 2.1 model.

One ItemGroupDef per dataset file (its class, structure, keys and the file it describes), one
ItemDef per variable (type, the length the file gives it, label, origin) and a CodeList for
each variable whose values come from a codelist: CDISC's (with its NCI code as an Alias) or
the sponsor's (DVDECOD, DVCAT: CDISC publishes none). A codelist lists the terms the files
use, as the define.xml specification asks of a submission, not the whole CDISC list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sarcoma_sched import __version__
from sarcoma_sched.exports.files import write_atomic
from sarcoma_sched.exports.sdtm.common import Row
from sarcoma_sched.exports.sdtm.ts import CT_VERSION, SDTMIG_VERSION
from sarcoma_sched.exports.sdtm.variables import (
    DATASET_CLASS,
    DATASET_LABELS,
    KEYS,
    VARIABLES,
    Variable,
)
from sarcoma_sched.exports.sdtm.writers import SUFFIX, Format, item_oid, lengths
from sarcoma_sched.protocol.model import Protocol

__all__ = ["CODELISTS", "STRUCTURE", "define_xml", "write_define"]

# (codelist name, NCI code of the CDISC codelist or None for a sponsor-defined one) per
# (dataset or "*", variable).
CODELISTS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("*", "SEX"): ("Sex", "C66731"),
    ("*", "AGEU"): ("Age Unit", "C66781"),
    ("*", "EPOCH"): ("Epoch", "C99079"),
    ("SV", "SVPRESP"): ("No Yes Response", "C66742"),
    ("SV", "SVOCCUR"): ("No Yes Response", "C66742"),
    ("DS", "DSCAT"): ("Category for Disposition Event", "C74558"),
    # NCOMPLT (C66727) for a participation's end, Protocol Milestone (C114118) for consent
    # and randomization: one list of the terms used, extended by neither.
    ("DS", "DSDECOD"): ("Standardized Disposition Term", None),
    ("DM", "ARMNRS"): ("Reason For Null Arm", "C142179"),
    ("DV", "DVDECOD"): ("Protocol Deviation Coded Term", None),
    ("DV", "DVCAT"): ("Category for Protocol Deviation", None),
    ("TS", "TSPARMCD"): ("Trial Summary Parameter Test Code", "C66738"),
    ("TA", "EPOCH"): ("Epoch", "C99079"),
    ("TI", "IECAT"): ("Category for Inclusion/Exclusion", "C66797"),
}

STRUCTURE = {
    "TA": "One record per planned Element per Arm",
    "TE": "One record per planned Element",
    "TV": "One record per planned Visit per Arm",
    "TI": "One record per I/E criterion",
    "TS": "One record per trial summary parameter value",
    "DM": "One record per subject",
    "SE": "One record per actual Element per subject",
    "SV": "One record per actual or planned visit per subject",
    "DS": "One record per disposition status or protocol milestone per subject",
    "DV": "One record per protocol deviation",
    "SUPPSV": "One record per IDVAR, IDVARVAL, and QNAM value per subject",
    "SUPPDS": "One record per IDVAR, IDVARVAL, and QNAM value per subject",
    "SUPPDV": "One record per IDVAR, IDVARVAL, and QNAM value per subject",
}

# What the engine computes, rather than records from a coordinator or takes from the protocol.
_DERIVED = {
    "USUBJID", "EPOCH", "VISITNUM", "VISIT", "VISITDY", "TAETORD", "ETCD", "ELEMENT", "ARMNRS",
    "ACTARMCD", "ACTARM", "SVPRESP", "SVOCCUR", "RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC",
    "RFPENDTC", "SESTDTC", "SEENDTC", "DVDECOD", "DVCAT", "DVTERM", "DSDECOD", "DSCAT",
    "COUNTRY", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "RDOMAIN", "QORIG",
}  # fmt: skip
_ASSIGNED = {"STUDYID", "DOMAIN", "ARMCD", "ARM", "SITEID", "SUBJID"}


def _codelist_key(dataset: str, name: str) -> tuple[str, str] | None:
    for key in ((dataset, name), ("*", name)):
        if key in CODELISTS:
            return key
    return None


def _codelist_oid(key: tuple[str, str]) -> str:
    return f"CL.{key[1]}" if key[0] == "*" else f"CL.{key[0]}.{key[1]}"


def _origin(dataset: str, v: Variable) -> tuple[str, str | None]:
    if DATASET_CLASS[dataset] == "TRIAL DESIGN" and v.name not in ("STUDYID", "DOMAIN"):
        return "Protocol", None
    if v.name in _ASSIGNED:
        return "Assigned", "Sponsor"
    if v.name in _DERIVED or v.name.endswith(("SEQ", "DY")):
        return "Derived", None
    return "Collected", "Investigator"


def _data_type(v: Variable) -> str:
    return "integer" if v.type == "Num" else ("date" if v.date else "text")


def define_xml(
    datasets: Mapping[str, list[Row]],
    fmt: Format,
    protocol: Protocol,
    *,
    created: dt.datetime | None = None,
) -> Any:
    """The define.xml document (an odmlib ``ODM``) describing ``datasets`` as written."""
    from odmlib.define_2_1 import model as DEFINE

    study = protocol.id
    when = (created or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)

    def text(value: str) -> Any:
        return DEFINE.Description(TranslatedText=[DEFINE.TranslatedText(_content=value, lang="en")])

    standards = DEFINE.Standards(
        Standard=[
            DEFINE.Standard(
                OID="STD.SDTMIG", Name="SDTMIG", Type="IG", Version=SDTMIG_VERSION, Status="Final"
            ),
            DEFINE.Standard(
                OID="STD.CT.SDTM",
                Name="CDISC/NCI",
                Type="CT",
                PublishingSet="SDTM",
                Version=CT_VERSION,
                Status="Final",
            ),
        ]
    )
    mdv = DEFINE.MetaDataVersion(
        OID=f"MDV.{study}",
        Name=f"{study} SDTM",
        Description=f"SDTMIG {SDTMIG_VERSION} datasets of {study}",
        DefineVersion="2.1.0",
        Standards=standards,
    )
    used: dict[tuple[str, str], set[str]] = {}
    for name, rows in datasets.items():
        sizes = lengths(name, rows)
        keys = KEYS.get(name, [])
        group = DEFINE.ItemGroupDef(
            OID=f"IG.{name}",
            Name=name,
            Repeating="No" if name == "DM" else "Yes",
            IsReferenceData="Yes" if DATASET_CLASS[name] == "TRIAL DESIGN" else "No",
            SASDatasetName=name,
            Purpose="Tabulation",
            Structure=STRUCTURE[name],
            StandardOID="STD.SDTMIG",
            ArchiveLocationID=f"LF.{name}",
            Description=text(DATASET_LABELS[name]),
            Class=DEFINE.Class(Name=DATASET_CLASS[name]),
            leaf=DEFINE.leaf(
                ID=f"LF.{name}",
                href=f"{name.lower()}.{SUFFIX[fmt]}",
                title=DEFINE.title(_content=f"{name.lower()}.{SUFFIX[fmt]}"),
            ),
        )
        if not name.startswith("SUPP"):
            group.Domain = name
        for order, v in enumerate(VARIABLES[name], 1):
            ref = DEFINE.ItemRef(
                ItemOID=item_oid(name, v.name),
                OrderNumber=order,
                Mandatory="Yes" if v.core == "Req" else "No",
            )
            if v.name in keys:
                ref.KeySequence = keys.index(v.name) + 1
            group.ItemRef.append(ref)
            kind, source = _origin(name, v)
            origin = DEFINE.Origin(Type=kind)
            if source:
                origin.Source = source
            item = DEFINE.ItemDef(
                OID=item_oid(name, v.name),
                Name=v.name,
                DataType=_data_type(v),
                SASFieldName=v.name,
                Description=text(v.label),
                Origin=[origin],
            )
            if v.type == "Char" and not v.date:
                item.Length = sizes[v.name]
            elif v.type == "Num":
                item.Length = 8
            key = _codelist_key(name, v.name)
            present = {str(r[v.name]) for r in rows if r.get(v.name) not in (None, "")}
            # A codelist needs a term; a variable with no value yet (ARMNRS when everyone
            # is treated) refers to none.
            if key is not None and present:
                item.CodeListRef = DEFINE.CodeListRef(CodeListOID=_codelist_oid(key))
                used.setdefault(key, set()).update(present)
            mdv.ItemDef.append(item)
        mdv.ItemGroupDef.append(group)
    for key, values in sorted(used.items()):
        label, nci = CODELISTS[key]
        codelist = DEFINE.CodeList(OID=_codelist_oid(key), Name=label, DataType="text")
        if nci is not None:
            codelist.StandardOID = "STD.CT.SDTM"
            codelist.Alias = [DEFINE.Alias(Context="nci:ExtCodeID", Name=nci)]
        for value in sorted(values):
            codelist.EnumeratedItem.append(DEFINE.EnumeratedItem(CodedValue=value))
        mdv.CodeList.append(codelist)
    odm = DEFINE.ODM(
        FileType="Snapshot",
        FileOID=f"DEFINE.{study}",
        CreationDateTime=when.strftime("%Y-%m-%dT%H:%M:%S"),
        ODMVersion="1.3.2",
        Originator="sarcoma_sched",
        SourceSystem="sarcoma_sched",
        SourceSystemVersion=__version__,
        Context="Submission",
        Study=DEFINE.Study(
            OID=study,
            GlobalVariables=DEFINE.GlobalVariables(
                StudyName=DEFINE.StudyName(_content=study),
                StudyDescription=DEFINE.StudyDescription(_content=protocol.study.title or study),
                ProtocolName=DEFINE.ProtocolName(_content=study),
            ),
            MetaDataVersion=mdv,
        ),
    )
    return odm


def write_define(
    datasets: Mapping[str, list[Row]],
    directory: Path,
    fmt: Format,
    protocol: Protocol,
    *,
    created: dt.datetime | None = None,
) -> Path:
    """``define.xml`` in ``directory``, beside the dataset files it describes."""
    document = define_xml(datasets, fmt, protocol, created=created)
    directory.mkdir(parents=True, exist_ok=True)
    data = document.to_xml_string(xml_declaration=True)
    return write_atomic(directory / "define.xml", data)
