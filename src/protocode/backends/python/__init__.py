"""Compile stage: typed IR → executable checkers (`compile_protocol`)."""

from protocode.backends.python.closures import Env, Evaluator, compile_protocol

__all__ = ["Env", "Evaluator", "compile_protocol"]
