"""hardyt.quant.runtime: running arbitrary torch models (torch) — below the zoo and the conversion, which both use it.

* :mod:`.graph` — running and editing arbitrary models: ``run_model``,
  ``model_logits``, ``set_module``, forward hooks, ``layer_norm_names``,
  ``capture``, ``kl_to``.
* :mod:`.evaluate` — top-1 accuracy, batched.

Their old names, ``hardyt.quant.conversion.graph`` and
``hardyt.quant.conversion.evaluate``, import these same modules.
"""
