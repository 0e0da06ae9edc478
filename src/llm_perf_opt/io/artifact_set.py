"""All-or-nothing artifact sets: stage a run's files in a sibling directory, rename it into place.

Root cause of mixed or half-written outputs: every file was written (atomically, but one by one)
straight into the output directory, so an interruption left new files beside old ones, and two runs
into one directory interleaved. Here a run:

1. checks the target and takes an exclusive lock on it (:class:`~llm_perf_opt.io.lock.DirectoryLock`;
   a second run into the same directory fails at once with one line);
2. writes everything into ``.<name>.staging-…`` beside the target (same file system);
3. on :meth:`ArtifactSet.commit` writes ``artifact_set.json`` (run id, ``complete`` or
   ``incomplete`` with the reason, every file's size and SHA-256) and renames the staging directory
   onto the target with signals held off, replacing a previous set as a whole.

So a reader finds the target absent, the previous complete set, or this run's whole set (marked
incomplete when it was interrupted) — never a mixture. :func:`verify` checks a set against its manifest.

Decision on re-runs: a target that already holds an artifact set written by this tool (it has
``artifact_set.json``) or is empty is *replaced whole*; a non-empty directory without the manifest
is refused, so a mistyped ``--output-dir`` never deletes a user's files.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from llm_perf_opt.errors import UserError
from llm_perf_opt.io.lock import DirectoryLock, describe_os_error, sibling_name
from llm_perf_opt.io.signals import signals_held

MANIFEST = "artifact_set.json"
MANIFEST_SCHEMA = "llm-perf-opt.artifact-set/1"


def prepare_target(target: Path, option: str = "--output-dir") -> Path:
    """Absolute ``target`` after checking that it can become an artifact directory; UserError otherwise."""
    target = Path(os.path.abspath(os.path.expanduser(target)))
    if target.exists() and not target.is_dir():
        raise UserError(f"{option} {target} exists and is not a directory")
    for ancestor in target.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise UserError(f"{option} {target}: {ancestor} is a file, not a directory")
            break
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{option} {target}: cannot create {target.parent}: {describe_os_error(exc)}") from None
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {target}: no permission to write in {target.parent}")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise UserError(
            f"{option} {target} already holds files that are not an llm-perf-opt artifact set; "
            "choose a new directory or empty it (a previous run's directory is replaced whole)"
        )
    return target


def _file_entries(root: Path) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        entries[path.relative_to(root).as_posix()] = {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
    return entries


class ArtifactSet:
    """One run's output directory, built in a staging directory and renamed into place.

    Use as a context manager; :meth:`commit` publishes the set; leaving the block without a commit
    (an error, Ctrl-C) removes the staging directory and leaves the target untouched.
    """

    def __init__(self, target: str | Path, *, kind: str, run_id: str, option: str = "--output-dir") -> None:
        self.target = prepare_target(Path(target), option)
        self.kind = kind
        self.run_id = run_id
        self.lock = DirectoryLock(self.target, option=option)
        self.stage: Path | None = None
        self.committed = False

    # ---------------------------------------------------------------- lifecycle

    def open(self) -> Path:
        """Lock the target and create the staging directory; returns the staging path."""
        with signals_held():  # a Ctrl-C here must not leave a lock file or staging dir unaccounted for
            return self._open()

    def _open(self) -> Path:
        self.lock.acquire()
        try:
            for pattern in ("staging-*", "replaced-*"):  # left by a killed run; we hold the lock
                for stale in self.target.parent.glob(sibling_name(self.target, pattern)):
                    shutil.rmtree(stale, ignore_errors=True)
            self.stage = Path(tempfile.mkdtemp(prefix=sibling_name(self.target, "staging-"), dir=self.target.parent))
            os.chmod(self.stage, 0o777 & ~_umask())
        except OSError as exc:
            self.lock.release()
            problem = describe_os_error(exc)
            raise UserError(f"cannot create a staging directory beside {self.target}: {problem}") from None
        atexit.register(self.close)
        return self.stage

    def __enter__(self) -> ArtifactSet:
        self.open()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Remove an uncommitted staging directory and release the lock (idempotent)."""
        with signals_held():
            if self.stage is not None and not self.committed:
                shutil.rmtree(self.stage, ignore_errors=True)
            self.stage = None
            self.lock.release()
            atexit.unregister(self.close)

    @property
    def work_dir(self) -> Path:
        if self.stage is None:
            raise RuntimeError("ArtifactSet.open() was not called")
        return self.stage

    def final_path(self, path: Path) -> Path:
        """Where ``path`` (inside the staging directory) will be after the commit."""
        return self.target / Path(path).relative_to(self.work_dir)

    # ---------------------------------------------------------------- commit

    def commit(self, *, incomplete_reason: str | None = None) -> Path:
        """Write the manifest and rename the staged set onto the target; returns the target."""
        stage = self.work_dir
        manifest = {
            "schema_version": MANIFEST_SCHEMA,
            "kind": self.kind,
            "run_id": self.run_id,
            "status": "incomplete" if incomplete_reason else "complete",
            "incomplete_reason": incomplete_reason,
            "committed_at": datetime.now(UTC).isoformat(),
            "files": _file_entries(stage),
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        old = self.target.parent / sibling_name(self.target, f"replaced-{os.getpid()}")
        # Held signals: a Ctrl-C between the two renames would leave the old set moved away and the
        # new one not yet in place; one that arrives meanwhile is raised after the commit.
        with signals_held():
            try:
                had_old = self.target.exists()
                if had_old:
                    os.rename(self.target, old)
                os.rename(stage, self.target)
                self.committed = True
            except OSError as exc:
                raise UserError(f"cannot move the results into {self.target}: {describe_os_error(exc)}") from None
            if had_old:
                shutil.rmtree(old, ignore_errors=True)
            self.close()
        return self.target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The ``artifact_set.json`` of ``directory`` (UserError when missing or unreadable)."""
    from llm_perf_opt.io.documents import expect_mapping, load_document

    data = load_document(Path(directory) / MANIFEST, "artifact-set manifest", kind="json")
    return expect_mapping(data, str(Path(directory) / MANIFEST), "(top level)", "a manifest mapping")


def verify(directory: str | Path) -> dict[str, Any]:
    """The manifest after checking every listed file's size and SHA-256; UserError on any mismatch."""
    root = Path(directory)
    manifest = read_manifest(root)
    actual = _file_entries(root)
    for rel, entry in manifest.get("files", {}).items():
        if actual.get(rel) != entry:
            raise UserError(f"{root / rel} does not match {root / MANIFEST} (missing or changed)")
    return manifest
