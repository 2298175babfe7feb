"""The fallback where z3 does not decide: a hypothesis search for witness patients.

Its verdicts are weaker than proofs and say so: "no counterexample found in N examples".
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from protocode.backends.smt.verdict import Comparison, Direction, Effects, Witness, relation
from protocode.records.strategies import shared_records
from protocode.screening import Protocol

EXAMPLES = 400


def search(old: Protocol, new: Protocol, effects: Effects, why: str) -> Comparison:
    """Search generated records for patients who fare better, and worse, under `new`."""
    # Derandomized: a reviewer who reruns a diff gets the same verdict and witnesses.
    config = settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    # One patient both versions read alike: items of both drawn once, within both ranges
    # and in one unit (merging a record per version let one version's value, or its whole
    # attestations, replace the other's).
    attestations = dict.fromkeys([*old.checked.attestations, *new.checked.attestations])
    strategy = shared_records(old.checked.doc.data, new.checked.doc.data, old.version, attestations)
    witnesses = []
    found = {}
    directions: tuple[Direction, ...] = ("broader", "narrower")
    for direction in directions:

        def differs(record: dict[str, Any], direction: str = direction) -> bool:
            a, b, _, _ = effects(record)
            return b > a if direction == "broader" else b < a

        try:
            record = find(strategy, differs, settings=config)
        except NoSuchExample:
            found[direction] = False
            continue
        _, _, ov, nv = effects(record)
        witnesses.append(Witness(direction, record, ov, nv))
        found[direction] = True
    reason = f" ({why})" if why else ""
    unseen = [d for d in directions if not found[d]]
    note = "searched, not proved" + reason
    if unseen:
        note += f"; no counterexample found in {EXAMPLES} examples ({' or '.join(unseen)})"
    return Comparison(
        relation(found["broader"], found["narrower"]), "searched", tuple(witnesses), note
    )
