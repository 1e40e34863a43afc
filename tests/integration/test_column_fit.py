"""A value its column cannot hold is refused before the flush, identically on SQLite (which
would store it) and PostgreSQL (which would refuse it mid-transaction, leaving the session
unusable): one ``InputError`` naming table, column and bound, and nothing written."""

from __future__ import annotations

import pytest

from sarcoma_sched.db.models import Site, SiteResource
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import InputError
from sarcoma_sched.limits import MAX_STORED_INT
from tests.dumps import dump


def _site(name: str) -> Site:
    return Site(
        code="WCH",
        name=name,
        time_zone="Asia/Shanghai",
        holiday_country="CN",
        holiday_subdivision=None,
        created_at=utc_now(),
    )


def test_text_longer_than_its_column_is_refused_on_every_backend(database, db_url):
    before = dump(db_url)
    with pytest.raises(InputError) as caught, database.write("tester", "site add") as session:
        session.add(_site("n" * 201))
    assert str(caught.value) == (
        "sites.name: 'nnnnnnnnnnnnnnnnnnnnnnn... (201 characters) is longer than the 200 "
        "characters the database stores"
    )
    assert dump(db_url) == before


def test_a_change_to_a_stored_row_is_checked_too_and_the_session_stays_usable(database, db_url):
    with database.write("tester", "site add") as session:
        session.add(_site("West China Hospital"))
    before = dump(db_url)
    with pytest.raises(InputError, match=r"^sites\.name: "), database.write("t", "x") as session:
        session.get(Site, "WCH").name = "W" * 300
    assert dump(db_url) == before
    # The next write in the same process works: nothing half-done was left behind.
    with database.write("tester", "rename") as session:
        session.get(Site, "WCH").name = "W" * 200
    with database.read() as session:
        assert session.get(Site, "WCH").name == "W" * 200


@pytest.mark.parametrize("capacity", [MAX_STORED_INT + 1, -MAX_STORED_INT - 2, 10**30])
def test_an_integer_wider_than_its_column_is_refused_on_every_backend(database, db_url, capacity):
    before = dump(db_url)
    with pytest.raises(InputError) as caught, database.write("t", "capacity") as session:
        session.add(
            SiteResource(
                site_code="PKUIH",
                resource="theatre",
                weekday=1,
                capacity=capacity,
                updated_at=utc_now(),
            )
        )
    assert str(caught.value) == (
        f"site_resources.capacity: {capacity} is outside the range the database stores"
    )
    assert dump(db_url) == before


def test_an_integer_at_the_bound_is_stored_on_every_backend(database):
    with database.write("tester", "capacity") as session:
        session.add(
            SiteResource(
                site_code="PKUIH",
                resource="theatre",
                weekday=1,
                capacity=MAX_STORED_INT,
                updated_at=utc_now(),
            )
        )
    with database.read() as session:
        [row] = session.query(SiteResource).all()
        assert row.capacity == MAX_STORED_INT
