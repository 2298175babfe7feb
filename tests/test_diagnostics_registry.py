"""The diagnostic code registry (`protocode.core.codes`) and the source agree.

`diagnostic_scan` reads every module of ``src/protocode`` with `ast` and finds each code
that can reach a `Diagnostic` (literals, helpers' code parameters, variables, conditional
expressions, f-strings, dicts and lists of codes, exception attributes). The tests fail,
listing the codes and places, when a code can be reported but is not declared, when a
declared code is reported nowhere, or when the scan cannot tell which code a place reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostic_scan import CodeScan
from helpers import ROOT
from protocode.core import codes

SRC = ROOT / "src" / "protocode"
DOC = ROOT / "docs" / "diagnostics.md"


@pytest.fixture(scope="module")
def scan() -> CodeScan:
    return CodeScan(SRC)


def test_every_code_the_source_reports_is_declared(scan: CodeScan) -> None:
    undeclared = {
        code: sorted(map(str, sites))
        for code, sites in scan.codes.items()
        if code not in codes.BY_NAME
    }
    assert not undeclared, (
        "codes reported but not declared in src/protocode/core/codes.toml "
        f"(declare each with what it means and what to do): {undeclared}"
    )


def test_every_declared_code_is_reported_somewhere(scan: CodeScan) -> None:
    unused = sorted(set(codes.BY_NAME) - set(scan.codes))
    assert not unused, f"declared in codes.toml but reported nowhere in src/: {unused}"


def test_the_scan_resolves_every_place_a_code_is_chosen(scan: CodeScan) -> None:
    # A code the scan cannot follow (built at run time, passed through an unknown call) could
    # be anything: such a place must pick its code from literals the scan sees.
    unresolved = sorted(f"{site}: {text}" for site, text in scan.unresolved)
    assert not unresolved, f"cannot tell which diagnostic code these report: {unresolved}"


def test_the_scan_finds_the_codes_of_each_kind_of_place(scan: CodeScan) -> None:
    # Guards against a scan that passes by finding nothing: one code reached each way.
    assert {"usage", "yaml-syntax", "schema"} <= set(scan.codes)  # `at`, literal, helper
    assert "change-target" in scan.codes  # a tuple returned and unpacked
    assert "bad-value" in scan.codes  # an exception's default code attribute
    assert "registry" in scan.codes  # a module constant
    assert "duplicate-key" in scan.codes  # a callable passed as a parameter
    assert len(scan.codes) >= 48


def test_codes_are_well_formed_and_grouped_by_a_declared_stage() -> None:
    stages = {stage.name for stage in codes.STAGES}
    for code in codes.CODES:
        assert code.stage in stages, code
        assert code.name == code.name.lower() and " " not in code.name, code
        assert code.means.strip() and code.do.strip(), code
    assert len(codes.BY_NAME) == len(codes.CODES), "a code is declared twice"


def test_docs_diagnostics_md_is_generated_from_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == codes.markdown(), (
        "docs/diagnostics.md is stale: python -m protocode.core.codes > docs/diagnostics.md"
    )


def test_scan_reports_an_undeclared_code(tmp_path: Path) -> None:
    # The scan itself: codes reached through a helper parameter, a dict and a conditional
    # are found, and a code built at run time is reported as unresolved.
    package = tmp_path / "protocode"
    (package / "core").mkdir(parents=True)
    (package / "core" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    errors = (SRC / "core" / "errors.py").read_text(encoding="utf-8")
    (package / "core" / "errors.py").write_text(errors)
    (package / "core" / "source.py").write_text((SRC / "core" / "source.py").read_text())
    (package / "stage.py").write_text(
        "from protocode.core.errors import Diagnostic, ProtocodeError\n"
        "KINDS = {'a': 'from-dict', 'b': 'also-from-dict'}\n"
        "class Checker:\n"
        "    def fail(self, code: str, message: str) -> Diagnostic:\n"
        "        return Diagnostic(code, message)\n"
        "    def run(self, kind: str, flag: bool, name: str) -> None:\n"
        "        self.fail(KINDS[kind], 'm')\n"
        "        self.fail('yes-code' if flag else 'no-code', 'm')\n"
        "        raise ProtocodeError.at(f'built-{name}', 'm', None)\n"
    )
    found = CodeScan(package)
    assert set(found.codes) == {"from-dict", "also-from-dict", "yes-code", "no-code"}
    assert [text for _, text in found.unresolved] == ["f'built-{name}'"]
