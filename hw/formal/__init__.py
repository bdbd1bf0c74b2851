"""hw's formal room: SymbiYosys proofs of the stream properties of emitted cores.

* :mod:`.harness` — the SystemVerilog harness bound to an emitted top;
* :mod:`.prove` — the facts it needs (probes named by elaboration), the
  SymbiYosys tasks, ``prove.json``.

It reads the datapath (register names, the loader's FSM encoding), the
emission (manifests) and the tools (sweeps), and nothing imports it but the flow.
"""
