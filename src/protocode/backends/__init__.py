"""Backends that run or reason about the checked IR.

Python closures and generated code, SMT, SQL and the JSON export.
"""
