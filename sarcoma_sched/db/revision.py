"""The schema revision this code is written for.

Every command compares it with the database's ``alembic_version`` row by plain SQL, so a query
never pays for importing alembic and parsing the migration scripts (nor, for a read command's
own connection, SQLAlchemy: ``quick_open``); ``tests/integration/test_migrations.py`` keeps it
equal to the scripts' head.
"""

__all__ = ["SCHEMA_REVISION"]

SCHEMA_REVISION = "0012"
