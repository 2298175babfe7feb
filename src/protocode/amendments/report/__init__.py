"""The reviewer's report of an amendment (``protocode diff``): text, Markdown, HTML and JSON.

Every format renders one render model (`model.view`, a single walk over the `DiffReport`)
in the same order: the header (registry id, old → new version, whether the new version is
marked illustrative); metadata changes; a summary table of the criteria that changed in
text or meaning or carry a declared intent; each of those criteria in detail (word diff of
its registry text and rule, rationale, verdict, witness patients); the unchanged criteria in
one line; definition changes; the overall eligibility verdict; the cohort's status changes,
when a cohort was given; and the problems, the false or undeclared claims.

The HTML report is one self-contained page (inline CSS, no script, no external asset),
rendered from a Jinja2 template with autoescaping; every string that comes from a protocol
or a record is escaped, in HTML and in Markdown alike, so protocol text can never become
markup. `render_json` is the documented, versioned shape of `DiffReport.to_json` (see
docs/amendments.md).
"""

from protocode.amendments.report.html import render_html
from protocode.amendments.report.json import render_json
from protocode.amendments.report.markdown import render_markdown
from protocode.amendments.report.text import render_text

__all__ = ["render_html", "render_json", "render_markdown", "render_text"]
