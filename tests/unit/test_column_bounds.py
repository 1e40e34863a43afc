"""``columns.check_rows_fit`` refuses exactly what the per-value check refuses, in its words.

It passes the common values (dates, short texts, small numbers) without calling ``_problem``;
held here to a call per value, for every table of the schema and any values a row may carry.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.db.columns import _base_type, _problem, check_rows_fit
from sarcoma_sched.db.models import Base
from sarcoma_sched.errors import InputError

TABLES = sorted(Base.metadata.tables.values(), key=lambda t: t.name)

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.text(alphabet=st.sampled_from("ab\x00é"), max_size=300),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.lists(st.text(alphabet="a\x00", max_size=3), max_size=3),
    st.dictionaries(st.text(alphabet="k\x00", max_size=2), st.text(alphabet="v\x00", max_size=2)),
)


def _one_by_one(table, rows) -> list[str]:
    kinds = {c.name: _base_type(c.type) for c in table.c}
    return [
        problem
        for row in rows
        for name, value in row.items()
        if (problem := _problem(table.name, name, kinds[name], value)) is not None
    ]


@st.composite
def _table_and_rows(draw):
    table = draw(st.sampled_from(TABLES))
    names = [c.name for c in table.c]
    row = st.fixed_dictionaries({name: _values for name in names})
    return table, draw(st.lists(row, min_size=1, max_size=3))


@given(_table_and_rows())
def test_check_rows_fit_refuses_what_each_value_check_refuses(case):
    table, rows = case
    expected = _one_by_one(table, rows)
    if not expected:
        check_rows_fit(table, rows)
        return
    with pytest.raises(InputError) as refused:
        check_rows_fit(table, rows)
    assert str(refused.value) == "; ".join(expected)
