"""Typing a screening record and evaluating it to pass / fail / missing per criterion id."""

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.eligibility import (
    CriterionResult,
    EligibilityResult,
    evaluate,
    evaluate_rule,
    parse_field_values,
)
from sarcoma_sched.errors import InputFileError
from sarcoma_sched.protocol import Protocol, find_protocol, load_protocol
from sarcoma_sched.protocol.screening import (
    AllRule,
    AnyRule,
    AttestationRule,
    FactRule,
    IfRule,
    RangeRule,
)
from tests import cohort

ROOT = Path(__file__).parents[2]
NATARS = find_protocol("NATARS", ROOT / "protocols").protocol
TNT = find_protocol("TNT-STS", ROOT / "protocols").protocol


def _with_every_field_kind() -> Protocol:
    base = load_protocol(ROOT / "tests" / "protocols" / "minimal.toml").protocol
    data = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["fields"] += [
        {"id": "count", "label": "Count", "type": "integer", "min": -5, "max": 500},
        {"id": "free_count", "label": "Unbounded count", "type": "integer"},
        {"id": "dose", "label": "Dose", "type": "number", "unit": "mg", "min": 0, "max": 1e4},
        {"id": "free_number", "label": "Unbounded number", "type": "number"},
        {"id": "smoker", "label": "Smoker", "type": "boolean"},
        {"id": "fit", "label": "Fit for surgery", "type": "attestation"},
        {"id": "consent_date", "label": "Consent date", "type": "date"},
    ]
    return Protocol.model_validate(data)


KINDS = _with_every_field_kind()

# What a coordinator types for a patient who meets everything (strings, as from --field).
ELIGIBLE_NATARS, ELIGIBLE_TNT = cohort.ELIGIBLE_NATARS, cohort.ELIGIBLE_TNT


def _screening_ids(protocol: Protocol) -> list[str]:
    return [c.id for c in protocol.criteria if c.stage == "screening"]


# --- examples on the bundled protocols ----------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "values"), [(NATARS, ELIGIBLE_NATARS), (TNT, ELIGIBLE_TNT)], ids=["NATARS", "TNT"]
)
def test_an_eligible_patient_passes_every_screening_criterion(protocol, values):
    result = evaluate(protocol, values)
    assert result.eligible
    assert [c.id for c in result.criteria] == _screening_ids(protocol)
    assert all(c.outcome == "pass" and c.reason == "" for c in result.criteria)
    assert result.failed == result.missing == []


@pytest.mark.parametrize(
    ("protocol", "changes", "criterion", "reason"),
    [
        (NATARS, {"age_years": "15"}, "INC-13", "age_years is 15, below the minimum 18"),
        (
            NATARS,
            {"histology": "WDLPS"},
            "INC-01",
            "histology is 'WDLPS', which is not one of DDLPS, LMS, UPS, SFT",
        ),
        (
            NATARS,
            {"mdt_r0_r1_possible": "no"},
            "INC-08",
            "attestation mdt_r0_r1_possible not affirmed",
        ),
        (NATARS, {"asa_class": "4"}, "INC-11", "asa_class is 4, above the maximum 3"),
        (
            NATARS,
            {"fnclcc_grade": "1"},
            "INC-04",
            "fnclcc_grade is 1, below the minimum 2 (applies because histology is 'DDLPS')",
        ),
        (
            NATARS,
            {"histology": "LMS", "tumour_size_cm": "9.5"},
            "INC-05",
            "tumour_size_cm is 9.5, below the minimum 10 (applies because histology is 'LMS')",
        ),
        (
            NATARS,
            {"origin": "uterus"},
            "EXC-01",
            "origin is 'uterus', one of the excluded values gi_tract, uterus, urinary_tract",
        ),
        (NATARS, {"metastasis": "yes"}, "EXC-04", "metastasis is yes, expected no"),
        (TNT, {"ecog": "3"}, "INC-02", "ecog is 3, above the maximum 2"),
        (TNT, {"age_years": "76"}, "INC-03", "age_years is 76, above the maximum 75"),
        (
            TNT,
            {"unplanned_excision_elsewhere": "yes", "gross_tumour_present": "no"},
            "EXC-01",
            "gross_tumour_present is no, expected yes "
            "(applies because unplanned_excision_elsewhere is yes)",
        ),
        (
            TNT,
            {"fnclcc_grade": "G1", "tumour_size_cm": "4", "deep_tumour": "no"},
            "INC-01",
            "no alternative holds (fnclcc_grade is 'G1', which is not one of G2, G3; "
            "tumour_size_cm is 4, below the minimum 5; deep_tumour is no, expected yes)",
        ),
        (TNT, {"prior_chemotherapy": "yes"}, "EXC-09", "prior_chemotherapy is yes, expected no"),
    ],
)
def test_each_failing_value_names_its_criterion_and_says_why(protocol, changes, criterion, reason):
    base = ELIGIBLE_NATARS if protocol is NATARS else ELIGIBLE_TNT
    result = evaluate(protocol, {**base, **changes})
    assert not result.eligible
    assert result.failed == [criterion]
    assert result.missing == []
    (failed,) = [c for c in result.criteria if c.outcome == "fail"]
    assert failed.reason == reason


def test_a_value_not_recorded_leaves_its_criterion_missing_never_passed():
    values = {k: v for k, v in ELIGIBLE_TNT.items() if k != "ecog"}
    result = evaluate(TNT, values)
    assert not result.eligible
    assert result.failed == []
    assert result.missing == ["INC-02"]
    (missing,) = [c for c in result.criteria if c.id == "INC-02"]
    assert missing.reason == "no value recorded for ecog"


def test_a_conditional_criterion_passes_when_it_does_not_apply_and_is_missing_when_unknown():
    # LMS: the DDLPS-only requirements of INC-04 do not apply, even with no IHC recorded.
    lms = {**ELIGIBLE_NATARS, "histology": "LMS", "tumour_size_cm": "12"}
    del lms["mdm2_cdk4_ihc"]
    assert evaluate(NATARS, lms).eligible
    # Without a histology nobody can say whether INC-04..06 apply.
    unknown = {k: v for k, v in ELIGIBLE_NATARS.items() if k != "histology"}
    assert evaluate(NATARS, unknown).missing == ["INC-01", "INC-04", "INC-05", "INC-06"]
    # SFT applies INC-06, whose risk score has not been recorded yet.
    sft = evaluate(NATARS, {**ELIGIBLE_NATARS, "histology": "SFT"})
    assert sft.missing == ["INC-06"]
    assert sft.criteria[5].reason == (
        "no value recorded for sft_risk_score (applies because histology is 'SFT')"
    )


def test_an_any_criterion_passes_on_one_alternative_even_if_others_are_missing():
    values = {**ELIGIBLE_TNT, "fnclcc_grade": "G1", "tumour_size_cm": "3"}
    del values["deep_tumour"]
    assert evaluate(TNT, values).missing == ["INC-01"]
    assert evaluate(TNT, {**values, "fnclcc_grade": "G2"}).eligible


def test_post_allocation_criteria_are_not_evaluated_at_screening():
    screening = evaluate(NATARS, ELIGIBLE_NATARS)
    assert "EXC-02" not in [c.id for c in screening.criteria]
    assert screening.eligible  # final histology is unknown before surgery, and not needed

    later = evaluate(NATARS, ELIGIBLE_NATARS, stage="post_allocation")
    assert [c.id for c in later.criteria] == ["EXC-02"]
    assert later.missing == ["EXC-02"]
    wdlps = evaluate(NATARS, {**ELIGIBLE_NATARS, "final_histology": "WDLPS"}, "post_allocation")
    assert wdlps.failed == ["EXC-02"]
    assert wdlps.criteria[0].reason == (
        "final_histology is 'WDLPS', which is not one of DDLPS, LMS, UPS, SFT"
    )


def test_a_stage_without_criteria_excludes_nobody():
    result = evaluate(TNT, {}, stage="post_allocation")
    assert result.criteria == ()
    assert result.eligible


def test_an_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage 'surgery'"):
        evaluate(TNT, {}, stage="surgery")  # type: ignore[arg-type]


# --- typing recorded values ---------------------------------------------------------------------


def test_parse_errors_name_field_and_value_and_all_are_reported_together():
    with pytest.raises(InputFileError) as caught:
        parse_field_values(
            TNT,
            {
                "age_years": "3.5",
                "ecog": "7",
                "deep_tumour": "maybe",
                "fnclcc_grade": "G4",
                "tumour_size_cm": "five",
                "mdt_neoadjuvant_rt": "",
                "ecgo": "1",
            },
        )
    assert caught.value.lines() == [
        "--field: age_years: not a whole number (got '3.5')",
        "--field: ecog: outside the plausible range 0..5 (got '7')",
        "--field: deep_tumour: not yes or no (use true/false, yes/no or 1/0; got 'maybe')",
        "--field: fnclcc_grade: not one of the allowed values G1, G2, G3 (got 'G4')",
        "--field: tumour_size_cm: not a number (got 'five')",
        "--field: mdt_neoadjuvant_rt: empty value (leave the field out while it is not known)",
        "--field: ecgo: unknown screening field; did you mean 'ecog'? (known: "
        + ", ".join(f.id for f in TNT.fields)
        + ")",
    ]


def test_an_implausible_value_is_a_typing_error_not_a_screen_failure():
    with pytest.raises(InputFileError) as caught:
        evaluate(NATARS, {**ELIGIBLE_NATARS, "age_years": "560"})
    assert caught.value.lines() == [
        "screening values: age_years: outside the plausible range 0..120 years (got '560')"
    ]


@pytest.mark.parametrize(("value", "accepted"), [(-1, False), (0, True), (120, True), (121, False)])
def test_plausibility_bounds_include_both_ends(value, accepted):
    if accepted:
        assert parse_field_values(TNT, {"age_years": str(value)}) == {"age_years": value}
    else:
        with pytest.raises(InputFileError, match="age_years: outside the plausible range"):
            parse_field_values(TNT, {"age_years": str(value)})


def test_the_source_names_where_the_values_came_from():
    with pytest.raises(InputFileError, match=r"^screening\.toml: ecog: not a whole number"):
        parse_field_values(TNT, {"ecog": 1.5}, source="screening.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("1", True), (" No ", False), ("FALSE", False), ("0", False)],
)
def test_yes_no_fields_accept_the_usual_spellings(text, expected):
    typed = parse_field_values(TNT, {"deep_tumour": text, "tolerates_rt_and_ai": text})
    assert typed == {"deep_tumour": expected, "tolerates_rt_and_ai": expected}


def test_a_category_typed_in_the_wrong_case_is_normalised_to_its_declared_spelling():
    assert parse_field_values(NATARS, {"histology": "ddlps"}) == {"histology": "DDLPS"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-02-30", "not a real calendar date (got '2024-02-30')"),
        ("20240201", "not a date in the form YYYY-MM-DD (got '20240201')"),
        (dt.datetime(2024, 2, 1, 9, 30), "not a date in the form YYYY-MM-DD"),
    ],
)
def test_a_date_must_be_an_iso_calendar_date(value, message):
    with pytest.raises(InputFileError, match=re.escape(f"--field: consent_date: {message}")):
        parse_field_values(KINDS, {"consent_date": value})


def test_numbers_reject_what_a_coordinator_never_means():
    for bad in ("nan", "inf", "1_000", "٣", True):
        with pytest.raises(InputFileError, match="free_number: not a number"):
            parse_field_values(KINDS, {"free_number": bad})
    with pytest.raises(InputFileError, match="free_count: not a whole number"):
        parse_field_values(KINDS, {"free_count": True})


def test_fields_left_out_or_null_are_simply_not_recorded_yet():
    assert parse_field_values(TNT, {}) == {}
    assert parse_field_values(TNT, {"ecog": None, "age_years": 40}) == {"age_years": 40}


def test_evaluate_types_raw_text_so_false_is_never_read_as_a_truthy_string():
    typed = parse_field_values(TNT, ELIGIBLE_TNT)
    assert evaluate(TNT, typed) == evaluate(TNT, ELIGIBLE_TNT)
    assert typed["prior_chemotherapy"] is False


def test_evaluate_rule_refuses_untyped_values_as_a_programming_error():
    with pytest.raises(TypeError, match="type values with parse_field_values"):
        evaluate_rule(FactRule(type="fact", field="smoker", expected=False), {"smoker": "false"})


# --- stored results -----------------------------------------------------------------------------


def test_a_stored_result_whose_verdict_contradicts_its_criteria_is_refused():
    data = evaluate(NATARS, {}).to_json()
    assert data["eligible"] is False
    with pytest.raises(ValueError, match="inconsistent"):
        EligibilityResult.from_json({**data, "eligible": True})
    with pytest.raises(ValueError, match="malformed criterion result"):
        EligibilityResult.from_json({**data, "criteria": [{"id": "INC-01", "outcome": "maybe"}]})
    with pytest.raises(ValueError, match="unsupported eligibility result format"):
        EligibilityResult.from_json({**data, "format": 2})


# --- properties ---------------------------------------------------------------------------------


def _value_of(field: Any) -> st.SearchStrategy[Any]:
    if field.type in ("integer", "number"):
        lo = -(10**6) if field.min is None else field.min
        hi = 10**6 if field.max is None else field.max
        if field.type == "integer":
            return st.integers(lo, hi)
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if field.type in ("boolean", "attestation"):
        return st.booleans()
    if field.type == "category":
        return st.sampled_from(field.values)
    return st.dates()


def records(protocol: Protocol) -> st.SearchStrategy[dict[str, Any]]:
    """Typed values for a random subset of the protocol's fields (a partial screening)."""
    return st.fixed_dictionaries({}, optional={f.id: _value_of(f) for f in protocol.fields})


@st.composite
def evaluations(draw: st.DrawFn) -> EligibilityResult:
    protocol = draw(st.sampled_from([NATARS, TNT, KINDS]))
    stage = draw(st.sampled_from(["screening", "post_allocation"]))
    return evaluate(protocol, draw(records(protocol)), stage)


@given(evaluations())
def test_a_result_survives_a_round_trip_through_json_text(result):
    text = json.dumps(result.to_json(), sort_keys=True)
    assert EligibilityResult.from_json(json.loads(text)) == result


@given(evaluations())
def test_eligible_exactly_when_every_criterion_passes(result):
    outcomes = [c.outcome for c in result.criteria]
    assert result.eligible == all(o == "pass" for o in outcomes)
    assert result.failed == [c.id for c in result.criteria if c.outcome == "fail"]
    assert result.missing == [c.id for c in result.criteria if c.outcome == "missing"]
    assert all((c.reason == "") == (c.outcome == "pass") for c in result.criteria)


@given(st.sampled_from([NATARS, TNT, KINDS]).flatmap(lambda p: st.tuples(st.just(p), records(p))))
def test_typing_is_idempotent_and_every_typed_value_round_trips_through_its_text(case):
    protocol, typed = case
    assert parse_field_values(protocol, typed) == typed
    assert parse_field_values(protocol, {k: str(v) for k, v in typed.items()}) == typed


# Rule trees over a few fields, checked against a reference three-valued logic where None is
# "not known yet": Kleene's strong logic for all/any, and an `if` that holds vacuously when its
# condition is false but stays unknown while the condition is.
LEAF_FIELDS = ["b0", "b1", "b2", "n0"]


def leaves() -> st.SearchStrategy[Any]:
    facts = st.builds(
        FactRule, type=st.just("fact"), field=st.sampled_from(["b0", "b1"]), expected=st.booleans()
    )
    attested = st.builds(AttestationRule, type=st.just("attestation"), field=st.just("b2"))
    ranged = st.tuples(st.none() | st.integers(0, 10), st.none() | st.integers(0, 10)).filter(
        lambda b: b != (None, None)
    )
    ranges = ranged.map(lambda b: RangeRule(type="range", field="n0", min=b[0], max=b[1]))
    return facts | attested | ranges


def rule_trees() -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        some = st.lists(children, min_size=1, max_size=3)
        return (
            some.map(lambda rs: AllRule(type="all", rules=rs))
            | some.map(lambda rs: AnyRule(type="any", rules=rs))
            | st.tuples(children, children).map(lambda w: IfRule(type="if", when=w[0], then=w[1]))
        )

    return st.recursive(leaves(), extend, max_leaves=8)


tree_values = st.fixed_dictionaries(
    {},
    optional={
        "b0": st.booleans(),
        "b1": st.booleans(),
        "b2": st.booleans(),
        "n0": st.integers(-2, 12),
    },
)


def reference(rule: Any, values: dict[str, Any]) -> bool | None:
    if isinstance(rule, AllRule | AnyRule):
        parts = [reference(r, values) for r in rule.rules]
        decisive = isinstance(rule, AnyRule)
        if decisive in parts:
            return decisive
        return None if None in parts else not decisive
    if isinstance(rule, IfRule):
        cond = reference(rule.when, values)
        return None if cond is None else (reference(rule.then, values) if cond else True)
    value = values.get(rule.field)
    if value is None:
        return None
    if isinstance(rule, FactRule):
        return value == rule.expected
    if isinstance(rule, AttestationRule):
        return value is True
    return (rule.min is None or rule.min <= value) and (rule.max is None or value <= rule.max)


@given(rule_trees(), tree_values)
def test_rule_trees_follow_the_reference_three_valued_logic(rule, values):
    expected = {True: "pass", False: "fail", None: "missing"}[reference(rule, values)]
    outcome, reason = evaluate_rule(rule, values)
    assert outcome == expected
    assert (reason == "") == (outcome == "pass")


@given(rule_trees(), tree_values, st.sets(st.sampled_from(LEAF_FIELDS)))
def test_recording_more_values_never_reverses_a_decided_outcome(rule, full, hidden):
    # Screening is recorded over days; a pass or fail already shown must not flip later.
    partial = {k: v for k, v in full.items() if k not in hidden}
    early, _ = evaluate_rule(rule, partial)
    late, _ = evaluate_rule(rule, full)
    assert early == "missing" or early == late


def test_range_bounds_are_inclusive_at_both_ends():
    rule = RangeRule(type="range", field="n0", min=2, max=5)
    assert [evaluate_rule(rule, {"n0": n})[0] for n in (1, 2, 5, 6)] == [
        "fail",
        "pass",
        "pass",
        "fail",
    ]


def test_criterion_results_are_immutable():
    result = CriterionResult("INC-01", "inclusion", "Adult", "pass", "")
    with pytest.raises(AttributeError):
        result.outcome = "fail"  # type: ignore[misc]
