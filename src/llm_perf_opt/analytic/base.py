"""The analytic layer hierarchy: :class:`BaseLayer`, its cost record and how composites aggregate.

A layer is a frozen, hashable description of one operator (a leaf) or one module (a composite)
for fixed shapes. Leaves compute their own :class:`Cost` from a documented formula; composites
list their children with a repetition (``none`` / ``for`` / ``parfor``) and a count, and add the
children's costs up. Costs are memoised per layer (equal shapes → one computation), so a tree
with repeated blocks stays cheap.

Aggregation rules (``Child`` of a composite, ``count`` c):

* flops, executed flops, non-matmul FLOPs, bytes read/written, kernel launches, per-category
  breakdown: ``c ×`` the child's (a ``for`` loop or ``parfor`` runs the child c times);
* state — resident weight parameters/bytes and KV-cache bytes: ``c ×`` the child's for distinct
  instances (12 SAM blocks, 64 experts); when ``shared_state`` is set the child re-uses state
  already counted by an earlier sibling (the second vision pass runs the same encoder; decode
  steps re-use the prefill's weights and grow its KV cache), so state combines as ``max``;
* activation bytes: ``max`` (the largest working set of one operator; they run one after another).

Units: FLOPs count a multiply-add as 2 (as ``torch.utils.flop_counter``); bytes are bytes.
This module imports no torch or numpy.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from attrs import fields, frozen

# Precision is recorded in reports, so it is declared in data (below analytic); re-exported here.
from llm_perf_opt.data.analytic_inputs import COMPUTE_DTYPES as COMPUTE_DTYPES
from llm_perf_opt.data.analytic_inputs import DTYPE_BYTES as DTYPE_BYTES
from llm_perf_opt.data.analytic_inputs import Precision as Precision
from llm_perf_opt.errors import UserError

REPETITIONS = ("none", "for", "parfor")
L = TypeVar("L", bound="BaseLayer")


BF16 = Precision()


class Cost:
    """Per-call totals of one layer (a leaf's formula, or a composite's aggregate).

    ``flops`` follow ``torch.utils.flop_counter`` (matmul, conv, attention QKᵀ/PV, einsum; full
    score matrices even under a causal mask); ``executed_flops`` is what a kernel that skips
    masked blocks executes (used by the roofline); ``vector_flops`` are the non-matmul FLOPs
    (norms, softmax, activations, RoPE, adds) that the counter does not count.
    ``categories`` maps an operator category to ``[calls, flops, bytes moved, kernels]``.
    """

    __slots__ = (
        "activation_bytes",
        "bytes_read",
        "bytes_written",
        "categories",
        "executed_flops",
        "flops",
        "kernels",
        "kv_cache_bytes",
        "vector_flops",
        "weight_bytes",
        "weight_params",
    )

    def __init__(
        self,
        *,
        flops: float = 0.0,
        executed_flops: float | None = None,
        vector_flops: float = 0.0,
        bytes_read: float = 0.0,
        bytes_written: float = 0.0,
        weight_params: int = 0,
        weight_bytes: float = 0.0,
        activation_bytes: float = 0.0,
        kv_cache_bytes: float = 0.0,
        kernels: float = 0.0,
        categories: dict[str, list[float]] | None = None,
    ) -> None:
        self.flops = flops
        self.executed_flops = flops if executed_flops is None else executed_flops
        self.vector_flops = vector_flops
        self.bytes_read = bytes_read
        self.bytes_written = bytes_written
        self.weight_params = weight_params
        self.weight_bytes = weight_bytes
        self.activation_bytes = activation_bytes
        self.kv_cache_bytes = kv_cache_bytes
        self.kernels = kernels
        self.categories = categories if categories is not None else {}

    @property
    def bytes_moved(self) -> float:
        return self.bytes_read + self.bytes_written

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "categories"}

    def __repr__(self) -> str:
        return f"Cost({', '.join(f'{k}={v:g}' for k, v in self.as_dict().items())})"


ADDITIVE = ("flops", "executed_flops", "vector_flops", "bytes_read", "bytes_written", "kernels")
STATE = ("weight_params", "weight_bytes", "kv_cache_bytes")


@frozen(kw_only=True)
class Child:
    """One child slot of a composite: a layer, how it repeats, and how often."""

    name: str
    """Attribute-style name inside the parent (``blocks.window``, ``q_proj``)."""
    layer: BaseLayer
    repetition: str = "none"
    """``none`` (once), ``for`` (sequential loop: layers, decode steps) or ``parfor`` (parallel: experts)."""
    count: int = 1
    shared_state: bool = False
    """True when repeated calls re-use state an earlier sibling owns (no new weights / KV)."""

    def __attrs_post_init__(self) -> None:
        if self.repetition not in REPETITIONS:
            raise ValueError(f"child {self.name!r}: repetition must be one of {REPETITIONS}")
        if self.count < 1 or (self.repetition == "none" and self.count != 1):
            raise ValueError(f"child {self.name!r}: bad count {self.count} for repetition {self.repetition!r}")


@frozen(kw_only=True, cache_hash=True)
class BaseLayer:
    """A layer for fixed shapes: FLOPs, bytes, weights, activations, KV cache, kernels, children.

    Subclasses are frozen attrs classes whose fields are the shapes. A leaf overrides
    :meth:`leaf_cost` (its docstring states the formula); a composite overrides :meth:`build_children`.
    ``formula`` is the short text shown in the per-layer docs.
    """

    stage: str = "other"
    """Stage this layer runs in: vision, projector, prefill, decode (or other)."""
    syncs_between_children: ClassVar[bool] = False
    """True where the host synchronises after each child (the stages of one generation), so the
    roofline overlaps host issue and GPU time per child rather than across them."""
    prec: Precision = BF16
    """Storage and compute dtypes."""
    op_category: str | None = None
    """Operator category of a leaf; None means the class default ``DEFAULT_CATEGORY``."""

    DEFAULT_CATEGORY: ClassVar[str] = "elementwise"
    formula: ClassVar[str] = ""

    # -- structure -------------------------------------------------------------------------
    def build_children(self) -> tuple[Child, ...]:
        """Child slots of a composite (subclasses override); empty for a leaf."""
        return ()

    def children(self) -> tuple[Child, ...]:
        """Child slots, built once per shape (memoised)."""
        return _children(self)

    @property
    def is_leaf(self) -> bool:
        return not self.children()

    @property
    def category(self) -> str:
        """A leaf's operator category; for a composite, the category with the most FLOPs."""
        if self.op_category is not None:
            return self.op_category
        if self.is_leaf:
            return self.DEFAULT_CATEGORY
        cats = self.cost().categories
        if not cats:
            return self.DEFAULT_CATEGORY
        return max(cats.items(), key=lambda kv: (kv[1][1], kv[1][2]))[0]

    def kind(self) -> type[BaseLayer]:
        """The layer class shown in reports (a :class:`Swept` shows the class it sweeps)."""
        return type(self)

    def formula_text(self) -> str:
        return type(self).formula

    def shapes(self) -> dict[str, Any]:
        """The shape fields of this layer (everything but stage, precision and category)."""
        skip = {"stage", "prec", "op_category"}
        return {f.name: getattr(self, f.name) for f in fields(type(self)) if f.name not in skip}

    # -- cost ------------------------------------------------------------------------------
    def leaf_cost(self) -> Cost:
        """Per-call cost of a leaf from its formula. Composites do not override this."""
        raise NotImplementedError(f"{type(self).__name__} is a composite or lacks a formula")

    def cost(self) -> Cost:
        """Per-call cost: the leaf formula, or the children aggregated (memoised per shape)."""
        return _cost(self)

    def forward_flops(self) -> float:
        return self.cost().flops

    def bytes_read(self) -> float:
        return self.cost().bytes_read

    def bytes_written(self) -> float:
        return self.cost().bytes_written

    def weight_params(self) -> int:
        return self.cost().weight_params

    def weight_bytes(self) -> float:
        return self.cost().weight_bytes

    def activation_bytes(self) -> float:
        return self.cost().activation_bytes

    def kv_cache_bytes(self) -> float:
        return self.cost().kv_cache_bytes

    def kernel_launches(self) -> float:
        return self.cost().kernels

    # -- helpers ---------------------------------------------------------------------------
    def sub(self, cls: type[L], /, **shape: Any) -> L:
        """A child layer of class ``cls`` in this layer's stage and precision."""
        return cls(stage=self.stage, prec=self.prec, **shape)

    def make_cost(self, **values: Any) -> Cost:
        """A leaf Cost with its own category entry filled in."""
        cost = Cost(**values)
        cost.categories = {self.category: [1.0, cost.flops, cost.bytes_moved, cost.kernels]}
        return cost


def add_state(total: float, value: float, child: Child) -> float:
    """The state rule: ``c ×`` the child's for distinct instances, ``max`` when its state is shared."""
    return max(total, value) if child.shared_state else total + child.count * value


def aggregate(children: tuple[Child, ...]) -> Cost:
    """Sum children per the rules in the module docstring."""
    total = Cost()
    cats = total.categories
    for child in children:
        c = child.layer.cost()
        n = child.count
        for name in ADDITIVE:
            setattr(total, name, getattr(total, name) + n * getattr(c, name))
        for name in STATE:
            setattr(total, name, add_state(getattr(total, name), getattr(c, name), child))
        total.activation_bytes = max(total.activation_bytes, c.activation_bytes)
        for cat, vals in c.categories.items():
            acc = cats.setdefault(cat, [0.0, 0.0, 0.0, 0.0])
            for i in range(4):
                acc[i] += n * vals[i]
    return total


@lru_cache(maxsize=8192)
def _children(layer: BaseLayer) -> tuple[Child, ...]:
    return layer.build_children()


@lru_cache(maxsize=8192)
def _cost(layer: BaseLayer) -> Cost:
    kids = layer.children()
    return aggregate(kids) if kids else layer.leaf_cost()


@lru_cache(maxsize=8192)
def resident_bytes(layer: BaseLayer) -> tuple[float, float, float]:
    """(weight, KV-cache, activation) bytes of ``layer``: its ``cost()``'s, bit for bit, by the same rules
    in the same order, without the FLOP, byte and category sums (most of the work for a fresh tree)."""
    kids = layer.children()
    if not kids:
        c = layer.cost()
        return c.weight_bytes, c.kv_cache_bytes, c.activation_bytes
    weights, kv, act = 0.0, 0.0, 0.0
    for child in kids:
        w, k, a = resident_bytes(child.layer)
        weights, kv, act = add_state(weights, w, child), add_state(kv, k, child), max(act, a)
    return weights, kv, act


@frozen(kw_only=True, cache_hash=True)
class Swept(BaseLayer):
    """The same layer run ``steps`` times while a context length grows by one per step.

    ``first`` and ``last`` are the layer at the first and last context; they must have the same
    structure (only context lengths differ). Every per-step quantity of the decoder is affine in
    the context length L (attention FLOPs 4·h·d·L, KV reads 2·h·d·L·bytes, softmax ∝ L), so over
    an arithmetic range of L the mean per step is exactly (first + last) / 2 — the decode stage is
    summed in closed form as ``steps × mean`` without a loop over tokens. State (KV cache) and
    activation peaks are those of the last step. Roofline time (a max of two affine terms) is
    summed in closed form by :mod:`llm_perf_opt.analytic.roofline`.
    """

    first: BaseLayer
    last: BaseLayer
    steps: int

    formula: ClassVar[str] = "mean over steps = (cost(L_first) + cost(L_last)) / 2 (every term affine in L)"

    def __attrs_post_init__(self) -> None:
        if type(self.first) is not type(self.last):
            raise ValueError("Swept: first and last must be the same layer class")
        if self.steps < 1:
            raise ValueError("Swept: steps must be >= 1")

    @property
    def category(self) -> str:
        return self.first.category

    def kind(self) -> type[BaseLayer]:
        return self.first.kind()

    def formula_text(self) -> str:
        return self.first.formula_text()

    def shapes(self) -> dict[str, Any]:
        out = dict(self.first.shapes())
        for key, value in self.last.shapes().items():
            if out.get(key) != value:
                out[key] = f"{out.get(key)}..{value}"
        out["steps"] = self.steps
        return out

    def build_children(self) -> tuple[Child, ...]:
        a, b = self.first.children(), self.last.children()
        if len(a) != len(b):
            raise ValueError(f"Swept {type(self.first).__name__}: first and last differ in structure")
        out = []
        for ca, cb in zip(a, b, strict=True):
            if (ca.name, ca.count, ca.repetition) != (cb.name, cb.count, cb.repetition):
                raise ValueError(f"Swept: child {ca.name!r} differs between first and last")
            # A child that does not depend on the context (norms, MLPs, experts, lm_head) is the same
            # layer at every step: it stands for itself, so one decode tree shares it with every
            # token budget instead of building and costing a new sweep of it per budget.
            same = ca.layer == cb.layer
            swept = Swept(first=ca.layer, last=cb.layer, steps=self.steps, stage=ca.layer.stage) if not same else None
            out.append(
                Child(
                    name=ca.name,
                    layer=swept or ca.layer,
                    repetition=ca.repetition,
                    count=ca.count,
                    shared_state=ca.shared_state,
                )
            )
        return tuple(out)

    def leaf_cost(self) -> Cost:
        """Mean per step of the additive terms; last step's state and activation peak."""
        a, b = self.first.cost(), self.last.cost()
        mean = Cost()
        for name in ADDITIVE:
            setattr(mean, name, (getattr(a, name) + getattr(b, name)) / 2)
        for name in (*STATE, "activation_bytes"):
            setattr(mean, name, getattr(b, name))
        mean.categories = {
            cat: [(x + y) / 2 for x, y in zip(a.categories[cat], b.categories[cat], strict=True)]
            for cat in a.categories
        }
        return mean


def check_positive(value: float, what: str) -> None:
    if value <= 0:
        raise UserError(f"{what} must be positive, got {value!r}")
