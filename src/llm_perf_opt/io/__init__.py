"""Safe input and output: bounded file reads, alias-free YAML, atomic files and artifact sets,
output-directory locks, and SIGTERM handled like Ctrl-C. Imports no torch.

* :mod:`.files` — read regular files only, with a size cap (``--model /dev/zero`` is one error line).
* :mod:`.documents` — parse JSON / YAML (aliases, NaN, deep nesting refused) and check shapes.
* :mod:`.atomic` — write one file atomically.
* :mod:`.convert` — the package's one cattrs converter: attrs objects ⇄ JSON / YAML files.
* :mod:`.artifact_set` — write a run's whole output directory all-or-nothing, under a lock.
* :mod:`.signals` — SIGTERM as KeyboardInterrupt.
"""

from llm_perf_opt.io.artifact_set import MANIFEST, ArtifactSet, read_manifest, verify
from llm_perf_opt.io.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_write_yaml,
)
from llm_perf_opt.io.documents import (
    expect_mapping,
    field_mapping,
    load_document,
    parse_document,
    parse_json,
    parse_yaml,
)
from llm_perf_opt.io.files import MAX_REPORT_BYTES, MAX_SPEC_BYTES, read_bytes, read_text
from llm_perf_opt.io.signals import Terminated, sigterm_as_interrupt

__all__ = [
    "MANIFEST",
    "MAX_REPORT_BYTES",
    "MAX_SPEC_BYTES",
    "ArtifactSet",
    "Terminated",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_write_yaml",
    "expect_mapping",
    "field_mapping",
    "load_document",
    "parse_document",
    "parse_json",
    "parse_yaml",
    "read_bytes",
    "read_manifest",
    "read_text",
    "sigterm_as_interrupt",
    "verify",
]
