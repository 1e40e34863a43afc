"""The schedule database: models (``models``), engine setup (``engine``), units of work
(``session.Database``) and migrations (``migrate``). Import from the submodules."""
