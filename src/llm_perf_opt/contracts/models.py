"""All contract models in one import place (names and fields fixed by the seed contracts).

Analytic modeling classes live in :mod:`llm_perf_opt.contracts.analytic`, Stage 1 profiling
classes in :mod:`llm_perf_opt.contracts.profile`; both are re-exported here.
:data:`CONTRACT_CLASSES` lists every class that appears in ``components.schemas`` of the
generated OpenAPI document.
"""

from __future__ import annotations

from llm_perf_opt.contracts.analytic import (
    ANALYTIC_STAGES,
    DOC_KINDS,
    REPETITIONS,
    VISION_BACKBONES,
    AnalyticModuleNode,
    AnalyticModuleSummary,
    AnalyticStage,
    DeepSeekOCRAnalyticAccepted,
    DeepSeekOCRAnalyticModel,
    DeepSeekOCRAnalyticReportSummary,
    DeepSeekOCRAnalyticRequest,
    DeepSeekOCRModelSpec,
    DocKind,
    ModuleMetricsSnapshot,
    OCRWorkloadProfile,
    OperatorCategory,
    OperatorMetrics,
    Repetition,
    VisionBackbone,
    validate_module_tree,
)
from llm_perf_opt.contracts.profile import (
    DTYPES,
    OPERATOR_STAGES,
    PROFILE_STATUSES,
    RESOLUTION_MODE_NAMES,
    TIMED_STAGES,
    Dtype,
    LLMProfileAccepted,
    LLMProfileReportSummary,
    LLMProfileRequest,
    OperatorStage,
    OperatorSummary,
    ProfileStatus,
    ResolutionModeName,
    Stats,
    TimedStage,
)

ANALYTIC_CONTRACTS: tuple[type, ...] = (
    DeepSeekOCRAnalyticRequest,
    DeepSeekOCRAnalyticAccepted,
    AnalyticModuleSummary,
    DeepSeekOCRAnalyticReportSummary,
    DeepSeekOCRModelSpec,
    OCRWorkloadProfile,
    DeepSeekOCRAnalyticModel,
    AnalyticModuleNode,
    OperatorCategory,
    ModuleMetricsSnapshot,
    OperatorMetrics,
)
PROFILE_CONTRACTS: tuple[type, ...] = (
    LLMProfileRequest,
    LLMProfileAccepted,
    LLMProfileReportSummary,
    OperatorSummary,
    Stats,
)
CONTRACT_CLASSES: tuple[type, ...] = ANALYTIC_CONTRACTS + PROFILE_CONTRACTS
"""Every contract class; the OpenAPI ``components.schemas`` has exactly these names."""

__all__ = [
    "ANALYTIC_CONTRACTS",
    "ANALYTIC_STAGES",
    "CONTRACT_CLASSES",
    "DOC_KINDS",
    "DTYPES",
    "OPERATOR_STAGES",
    "PROFILE_CONTRACTS",
    "PROFILE_STATUSES",
    "REPETITIONS",
    "RESOLUTION_MODE_NAMES",
    "TIMED_STAGES",
    "VISION_BACKBONES",
    "AnalyticModuleNode",
    "AnalyticModuleSummary",
    "AnalyticStage",
    "DeepSeekOCRAnalyticAccepted",
    "DeepSeekOCRAnalyticModel",
    "DeepSeekOCRAnalyticReportSummary",
    "DeepSeekOCRAnalyticRequest",
    "DeepSeekOCRModelSpec",
    "DocKind",
    "Dtype",
    "LLMProfileAccepted",
    "LLMProfileReportSummary",
    "LLMProfileRequest",
    "ModuleMetricsSnapshot",
    "OCRWorkloadProfile",
    "OperatorCategory",
    "OperatorMetrics",
    "OperatorStage",
    "OperatorSummary",
    "ProfileStatus",
    "Repetition",
    "ResolutionModeName",
    "Stats",
    "TimedStage",
    "VisionBackbone",
    "validate_module_tree",
]
