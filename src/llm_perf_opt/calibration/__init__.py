"""Calibration and validation of the analytic model against measured stage times.

Read a profile run (:func:`read_run_dir`: GPU → hardware row by exact CUDA name, model, dtype and
every exact workload measured), fit the roofline's efficiency factors and per-kernel overhead to it
(:func:`fit_params` / :func:`fit_run`: see :mod:`.fit` for the method), and compare predicted with
measured per stage (:func:`compare_workload`, :func:`compare_run`; stage mapping in :mod:`llm_perf_opt.data.stages`).
Pure Python: no torch, numpy or scipy, so ``analyze`` stays fast and runs anywhere.
"""

from llm_perf_opt.calibration.compare import StageComparison, WorkloadComparison, compare_workload
from llm_perf_opt.calibration.fit import FitResult, fit_params
from llm_perf_opt.calibration.measured import (
    FIT_STAGES,
    MEASURED_STAGES,
    MeasuredWorkload,
    StageSample,
)
from llm_perf_opt.calibration.predict import StagePredictor
from llm_perf_opt.calibration.run_dir import ProfileRun, read_run_dir
from llm_perf_opt.calibration.solver import FittedParam, get_value, with_values
from llm_perf_opt.calibration.workflow import compare_run, fit_run, with_measurement, write_extras

__all__ = [
    "FIT_STAGES",
    "MEASURED_STAGES",
    "FitResult",
    "FittedParam",
    "MeasuredWorkload",
    "ProfileRun",
    "StageComparison",
    "StagePredictor",
    "StageSample",
    "WorkloadComparison",
    "compare_run",
    "compare_workload",
    "fit_params",
    "fit_run",
    "get_value",
    "read_run_dir",
    "with_measurement",
    "with_values",
    "write_extras",
]
