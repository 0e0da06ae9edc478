"""Eager stages (vision, projector, prefill): the host issues kernels one by one, the GPU runs them in order.

Kernel k costs the host h_k to issue (Python, dispatcher, launch call) and the GPU g_k to run; the
GPU starts it once it is issued and the previous kernel has finished. With I the host clock and F
the GPU clock (one stream, in order)::

    I' = I + h_k,    F' = max(F, I + h_k) + g_k

A run of kernels therefore maps (I, F) ↦ (I + H, max(F + A, I + B)) — linear in the max-plus
algebra — and any sub-tree is summarised by three numbers (:class:`Span`): H = Σ h (host time),
A = Σ g (GPU time) and B, the finish time when the run starts on an idle GPU (I = F = 0). Two
runs compose as::

    H = H₁ + H₂,   A = A₁ + A₂,   B = max(B₁ + A₂, H₁ + B₂)

so a block repeated c times composes by doubling, and a stage run between two synchronisations
costs B. B lies between max(Σ h, Σ g) (a stage-level max, which lets the GPU run kernels the host
has not issued yet) and Σ (h + g): a run of small kernels is host-bound (B ≈ Σ h + g_last), a run of
large ones GPU-bound (B ≈ h_first + Σ g), and a mix pays the host only where the GPU queue is empty
— e.g. a few large GEMMs followed by many tiny elementwise kernels. This module imports no torch.
"""

from __future__ import annotations

from attrs import frozen

NEG_INF = float("-inf")


@frozen
class Span:
    """Host time H, GPU time A and idle-start finish time B of a run of kernels (seconds)."""

    host: float
    gpu: float
    finish: float

    def then(self, other: Span) -> Span:
        """This run followed by ``other`` (max-plus composition, see the module docstring)."""
        return Span(
            self.host + other.host,
            self.gpu + other.gpu,
            max(self.finish + other.gpu, self.host + other.finish),
        )

    def repeat(self, count: int) -> Span:
        """``count`` runs of this one back to back (binary doubling: O(log count) compositions)."""
        out, power, n = EMPTY, self, int(count)
        while n > 0:
            if n & 1:
                out = out.then(power)
            power = power.then(power)
            n >>= 1
        return out

    @property
    def wall(self) -> float:
        """Wall time from an idle GPU to the end of the last kernel (0 for an empty run)."""
        return max(self.finish, self.host, 0.0)


EMPTY = Span(0.0, 0.0, NEG_INF)
"""The run of no kernels: the identity of :meth:`Span.then`."""


def kernels(host: float, gpu: float, n: float) -> Span:
    """``n`` identical kernels of host time ``host`` and GPU time ``gpu`` each (closed form).

    B = h + g + (n − 1)·max(h, g): the first kernel waits for its own issue, then the slower of the
    two sides sets the pace. A fractional count (an average over steps or experts) interpolates.
    """
    if n <= 0:
        return EMPTY
    if n < 1:
        return Span(n * host, n * gpu, n * (host + gpu))
    return Span(n * host, n * gpu, host + gpu + (n - 1) * max(host, gpu))


def leaf_span(work: float, kernel_count: float, host: float, launch: float) -> Span:
    """A leaf's kernels: its main kernel carries the whole roofline ``work`` (the FLOPs and bytes are
    not split per kernel, as in the graph model), every kernel pays the GPU-side ``launch`` gap, and
    the host issues each one in ``host``. A leaf without kernels (a view) costs nothing."""
    if kernel_count <= 0:
        return EMPTY if work <= 0 else Span(0.0, work, work)
    main = kernels(host, work + launch, min(kernel_count, 1.0))
    return main.then(kernels(host, launch, kernel_count - 1.0))
