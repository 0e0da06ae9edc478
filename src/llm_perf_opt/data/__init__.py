"""Attrs domain models: the full internal artifacts (``LLMProfileReport`` and its parts).

Profiling-run models live in :mod:`llm_perf_opt.data.profile`. This package imports no torch.
"""
