"""A compiled protocol's endpoints (`endpoints`), checked by `load` with every section.

The passes themselves are `protocode.language.check.grading`, `.derived` and `.endpoints`;
`check_endpoints` runs them alone on a checked protocol.
"""

from __future__ import annotations

from protocode.core.errors import CheckError, Diagnostic
from protocode.language.check import AnyEndpoint, CheckedProtocol
from protocode.language.check.derived import check_derived_events
from protocode.language.check.endpoints import check_endpoints as endpoints_pass
from protocode.language.check.grading import check_grading
from protocode.screening import Protocol


def check_endpoints(checked: CheckedProtocol) -> tuple[AnyEndpoint, ...]:
    """Check every endpoint, derived event and grading table of a checked protocol; raise one
    `CheckError` with all problems."""
    diagnostics: list[Diagnostic] = []
    for run in (check_grading, check_derived_events, endpoints_pass):
        checked, found = run(checked)
        diagnostics += found
    if diagnostics:
        raise CheckError(diagnostics)
    return checked.endpoints


def endpoints(protocol: Protocol) -> tuple[AnyEndpoint, ...]:
    """The protocol's checked endpoints, in file order."""
    return protocol.checked.endpoints
