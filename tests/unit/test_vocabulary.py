"""The vocabulary: statuses, kinds and codes are named by their StrEnum member, never spelled.

The AST walk looks for a bare word of the vocabulary where the code asks about or sets a status,
kind or code: compared with something named so, in a tuple or set of them, passed or assigned
to a parameter, field or key named so, as the keys of a table by kind or status, or in SQL
text such as ``status IN ('planned', ...)``. Docstrings, help texts, messages and type
annotations (a ``Literal`` names the words for the type checker and pydantic's messages) are
not uses; ``test_every_literal_type_spells_exactly_its_vocabulary`` keeps those in step.
"""

from __future__ import annotations

import ast
import re
import typing
from enum import StrEnum
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched import vocabulary as v

PACKAGE = Path(v.__file__).resolve().parent

ENUMS: list[type[StrEnum]] = [
    obj
    for obj in vars(v).values()
    if isinstance(obj, type) and issubclass(obj, StrEnum) and obj is not StrEnum
]
# word -> the enums it belongs to ("missed" is a status and a deviation)
WORDS: dict[str, set[str]] = {}
for _enum in ENUMS:
    for _member in _enum:
        WORDS.setdefault(_member.value, set()).add(_enum.__name__)

# Names under which code holds a status, kind or code (a variable, attribute, parameter, key).
CONTEXT = {"status", "kind", "code", "rule", "stage", "sex", "purpose", "resource", "statuses"}
CONTEXT_SUFFIXES = ("_status", "_kind", "_statuses", "_kinds")
SQL_COLUMN = r"(?:status|kind|sex|purpose|stage|code)"
SQL_COMPARE = re.compile(rf"\b{SQL_COLUMN}\s*(?:=|<>|!=)\s*'(\w+)'", re.IGNORECASE)
SQL_IN = re.compile(rf"\b{SQL_COLUMN}\s+(?:NOT\s+)?IN\s*\(([^)]*)\)", re.IGNORECASE)
# A flag code searched for inside the JSON text of a flags column.
JSON_WORD = re.compile(r'"(\w+)"')


def _is_context(name: str) -> bool:
    return name in CONTEXT or name.endswith(CONTEXT_SUFFIXES)


def _word(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in WORDS:
        return node.value
    return None


def _mentions_context(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and _is_context(sub.id):
            return True
        if isinstance(sub, ast.Attribute) and _is_context(sub.attr):
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and _is_context(sub.value):
            return True  # row["status"]
    return False


def _words_in(node: ast.AST) -> list[str]:
    """The vocabulary words a value spells: itself, or the items of a tuple, list or set."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [w for item in node.elts if (w := _word(item))]
    word = _word(node)
    return [word] if word else []


def _target_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return [str(node.slice.value)]
    if isinstance(node, ast.Tuple | ast.List):
        return [n for elt in node.elts for n in _target_names(elt)]
    return []


def _signatures(trees: dict[str, ast.Module]) -> dict[str, list[list[str]]]:
    """Every function's and dataclass's positional parameter names, by simple name."""
    found: dict[str, list[list[str]]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
                if names[:1] in (["self"], ["cls"]):
                    names = names[1:]
                found.setdefault(node.name, []).append(names)
            elif isinstance(node, ast.ClassDef):
                fields = [
                    s.target.id
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                ]
                if fields:
                    found.setdefault(node.name, []).append(fields)
    return found


class _Finder(ast.NodeVisitor):
    def __init__(self, relative: str, signatures: dict[str, list[list[str]]]) -> None:
        self.relative = relative
        self.signatures = signatures
        self.found: list[str] = []

    def _hit(self, node: ast.AST, words: list[str] | str, how: str) -> None:
        shown = ", ".join(words) if isinstance(words, list) else words
        self.found.append(f"{self.relative}:{getattr(node, 'lineno', '?')}: {shown!r} {how}")

    # Type annotations name the words for the type checker: not uses.
    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            if any(_is_context(n) for n in _target_names(node.target)):
                self._assigned(node, node.value)
            self.visit(node.value)

    def visit_arguments(self, node: ast.arguments) -> None:
        positional = [*node.posonlyargs, *node.args]
        pairs = list(
            zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True)
        )
        pairs += [
            (a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None
        ]
        for arg, default in pairs:
            if _is_context(arg.arg) and (words := _words_in(default)):
                self._hit(default, words, f"as the default of {arg.arg}")
        for default in [*node.defaults, *(d for d in node.kw_defaults if d is not None)]:
            self.visit(default)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)
        self._body(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for item in [*node.bases, *node.keywords, *node.decorator_list]:
            self.visit(item)
        self._body(node.body)

    def visit_Module(self, node: ast.Module) -> None:
        self._body(node.body)

    def _body(self, body: list[ast.stmt]) -> None:
        for i, stmt in enumerate(body):
            is_doc = (
                i == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            )
            if not is_doc:
                self.visit(stmt)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.value, ast.Name | ast.Attribute) and (
            getattr(node.value, "id", None) == "Literal"
            or getattr(node.value, "attr", None) == "Literal"
        ):
            return  # Literal["planned", ...] is a type
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        names = [n for t in node.targets for n in _target_names(t)]
        if "__all__" in names or "__slots__" in names:
            return
        if any(_is_context(n) for n in names):
            self._assigned(node, node.value)
        self.generic_visit(node)

    def _assigned(self, node: ast.AST, value: ast.AST) -> None:
        for sub in ast.walk(value):
            if isinstance(sub, ast.Call):
                continue
            if word := _word(sub):
                self._hit(node, word, "assigned to a status, kind or code")

    def visit_Compare(self, node: ast.Compare) -> None:
        sides = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, sides, sides[1:], strict=False):
            if not isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
                continue
            for literal, other in ((left, right), (right, left)):
                words = _words_in(literal)
                if words and _mentions_context(other):
                    self._hit(node, words, "compared with a status, kind or code")
        self.generic_visit(node)

    def visit_Tuple(self, node: ast.Tuple | ast.List | ast.Set) -> None:
        words = _words_in(node)
        strings = [e for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if words and len(words) == len(strings):
            shared = set.intersection(*(WORDS[w] for w in words))
            if shared and (len(words) > 1 or len(node.elts) == 1):
                self._hit(node, words, f"as a group of {'/'.join(sorted(shared))}")
        self.generic_visit(node)

    visit_List = visit_Tuple
    visit_Set = visit_Tuple

    def visit_Dict(self, node: ast.Dict) -> None:
        keys = [k for k in node.keys if k is not None]
        key_words = [w for k in keys if (w := _word(k))]
        if len(key_words) >= 2 and len(key_words) == len(keys):
            shared = set.intersection(*(WORDS[w] for w in key_words))
            if shared:
                self._hit(node, key_words, f"as the keys of a table by {'/'.join(sorted(shared))}")
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and isinstance(key.value, str)
                and _is_context(key.value)
                and (words := _words_in(value))
            ):
                self._hit(value, words, f"as the value of {key.value!r}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg and _is_context(keyword.arg) and (words := _words_in(keyword.value)):
                self._hit(keyword.value, words, f"passed as {keyword.arg}=")
        callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        for i, arg in enumerate(node.args):
            words = _words_in(arg)
            if not words:
                continue
            params = [s[i] for s in self.signatures.get(callee, []) if i < len(s)]
            if any(_is_context(p) for p in params):
                self._hit(arg, words, f"passed to {callee} as its {params[0]}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str):
            return
        text = node.value
        words = [w for w in SQL_COMPARE.findall(text) if w in WORDS]
        for listed in SQL_IN.findall(text):
            words += [w for w in re.findall(r"'(\w+)'", listed) if w in WORDS]
        if words:
            self._hit(node, words, "in SQL text")
        codes = [w for w in JSON_WORD.findall(text) if w in {c.value for c in v.FlagCode}]
        if codes and "%" in text:
            self._hit(node, codes, "searched for in JSON text")


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "vocabulary.py" or relative.startswith("_migrations/"):
            continue
        trees[relative] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return trees


def bare_words() -> list[str]:
    trees = _modules()
    signatures = _signatures(trees)
    found: list[str] = []
    for relative, tree in trees.items():
        finder = _Finder(relative, signatures)
        finder.visit(tree)
        found += finder.found
    return found


def test_no_module_spells_a_status_kind_or_code_where_it_means_the_vocabulary() -> None:
    found = bare_words()
    assert not found, "name the vocabulary member instead:\n" + "\n".join(found)


def test_the_walk_catches_each_way_a_bare_word_is_used() -> None:
    source = '''
"""A docstring may say planned and done."""
def f(e, status="planned", kind: str = "labs"):
    """So may this one: status == 'planned'."""
    if e.status == "planned" or row["kind"] in ("oral", "labs"):
        e.status = "cancelled"
    x = ("missed", "skipped")
    record(e, "done")
    Thing(code="unsatisfiable")
    d = {"status": "done", "other": "label"}
    t = {"theatre": 1, "infusion": 2}
    sql = "CHECK (status IN ('planned', 'done'))"
    like = '%"over_capacity"%'
    hint: Literal["planned", "done"] = e
    fine = ("enrollment", "excluded", "a label")
    echo("done")
def record(event, status): ...
'''
    tree = ast.parse(source)
    finder = _Finder("example.py", _signatures({"example.py": tree}))
    finder.visit(tree)
    lines = sorted({int(hit.split(":")[1]) for hit in finder.found})
    assert lines == [3, 5, 6, 7, 8, 9, 10, 11, 12, 13]


# --- the groups ----------------------------------------------------------------------------------

S = v.EventStatus


@given(st.sampled_from(list(S)))
def test_every_status_is_either_booked_or_off_the_calendar_never_both(status: S) -> None:
    assert (status in v.BOOKED_STATUSES) != (status in v.OFF_CALENDAR)


@given(st.sampled_from(list(S)))
def test_every_status_but_planned_and_cancelled_is_one_a_coordinator_records(status: S) -> None:
    assert (status in v.RECORDABLE_STATUSES) == (status not in (S.PLANNED, S.CANCELLED))


@given(st.sampled_from(list(S)))
def test_what_did_not_happen_was_recorded_and_is_off_the_calendar(status: S) -> None:
    expected = status in v.RECORDABLE_STATUSES and status in v.OFF_CALENDAR
    assert (status in v.NOT_HAPPENED) == expected
    if status in v.NOT_HAPPENED:
        assert status in {d.value for d in v.DeviationKind}  # each is a deviation


def test_the_kind_groups_partition_and_keep_the_pathway_order() -> None:
    order = list(v.EventKind)
    assert tuple(k.value for k in order) == v.EVENT_KINDS
    assert all(type(k) is str for k in v.EVENT_KINDS)
    for group in (v.TREATMENT_KINDS, v.WORKLOAD_KINDS, v.AT_HOME_KINDS):
        assert list(group) == sorted(group, key=order.index)
    assert set(v.WORKLOAD_KINDS) | set(v.AT_HOME_KINDS) == set(order)
    assert not set(v.WORKLOAD_KINDS) & set(v.AT_HOME_KINDS)
    assert set(v.AT_HOME_KINDS) <= set(v.TREATMENT_KINDS)


def test_the_end_kinds_are_the_patient_statuses_of_a_participation_that_ended() -> None:
    assert {k.value for k in v.EndKind} <= {s.value for s in v.PatientStatus}
    assert tuple(k.value for k in v.EndKind) == v.END_KINDS
    assert all(type(k) is str for k in (*v.END_KINDS, *v.SEXES, *v.RESOURCE_NAMES))


def test_the_rule_groups_are_builtin_rules() -> None:
    assert set(v.PLACEMENT_RULES) <= set(v.BUILTIN_RULES) == set(v.ViolationRule)


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_every_member_is_its_own_lowercase_word_and_dumps_as_plain_text(enum) -> None:
    import json

    for member in enum:
        assert member == member.value == str(member) == f"{member}"
        assert re.fullmatch(r"[a-z][a-z_]*", member.value)
        assert json.dumps({"x": member}) == json.dumps({"x": member.value})


def test_every_literal_type_spells_exactly_its_vocabulary() -> None:
    from sarcoma_sched.protocol.schedule import EventKind

    assert typing.get_args(EventKind) == v.EVENT_KINDS


def test_the_enrollment_counts_are_every_patient_status_once_in_column_order() -> None:
    assert [*v.PRE_ALLOCATION, *v.ALLOCATED_STATUSES] == list(v.PatientStatus)
    assert set(v.EndKind) <= set(v.ALLOCATED_STATUSES)
