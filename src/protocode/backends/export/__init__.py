"""JSON export of compiled protocols: the checked, typed IR for tools in other languages.

    >>> doc = export_json(protocode.load("protocol/NCT06125106"))        # doctest: +SKIP
    >>> protocode.pipeline.load_json(doc).screen(record).status          # doctest: +SKIP

The document shape is ``protocode-compiled`` version 1, described in
``docs/compiled-json.md`` and by the JSON Schema that `compiled_schema` returns.
"""

from protocode.backends.export.common import FORMAT, VERSION, compiled_schema
from protocode.backends.export.decode import checked_from_json
from protocode.backends.export.encode import export_json, write_json
from protocode.backends.export.validate import validate_json

__all__ = [
    "FORMAT",
    "VERSION",
    "checked_from_json",
    "compiled_schema",
    "export_json",
    "validate_json",
    "write_json",
]
