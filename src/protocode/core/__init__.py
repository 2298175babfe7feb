"""Shared foundations.

Source spans, the error family, exact numbers and JSON text reading.
"""
