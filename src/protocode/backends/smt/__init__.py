"""SMT backend (z3): proves how two checked protocol versions relate, with witness patients.

`prove_criterion` and `prove_eligibility` answer over checked IR; confirming a witness by
screening it, and searching where z3 does not decide, belong to `protocode.amendments`.
"""

from protocode.backends.smt.decide import Undecided, prove_criterion, prove_eligibility
from protocode.backends.smt.patient import Unsupported
from protocode.backends.smt.verdict import Comparison, Witness

__all__ = [
    "Comparison",
    "Undecided",
    "Unsupported",
    "Witness",
    "prove_criterion",
    "prove_eligibility",
]
