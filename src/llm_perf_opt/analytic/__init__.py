"""Analytic model of DeepSeek-OCR inference: FLOPs, bytes, memory and roofline time per module and stage.

* :mod:`.base` — :class:`~.base.BaseLayer`, :class:`~.base.Precision`, aggregation rules, decode sweeps;
* :mod:`.primitives`, :mod:`.sam`, :mod:`.clip`, :mod:`.vision`, :mod:`.projector`, :mod:`.decoder` — layers;
* :mod:`.deepseek_ocr` — the stage trees of one workload; :mod:`.roofline` — times and bounds;
* :mod:`.api` — the facade (``build_layer_tree``, ``stage_totals``, ``build_report``, ``write_report``).

Importing this package imports nothing heavy; no module here imports torch, numpy or matplotlib.
"""
