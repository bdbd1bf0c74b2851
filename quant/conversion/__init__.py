"""hardyt.quant.conversion: LayerNorm → DyT conversion of trained torch models (torch side).

One job a module:

* :mod:`.modules` — DyT and ShiftDyT (``nn.Module``);
* :mod:`.fit` — the closed-form fit of one layer;
* :mod:`.augment` — label-free batch variants;
* :mod:`.reconstruct` — Adam against the LayerNorm model's logits;
* :mod:`.clip` — the fixed-point input scale by output error;
* :mod:`.fixed_dyt` — FixedDyT and the DyTSpec of a calibrated layer;
* :mod:`.options` — ConvertOptions;
* :mod:`.pipeline` — :func:`convert`, :func:`to_float`;
* :mod:`.fold`, :mod:`.partial`.

Running models and top-1 evaluation moved to :mod:`hardyt.quant.runtime`
(the zoo uses them too); ``hardyt.quant.runtime.graph`` and
``.evaluate`` still import those modules.
"""
from ..moved import alias_modules

alias_modules({f"{__name__}.{m}": f"hardyt.quant.runtime.{m}" for m in ("graph", "evaluate")})
