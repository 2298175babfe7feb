"""The compiled protocol: one object holding everything compiled for a protocol version."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any, Literal, TypeVar, cast, get_args

from protocode.backends.python import Env, Evaluator, SectionFunctions, compile_protocol
from protocode.backends.python.pycode import compile_fast
from protocode.core.errors import RecordError, UsageError
from protocode.language.check import CheckedCriterion, CheckedProtocol
from protocode.records import Record, RecordReader, unique_records
from protocode.screening.explain import Trace, explain
from protocode.screening.results import (
    VERDICTS,
    CriterionResult,
    Explanation,
    Screening,
    Status,
    overall,
)

Backend = Literal["fast", "reference"]
"""How a `Protocol` screens: "fast" runs the generated Python function of every criterion
(`backends.python.pycode`), "reference" the closures that also trace explanations
(`backends.python.closures`). Both give the same verdicts."""

BACKENDS: tuple[Backend, ...] = get_args(Backend)
"""Every backend a `Protocol` can screen with, the default first."""

_T = TypeVar("_T")


class Protocol:
    """A checked and compiled protocol version: screen records, explain, read record files."""

    def __init__(self, checked: CheckedProtocol, backend: Backend = "fast") -> None:
        if backend not in BACKENDS:
            choices = ", ".join(BACKENDS)
            raise UsageError.at("usage", f"unknown backend {backend!r}; one of {choices}", None)
        self.checked = checked
        self.backend: Backend = backend
        self.reader = RecordReader(checked.doc.data, checked.attestations)
        self._kinds = tuple(c.kind for c in checked.criteria)
        self._verdicts, self._status = self._screeners(backend)
        # Plans a backend built for this protocol (e.g. SQL statements by input column types),
        # kept here so that they live and die with the protocol.
        self.plans: dict[Hashable, Any] = {}
        self._built: dict[Callable[[Protocol], Any], Any] = {}
        # Results are immutable: one shared object per criterion and verdict.
        self._results = tuple(
            {v: CriterionResult(c.id, c.kind, text) for v, text in VERDICTS.items()}
            for c in checked.criteria
        )

    def _screeners(
        self, backend: Backend
    ) -> tuple[Callable[[Record], tuple[bool | None, ...]], Callable[[Record], Status]]:
        """The verdicts and status functions of `backend`, each taking a record."""
        if backend == "reference":
            criteria, kinds = self.closures.criteria, self._kinds

            def reference_verdicts(record: Record) -> tuple[bool | None, ...]:
                env = Env(record)
                return tuple(fn(env) for fn in criteria)

            def reference_status(record: Record) -> Status:
                return overall(zip(kinds, reference_verdicts(record), strict=True))

            return reference_verdicts, reference_status
        program = compile_fast(self.checked)
        verdicts_fn, status_fn = program.verdicts_fn, program.status_fn

        def fast_verdicts(record: Record) -> tuple[bool | None, ...]:
            return verdicts_fn(record.values, record.series, record.events, record.attestations)

        def fast_status(record: Record) -> Status:
            return cast(
                Status,
                status_fn(record.values, record.series, record.events, record.attestations),
            )

        return fast_verdicts, fast_status

    @cached_property
    def closures(self) -> Evaluator:
        """The reference closures without tracing (the "reference" backend's screening)."""
        return compile_protocol(self.checked)

    @cached_property
    def traced(self) -> Evaluator:
        """The reference closures with tracing, for explanations and coverage (built once)."""
        return compile_protocol(self.checked, trace=True)

    @cached_property
    def sections(self) -> SectionFunctions:
        """The optional sections' expressions (dosing and endpoint dates, conditions),
        compiled once."""
        return SectionFunctions(self.checked)

    def built(self, factory: Callable[[Protocol], _T]) -> _T:
        """What `factory` builds for this protocol, built on first use and kept with it.

        For objects a later stage makes from a protocol (the dosing compliance reader): they
        live and die with the protocol, instead of in a table keyed by it.
        """
        if factory not in self._built:
            self._built[factory] = factory(self)
        return cast(_T, self._built[factory])

    @property
    def registry_id(self) -> str:
        """The registry id, e.g. NCT06125106."""
        return self.checked.doc.metadata.registry_id

    @property
    def version(self) -> str:
        """The protocol version."""
        return self.checked.doc.metadata.version

    @property
    def criteria(self) -> tuple[CheckedCriterion, ...]:
        """The checked criteria, inclusion first, in file order."""
        return self.checked.criteria

    def to_sql(self, dialect: str = "duckdb", *, pretty: bool = True) -> str:
        """The screening query over the documented table layout, in a sqlglot `dialect`."""
        from protocode.backends.sql import to_sql  # noqa: PLC0415 - sqlglot only when SQL is asked for

        return to_sql(self.checked, dialect, pretty=pretty)

    def to_json(self) -> dict[str, Any]:
        """The checked, typed rules as a ``protocode-compiled`` document (docs/compiled-json.md)."""
        from protocode.backends.export import export_json  # noqa: PLC0415 - the export imports Protocol

        return export_json(self)

    def record(self, data: Record | Mapping[str, Any]) -> Record:
        """A validated record (raises `RecordError` with every bad field)."""
        return data if isinstance(data, Record) else self.reader.parse(data)

    def verdicts(self, record: Record) -> tuple[bool | None, ...]:
        """Raw three-valued verdicts per criterion (True = the criterion holds)."""
        return self._verdicts(record)

    def status(self, record: Record) -> Status:
        """Only the overall status: the fastest path, for bulk screening."""
        return self._status(record)

    def screen(self, data: Record | Mapping[str, Any]) -> Screening:
        """Screen one record: overall status and every criterion's verdict."""
        record = self.record(data)
        values = self.verdicts(record)
        results = tuple(choices[v] for choices, v in zip(self._results, values, strict=True))
        status = overall(zip(self._kinds, values, strict=True))
        return Screening(record.id, status, results, record, self)

    def screen_many(
        self, records: Iterable[Record | RecordError | Mapping[str, Any]]
    ) -> Iterator[Screening | RecordError]:
        """Screen many records; a bad record yields its `RecordError` and the batch goes on.

        A record whose id was already seen is an error too: results are reported by id, so
        two patients under one id would be indistinguishable.
        """
        for item in unique_records(records, self.reader):
            yield item if isinstance(item, RecordError) else self.screen(item)

    def trace(self, data: Record | Mapping[str, Any]) -> Trace:
        """Evaluate one record recording the value of every IR node (for coverage tools)."""
        record = self.record(data)
        traced = self.traced
        env = Env(record, trace=True)
        verdicts = tuple(fn(env) for fn in traced.criteria)
        return Trace(record, verdicts, traced, env)

    def explain(self, data: Record | Mapping[str, Any]) -> Explanation:
        """Screen one record with tracing, and explain every criterion."""
        return explain(self.checked, self.trace(data))
