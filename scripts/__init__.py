"""hardyt.scripts: the ``hardyt`` command line (argparse → a :mod:`hardyt.flow` config → one step → printing).

Modules that moved into the flow keep their old names here (the same module objects).
"""
from hardyt.quant.moved import alias_modules

alias_modules({f"hardyt.scripts.{old}": f"hardyt.flow.{new}" for old, new in (
    ("model_input", "model_source"), ("emitted", "emitted"), ("plots", "plots"), ("demo_report", "demo_report"),
    ("explore_report", "explore_report"))})
