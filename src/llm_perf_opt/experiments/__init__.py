"""GPU experiments of the package, reachable as ``llm-perf-opt experiment …``.

* :mod:`.decode_bench` — decode ms/token in CUDA-graph vs eager mode at several batch sizes, with
  repeat spread, % of the HBM roofline and the process-to-process agreement (issue 9);
* :mod:`.validate` / :mod:`.validate_table` — the validation matrix: profile runs of many workloads,
  calibration on ONE of them, predicted vs measured per stage (issue 9);
* :mod:`.e2e` — one profile run of the full-size model next to the analytic prediction, with
  consistency checks (image tokens, KV-cache bytes, exact token count);
* :mod:`.decode_vs_hf` — our decode step next to transformers' native DeepseekOcr2TextModel.

Every experiment reuses the package: the model and :func:`~llm_perf_opt.models.deepseek_ocr.generate`,
the profile runner, :class:`~llm_perf_opt.profiling.timers.StageClock`, the synthetic pages, the
environment capture and the atomic writers. Nothing here prints: progress goes to a ``log``
callable that the CLI supplies.
"""
