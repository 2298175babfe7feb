"""Compile stage: typed IR → executable checkers.

The reference backend compiles to traced closures (`compile_protocol`); the fast backend
generates one Python function (`pycode.compile_fast`); `SectionFunctions` compiles the
optional sections' expressions.
"""

from protocode.backends.python.closures import Env, Evaluator, compile_protocol
from protocode.backends.python.sections import SectionFunctions

__all__ = ["Env", "Evaluator", "SectionFunctions", "compile_protocol"]
