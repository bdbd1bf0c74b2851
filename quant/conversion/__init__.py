"""hardyt.quant.conversion: LayerNorm → DyT conversion of trained torch models (torch side).

One job a module:

* :mod:`.modules` — DyT and ShiftDyT (``nn.Module``);
* :mod:`.graph` — running and editing arbitrary models (hooks, capture, logits, KL);
* :mod:`.fit` — the closed-form fit of one layer;
* :mod:`.augment` — label-free batch variants;
* :mod:`.reconstruct` — Adam against the LayerNorm model's logits;
* :mod:`.clip` — the fixed-point input scale by output error;
* :mod:`.fixed_dyt` — FixedDyT and the DyTSpec of a calibrated layer;
* :mod:`.options` — ConvertOptions;
* :mod:`.pipeline` — :func:`convert`, :func:`to_float`;
* :mod:`.fold`, :mod:`.partial`, :mod:`.evaluate`.
"""
