"""SMT backend (z3): semantic comparison of protocol versions, with witness patients."""

from protocode.smt.decide import compare_criterion, compare_eligibility
from protocode.smt.encode import Unsupported
from protocode.smt.verdict import Comparison, Witness

__all__ = ["Comparison", "Unsupported", "Witness", "compare_criterion", "compare_eligibility"]
