"""Attrs contract models (seed names), the cattrs converter and the OpenAPI export.

Import models from :mod:`llm_perf_opt.contracts.models`, (de)serialisation helpers from
:mod:`llm_perf_opt.contracts.convert`, and the schema builder from
:mod:`llm_perf_opt.contracts.openapi`. This package imports no torch.
"""
