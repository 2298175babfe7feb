"""Compile stage: typed IR → executable checkers (`compile_protocol`)."""

from protocode.compile.closures import Env, Evaluator, compile_protocol

__all__ = ["Env", "Evaluator", "compile_protocol"]
