"""SMT backend (z3): semantic comparison of protocol versions, with witness patients."""

from protocode.backends.smt.decide import compare_criterion, compare_eligibility
from protocode.backends.smt.encode import Unsupported
from protocode.backends.smt.verdict import Comparison, Witness

__all__ = ["Comparison", "Unsupported", "Witness", "compare_criterion", "compare_eligibility"]
