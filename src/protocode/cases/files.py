"""Finding the case files of a protocol folder, each with the version it tests."""

from __future__ import annotations

from pathlib import Path

from protocode.core.errors import UsageError
from protocode.document.lock import VERSION_FILE


def find_case_files(protocol_dir: str | Path) -> list[tuple[Path, Path]]:
    """Pairs (case file, protocol version file) of a protocol folder, oldest version first.

    ``cases/vN.yaml`` belongs to ``vN.yaml`` (``.yml`` works for either). Other files under
    ``cases/`` are ignored. A case file whose version file does not exist is a `UsageError`,
    so that no stored test is silently skipped.
    """
    protocol_dir = Path(protocol_dir)
    cases_dir = protocol_dir / "cases"
    if not cases_dir.is_dir():
        return []
    pairs: list[tuple[int, Path, Path]] = []
    for case_file in cases_dir.iterdir():
        match = VERSION_FILE.match(case_file.name)
        if match is None or not case_file.is_file():
            continue
        number = int(match.group(1))
        candidates = [protocol_dir / f"v{number}.{ext}" for ext in ("yaml", "yml")]
        version_file = next((c for c in candidates if c.is_file()), None)
        if version_file is None:
            message = f"{case_file}: no protocol version v{number}.yaml in {protocol_dir}"
            raise UsageError.at("usage", message, None)
        pairs.append((number, case_file, version_file))
    return [(case_file, version_file) for _, case_file, version_file in sorted(pairs)]
