# usdm4 ships no type information (no py.typed): its classes are Any here, on purpose.
# mypy: disable-error-code="import-untyped"
"""CDISC codes for the USDM export, read from the controlled terminology usdm4 ships, so each
code carries the decode and codelist version its own validation rules expect."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["Codes"]


@cache
def _library() -> Any:
    import usdm4
    from usdm4.ct.cdisc.library import Library

    library = Library(str(Path(usdm4.__file__).parent))
    library.load()
    return library


class Codes:
    """Hands out Code objects with ids unique in one file (USDM rule DDF00083)."""

    def __init__(self, ids: Ids) -> None:
        self._ids = ids

    def code(self, concept: str, *, submission_value: bool = False) -> Any:
        from usdm4.api.code import Code

        library = _library()
        codelist = library.cl_by_term(concept)
        if not codelist:
            raise LookupError(f"CDISC concept {concept} is not in usdm4's terminology")
        term = next(t for t in codelist["terms"] if t["conceptId"] == concept)
        # usdm4's rule DDF00031 recognises a Fixed Reference timing by the submission value
        # ("Fixed Reference"), not the preferred term ("Fixed Reference Timing Type").
        decode = term["submissionValue"] if submission_value else term["preferredTerm"]
        return Code(
            id=self._ids.next("Code"),
            code=concept,
            codeSystem=library.system,
            codeSystemVersion=codelist["source"]["effective_date"],
            decode=decode,
        )

    def alias(self, concept: str) -> Any:
        from usdm4.api.alias_code import AliasCode

        return AliasCode(id=self._ids.next("AliasCode"), standardCode=self.code(concept))


class Ids:
    """``Klass_n`` ids, the form usdm4's own builder gives."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def next(self, klass: str) -> str:
        self._counts[klass] = self._counts.get(klass, 0) + 1
        return f"{klass}_{self._counts[klass]}"
