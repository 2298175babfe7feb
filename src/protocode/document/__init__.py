"""The protocol document.

YAML source positions, the loader, the protocol model, history and the lock.
"""
