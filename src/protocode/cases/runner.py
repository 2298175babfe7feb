"""Running a case suite: screen each case's record and compare with what it expects."""

from __future__ import annotations

from protocode.cases.results import CaseReport, CaseResult, Mismatch, listing
from protocode.cases.suite import Case, CaseSuite
from protocode.core.errors import RecordError
from protocode.screening import Protocol


def run_cases(protocol: Protocol, suite: CaseSuite) -> CaseReport:
    """Screen every case of `suite` with `protocol` and compare with its expectations.

    Each case gets a `CaseResult`; nothing raises for a bad case. A criterion id that the
    protocol does not have is a mismatch of that case.
    """
    results = tuple(_run_case(protocol, case) for case in suite.cases)
    return CaseReport(suite.path, protocol.registry_id, protocol.version, results)


def _run_case(protocol: Protocol, case: Case) -> CaseResult:
    try:
        record = protocol.record(case.record)
    except RecordError as error:
        return CaseResult(case, None, error=error)
    screening = protocol.screen(record)
    expect = case.expect
    where = {what: str(span) for what, span in expect.spans.items()}
    mismatches: list[Mismatch] = []
    if expect.status is not None and expect.status != screening.status:
        mismatches.append(Mismatch("status", expect.status, screening.status, where["status"]))
    verdicts = {c.id: c.verdict for c in screening.criteria}
    for cid, verdict in expect.criteria:
        what = f"criterion {cid}"
        actual = verdicts.get(cid)
        if actual is None:
            mismatches.append(Mismatch(what, verdict, "no such criterion", where[what]))
        elif actual != verdict:
            mismatches.append(Mismatch(what, verdict, actual, where[what]))
    explanation = protocol.explain(record) if expect.missing is not None or expect.notes else None
    if explanation is not None and expect.missing is not None:
        actual_missing = explanation.missing if screening.status == "indeterminate" else ()
        if set(actual_missing) != set(expect.missing):
            mismatches.append(
                Mismatch(
                    "missing",
                    listing(expect.missing),
                    listing(actual_missing),
                    where["missing"],
                )
            )
    if explanation is not None:
        notes = {c.id: c.notes for c in explanation.criteria}
        for cid, wanted in expect.notes:
            what = f"notes {cid}"
            if cid not in notes:
                mismatches.append(Mismatch(what, listing(wanted), "no such criterion", where[what]))
                continue
            absent = [w for w in wanted if not any(w in note for note in notes[cid])]
            if absent:
                shown = "; ".join(notes[cid]) or "no notes"
                mismatches.append(
                    Mismatch(what, "notes mentioning " + listing(absent), shown, where[what])
                )
    if mismatches and explanation is None:
        explanation = protocol.explain(record)
    return CaseResult(
        case, screening.status, tuple(mismatches), explanation=explanation if mismatches else None
    )
