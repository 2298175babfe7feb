"""The fuzz worker: a child process that runs cases under a time and a memory bound.

Running protocode in a child process is what makes the bounds real: a case that hangs (a
FIFO named like a version file, a rule whose cost doubles per line) is killed after
`timeout` seconds and reported as a ``hang``; one that allocates without end (a version file
that is a symlink to ``/dev/zero``) meets the address-space limit and fails with a
`MemoryError` instead of taking the machine down; a child that dies (a C stack overflow) is
a ``crash``. Either way the worker is restarted and the run goes on.

Each case's files are written into the same folder (emptied between cases), so the paths
of unchanged files are the same from case to case and `protocode.load`'s cache keeps
their compiled protocol.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import signal
import tempfile
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fuzz_inputs import ROOT, SEED, Case
from fuzz_oracle import Failure

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY = 4 << 30  # bytes of address space per worker


def write_case(case: Case, root: Path) -> None:
    """Write a case's files, symlinks and FIFOs under `root` (emptied first)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name, data in case.files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for name, target in case.links:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)
    for name in case.fifos:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / name)


def _serve(conn: Connection, memory: int) -> None:
    """The worker's loop: receive a case, run it, send back its failures; None stops."""
    from fuzz_oracle import judge_case

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # The command line's safety net then prints the traceback of a crash, which names where
    # it happened (`fuzz_oracle` groups crashes by it).
    os.environ["PROTOCODE_DEBUG"] = "1"
    # Output the oracles do not capture (native libraries writing to the descriptors) would
    # only clutter the caller's terminal.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    root = Path(tempfile.mkdtemp(prefix="protocode-fuzz-")) / "case"
    try:
        while (case := conn.recv()) is not None:
            write_case(case, root)
            conn.send(judge_case(case, root))
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


class Worker:
    """Runs cases one at a time in a child process, restarted after a hang or a crash."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY) -> None:
        self.timeout = timeout
        self.memory = memory
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        ours, theirs = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, args=(theirs, self.memory), daemon=True, name="protocode-fuzz"
        )
        self._process.start()
        theirs.close()
        self._conn = ours
        return ours

    def run(self, case: Case) -> list[Failure]:
        """The failures of one case; a hang or a crash of the child is one failure too."""
        conn = self._conn or self._start()
        conn.send(case)
        if not conn.poll(self.timeout):
            self._stop()
            return [Failure("hang", f"{case.category}: hang", f"no answer in {self.timeout:g} s")]
        try:
            failures: list[Failure] = conn.recv()
        except (EOFError, OSError):
            self._process.join(5)
            code = self._process.exitcode
            self._stop()
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
            return [Failure("crash", f"{case.category}: worker died ({how})", how)]
        return failures

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def close(self) -> None:
        """Stop the child process."""
        if self._conn is not None:
            try:
                self._conn.send(None)
                self._process.join(10)
            except OSError:
                pass
        self._stop()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# --- reproducers ------------------------------------------------------------------------------


@cache
def _seed_files() -> dict[bytes, str]:
    """The seed folder's files by content: a reproducer names an unchanged seed file rather
    than holding a copy (the released versions among them never change)."""
    return {
        p.read_bytes(): str(p.relative_to(ROOT)) for p in sorted(SEED.rglob("*")) if p.is_file()
    }


def save_case(case: Case, failures: list[Failure], folder: Path) -> None:
    """Save a case as a reproducer: ``case.json`` (what to run, what failed, the special
    files to make, the seed files used unchanged) and its other files under ``files/``."""
    seeds = {name: _seed_files()[data] for name, data in case.files if data in _seed_files()}
    for name, data in case.files:
        if name not in seeds:
            path = folder / "files" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    meta = {
        "category": case.category,
        "args": list(case.args),
        "note": case.note,
        "objects": case.objects,
        "files": [name for name, _ in case.files if name not in seeds],
        "seeds": seeds,
        "links": [list(link) for link in case.links],
        "fifos": list(case.fifos),
        "failures": [
            {"kind": f.kind, "signature": f.signature, "detail": f.detail} for f in failures
        ],
    }
    (folder / "case.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def load_case(folder: Path) -> Case:
    """A case saved by `save_case`."""
    meta = json.loads((folder / "case.json").read_text())
    files = [(name, (folder / "files" / name).read_bytes()) for name in meta["files"]]
    files += [(name, (ROOT / path).read_bytes()) for name, path in meta["seeds"].items()]
    return Case(
        meta["category"],
        tuple(sorted(files)),
        tuple(meta["args"]),
        meta["note"],
        meta["objects"],
        tuple((name, target) for name, target in meta["links"]),
        tuple(meta["fifos"]),
    )
