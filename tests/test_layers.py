"""The architecture's import rules hold: the contracts of ``.importlinter`` (layers, backend
independence, no heavy library in the light stages), and no private name used across modules.

import-linter sees modules, not names, so the private-name rule is checked here with `ast`: a
module may not import a name starting with ``_`` from another protocode module, nor read one
as an attribute of a protocode module it imported. A name another module needs is public
(no underscore, with a docstring) in the module where it belongs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

SRC = ROOT / "src"
PACKAGE = SRC / "protocode"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module an ``from … import`` names, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def private_imports(path: Path, importer: str | None = None) -> list[str]:
    """Each use of another protocode module's private name in the module at `path` (whose
    name is `importer`, by default the one its place under ``src`` gives)."""
    importer = importer or _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    shown = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> protocode module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, importer, path.name == "__init__.py")
            if source.split(".")[0] != "protocode":
                continue
            for alias in node.names:
                if _is_private(alias.name) and source != importer:
                    found.append(f"{shown}:{node.lineno}: from {source} import {alias.name}")
                elif _is_module(f"{source}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "protocode":
                    continue
                private = [p for p in alias.name.split(".") if _is_private(p)]
                if private:
                    found.append(f"{shown}:{node.lineno}: import {alias.name}")
                if alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and modules[node.value.id] != importer
        ):
            module = modules[node.value.id]
            found.append(f"{shown}:{node.lineno}: {node.value.id}.{node.attr} ({module})")
    return found


def test_no_private_name_is_used_across_modules() -> None:
    offenders = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in private_imports(path)]
    assert not offenders, (
        "private names used across modules (make each public where it belongs, or move it):\n"
        + "\n".join(offenders)
    )


def test_the_private_name_check_finds_each_form(tmp_path: Path) -> None:
    # The check itself, on a module that uses private names in each way it looks for.
    path = tmp_path / "probe.py"
    path.write_text(
        "from protocode.core.errors import _window\n"
        "from ..syntax import _hidden\n"
        "from protocode.core import errors as e\n"
        "from protocode.core.errors import Diagnostic, __doc__\n"
        "e._WINDOW\n",
        encoding="utf-8",
    )
    found = [hit.split(": ", 1)[1] for hit in private_imports(path, "protocode.language.check.x")]
    assert found == [
        "from protocode.core.errors import _window",
        "from protocode.language.syntax import _hidden",
        "e._WINDOW (protocode.core.errors)",
    ]


def test_import_contracts_are_kept() -> None:
    # The contracts of .importlinter: layers, independent backends, light stages.
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[result.stdout.find("Broken contracts") :]
