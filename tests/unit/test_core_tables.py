"""The Core clauses of the read path (``db.tables``) name the models' own tables and columns
with the same types, so a listing served without the ORM reads what the ORM would."""

from __future__ import annotations

import pytest
from sqlalchemy import String

from sarcoma_sched.db import tables
from sarcoma_sched.db.models import Base

CLAUSES = [
    tables.SCHEDULED_EVENTS,
    tables.PATIENTS,
    tables.ALLOCATIONS,
    tables.ENROLLMENTS,
    tables.PROTOCOL_VERSIONS,
    tables.PROTOCOL_DEFINITIONS,
    tables.SITES,
    tables.AUDIT_LOG,
]


@pytest.mark.parametrize("clause", CLAUSES, ids=lambda c: c.name)
def test_every_core_column_is_its_models_column_with_the_same_type(clause):
    model = Base.metadata.tables[clause.name]
    for column in clause.c:
        assert column.name in model.c, f"{clause.name}.{column.name} is not in the models"
        declared = model.c[column.name].type
        assert type(column.type) is type(declared), f"{clause.name}.{column.name}"
        if isinstance(declared, String):
            assert column.type.length == declared.length, f"{clause.name}.{column.name}"


def test_the_audit_actor_width_is_the_models():
    from sarcoma_sched.db.refusals import ACTOR_LENGTH

    assert Base.metadata.tables["audit_log"].c.actor.type.length == ACTOR_LENGTH
