"""The rule language front end.

Grammar and syntax, checker passes, typed IR, units, types and the function library.
"""
