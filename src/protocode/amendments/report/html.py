"""The diff report as one self-contained HTML page, through a Jinja2 template.

The page is `templates/report.html.j2` with `templates/report.css` inline: no script, no
external asset. Autoescaping is on and the render model holds plain text only, so every
value from a protocol or a record is escaped wherever it lands, attributes included, and no
cell is ever taken as markup.
"""

from __future__ import annotations

import html
from functools import cache

import jinja2
from markupsafe import Markup

from protocode.amendments.report.model import view
from protocode.amendments.semantic_diff import DiffReport


def _escaped(value: object) -> object:
    """Every value a template writes, escaped as Python's `html.escape` does.

    Autoescaping would write markupsafe's ``&#34;`` and ``&#39;``; the report has always
    spelled quotes ``&quot;`` and ``&#x27;``, and keeps its bytes. Markup made by the
    template itself (its macros) passes through: it is already escaped.
    """
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("protocode.amendments", "templates"),
        autoescape=True,
        finalize=_escaped,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template("report.html.j2")


def render_html(report: DiffReport) -> str:
    """The report as one self-contained HTML page: inline CSS, no script, escaped content."""
    return _template().render(r=view(report))
