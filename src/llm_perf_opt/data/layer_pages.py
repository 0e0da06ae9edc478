"""Per-layer-class numbers of an analytic report, computed by ``analytic`` and rendered by ``reporting``.

One :class:`LayerClassPage` per layer class in the report's tree: the class's documentation and
formula and one :class:`LayerRow` per instance (per-call numbers for the report's workload).
"""

from __future__ import annotations

from attrs import frozen


@frozen(kw_only=True)
class LayerRow:
    """One instance of a layer class in the tree; numbers are per call of that instance."""

    module_id: str
    """Slash path of the node from the root (``prefill/layers.moe/mlp``)."""
    shapes: str
    """Shape parameters, ``name=value`` joined by commas."""
    calls: int
    """Runs of the instance in one generation call (decode-step rows: mean over steps)."""
    gflops: float
    """Matmul-class FLOPs per call, 1e9 (multiply-add = 2)."""
    non_matmul_gflops: float
    """Norms, softmax, activations, RoPE, adds per call, 1e9 FLOPs."""
    mb_moved: float
    """Bytes read + written per call, 1e6."""
    weight_params: int
    """Resident weight parameters of the instance."""
    kernels: float
    """Kernel launches per call (analytic count)."""
    roofline_us: float
    """Roofline time of one call on the report's hardware, µs."""
    bound: str
    """compute, memory or launch."""


@frozen(kw_only=True)
class LayerClassPage:
    """Everything ``layers/<name>.md`` shows for one layer class."""

    name: str
    """Class name (file name of the page)."""
    qualname: str
    """``module.QualName`` of the class."""
    doc: str
    """The class docstring."""
    formula: str
    """The leaf's cost formula; empty for a composite (the sum of its children)."""
    rows: tuple[LayerRow, ...]
    """Every instance, in tree order."""
