"""Attrs contract models (seed names) and the OpenAPI export.

Import models from :mod:`llm_perf_opt.contracts.models`, (de)serialisation helpers (the one cattrs
converter) from :mod:`llm_perf_opt.io.convert`, and the schema builder from
:mod:`llm_perf_opt.contracts.openapi`. This package imports no torch.
"""
