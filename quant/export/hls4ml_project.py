"""DyT layers as hls4ml projects, made with hls4ml's own Python API and bit-exact in its C simulation.

Each DyT layer becomes a Keras 3 model of HGQ2 layers (Keras on the torch
backend), converted by ``hls4ml.converters.convert_from_keras_model``::

    codes ─► QBatchNormalization  x · 2**alpha_shift[c]          (per-channel alpha shifts only)
          ─► QUnaryFunctionLUT    hardyt's tanh codes, one entry per input code   → hls4ml UnaryLUT
          ─► QBatchNormalization  gamma[c]/2**shift · t + beta[c]/2**shift       → hls4ml BatchNormalization
          ─► Quantizer            round half up, saturate to out_bits  (hls4ml's result type
                                  ap_fixed<out_bits, out_bits, AP_RND, AP_SAT>)  (channel affine only)

Why it is exact: the input and every intermediate are integers (or, for the
affine, fixed point with ``shift`` fractional bits, which holds
``gamma[c]·2**-shift`` and ``beta[c]·2**-shift`` exactly); hls4ml's UnaryLUT
indexes its table by the input's raw bits, and its table is the function
evaluated on every code the input quantizer can produce — here
:func:`~hardyt.quant.contract.tanh.tanh_int` itself; ``nnet::normalize``
adds the full-precision product to the bias, and the assignment to the
``AP_RND, AP_SAT`` result rounds half toward +inf and saturates, which is the
contract's ``narrow``. A ``pwl`` tanh is exported as the table of its own
codes (the same integers, a table instead of a multiplier).

The codes in and out are the layer's integers: the input scale (``in_scale``)
and output scale (``out_scale``) are in the ``<name>.spec.json`` written
beside each project; in an hls4ml network they fold into the neighbouring
layers. Needs the optional extra ``hardyt[hls4ml]`` (hls4ml, keras, hgq2).
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from pathlib import Path

import numpy as np

from ..contract.fixed import signed_range
from ..contract.spec import ChannelAffine, DyTSpec
from ..contract.tanh import tanh_int
from ..errors import HardytError
from ..files import atomic_output_dir, atomic_write_text

__all__ = ["EXTRA", "require_hls4ml", "keras_model", "write_projects", "csim_check", "every_code", "project_name",
           "load_keras_model"]

EXTRA = "hls4ml"
SET_NAME = "dyt_layers"
_MODULES = ("keras", "hgq", "hls4ml")


def require_hls4ml():
    """Import keras (torch backend unless ``KERAS_BACKEND`` says otherwise), hgq and hls4ml, or fail naming the extra."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    missing = []
    for name in _MODULES:
        try:
            __import__(name)
        except ImportError as e:
            missing.append(f"{name} ({str(e).splitlines()[0]})")
    if missing:
        raise HardytError(f"--format hls4ml needs the optional extra: pip install 'hardyt[{EXTRA}]' "
                          f"(not importable: {', '.join(missing)})")
    import hls4ml
    return hls4ml


def project_name(name: str) -> str:
    """A C identifier for hls4ml's ``ProjectName`` from a layer name.

    >>> project_name("blocks.0.norm1"), project_name("0x")
    ('blocks_0_norm1', 'dyt_0x')
    """
    ident = re.sub(r"\W", "_", name, flags=re.ASCII)
    return ident if re.match(r"[A-Za-z_]", ident) else f"dyt_{ident}"


def every_code(spec: DyTSpec) -> np.ndarray:
    """``(2**in_bits, C)``: every input code on every channel (row ``i`` holds code ``lo + i``)."""
    lo, hi = signed_range(spec.in_bits)
    return np.repeat(np.arange(lo, hi + 1, dtype=np.int64)[:, None], spec.channels, axis=1)


@functools.cache
def _tanh_codes_class():
    import keras

    @keras.saving.register_keras_serializable(package="hardyt")
    class TanhCodes:
        """hardyt's integer tanh as a Keras callable: ``table[x - lo]`` of integer-valued ``x``."""

        def __init__(self, table, lo):
            self.table, self.lo = [int(v) for v in table], int(lo)
            self.__name__ = "hardyt_tanh"

        def __call__(self, x):
            from keras import ops
            index = ops.cast(ops.round(x), "int32") - self.lo
            return ops.take(ops.convert_to_tensor(np.asarray(self.table, np.float32)), index)

        def get_config(self):
            return {"table": self.table, "lo": self.lo}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    return TanhCodes


def load_keras_model(project):
    """The Keras model saved in a project (``keras_model.keras``), to convert again with your own hls4ml config."""
    require_hls4ml()
    import keras
    return keras.models.load_model(Path(project) / "keras_model.keras",
                                   custom_objects={"hardyt>TanhCodes": _tanh_codes_class()})


def _int_quantizer(bits: int, rounding: str = "TRN", overflow: str = "WRAP", place: str = "datalane"):
    from hgq.quantizer import QuantizerConfig
    return QuantizerConfig("kif", place, k0=1, i0=bits - 1, f0=0, round_mode=rounding, overflow_mode=overflow,
                           trainable=False, homogeneous_axis=None, heterogeneous_axis=())


def _fixed_weights(bits: int, frac: int):
    from hgq.quantizer import QuantizerConfig
    return QuantizerConfig("kif", "weight", k0=1, i0=bits - 1 - frac, f0=frac, round_mode="RND",
                           overflow_mode="WRAP", trainable=False, homogeneous_axis=None, heterogeneous_axis=(0,))


def _scale_layer(x, name: str, scale, bias, bits: tuple[int, int], frac: int):
    """``x · scale[c] + bias[c]`` with both held exactly at ``frac`` fractional bits (``bits``: scale, bias widths)."""
    from hgq.layers import QBatchNormalization
    # epsilon 0, mean 0, variance 1: HGQ2's scale and offset are gamma and beta themselves.
    bn = QBatchNormalization(epsilon=0.0, kq_conf=_fixed_weights(bits[0], frac), bq_conf=_fixed_weights(bits[1], frac),
                             enable_iq=False, name=name)
    y = bn(x)
    c = len(scale)
    bn.moving_mean.assign(np.zeros(c, np.float32))
    bn.moving_variance.assign(np.ones(c, np.float32))
    bn.bn_gamma.assign(np.asarray(scale, np.float64).astype(np.float32))
    bn.bn_beta.assign(np.asarray(bias, np.float64).astype(np.float32))
    return y


def _dyt_layers(x, spec: DyTSpec, prefix: str):
    """The Keras layers of one DyT layer on integer codes ``x``."""
    from hgq.layers import QUnaryFunctionLUT
    from hgq.quantizer import Quantizer

    if spec.alpha_shift is not None:
        # hls4ml's bit-exact flow needs a quantizer after an input: the codes, as they are.
        x = Quantizer(_int_quantizer(spec.in_bits), name=f"{prefix}_in")(x)
        shifts = np.asarray(spec.alpha_shift, np.int64)
        x = _scale_layer(x, f"{prefix}_alpha_shift", 2.0 ** shifts, np.zeros(spec.channels),
                         (int(shifts.max()) + 2, 2), 0)
    t = spec.tanh
    lo, hi = signed_range(t.in_bits)
    table = tanh_int(np.arange(lo, hi + 1, dtype=np.int64), t)
    x = QUnaryFunctionLUT(_tanh_codes_class()(table, lo), iq_conf=_int_quantizer(t.in_bits),
                          oq_conf=_int_quantizer(t.out_bits), allow_heterogeneous_table=False,
                          allow_heterogeneous_input=False, name=f"{prefix}_tanh")(x)
    a = spec.affine
    if not isinstance(a, ChannelAffine):
        return x
    step = 2.0 ** -a.shift
    x = _scale_layer(x, f"{prefix}_affine", np.asarray(a.gamma) * step, np.asarray(a.beta) * step,
                     (a.gamma_bits, a.beta_bits), a.shift)
    return Quantizer(_int_quantizer(a.out_bits, "RND", "SAT"), name=f"{prefix}_narrow")(x)


def keras_model(specs: list[DyTSpec]):
    """A Keras 3 model of HGQ2 layers: one input (codes, ``(C,)``) and one output (codes) per DyT layer."""
    require_hls4ml()
    import keras

    inputs, outputs = [], []
    for spec in specs:
        name = project_name(spec.name)
        x = keras.Input((spec.channels,), name=f"{name}_codes")
        inputs.append(x)
        outputs.append(_dyt_layers(x, spec, name))
    return keras.Model(inputs, outputs, name=SET_NAME if len(specs) > 1 else project_name(specs[0].name))


def _convert(specs: list[DyTSpec], directory: Path, name: str, backend: str, **hls_options):
    hls4ml = require_hls4ml()
    model = keras_model(specs)
    with contextlib.redirect_stdout(io.StringIO()):   # hls4ml narrates every layer
        hls_model = hls4ml.converters.convert_from_keras_model(
            model, output_dir=str(directory), project_name=name, backend=backend, io_type="io_parallel",
            **hls_options)
        hls_model.write()
    for spec in specs:
        atomic_write_text(directory / f"{project_name(spec.name)}.spec.json", spec.to_json())
    return hls_model


def csim_check(project, specs: list[DyTSpec]) -> dict:
    """hls4ml's C simulation of a written project (``compile()`` + ``predict()``) on every input code of
    every channel of every layer, against the golden model.

    ``project`` is a project directory (opened with ``hls4ml.converters.link_existing_project``, as a
    user opens it) or a converted hls4ml model. Returns ``elements`` (compared; in a set, the code
    lists of narrower layers repeat up to the widest's length), ``mismatches`` and both per layer.
    """
    hls4ml = require_hls4ml()
    if isinstance(project, (str, Path)):
        project = hls4ml.converters.link_existing_project(str(project))
    codes = [every_code(s) for s in specs]
    rows = max(len(c) for c in codes)
    # Every layer sees `rows` rows (shorter code lists repeat): one predict() call for the set.
    inputs = [np.resize(c, (rows, c.shape[1])).astype(np.float32) for c in codes]
    with contextlib.redirect_stdout(io.StringIO()):
        project.compile()
        got = project.predict(inputs if len(inputs) > 1 else inputs[0])
    got = got if isinstance(got, (list, tuple)) else [got]
    layers = {}
    for spec, x, y in zip(specs, inputs, got):
        want = spec.reference(x.astype(np.int64))
        y = np.asarray(y).reshape(want.shape)
        layers[spec.name] = {"elements": int(want.size), "mismatches": int(np.count_nonzero(y != want))}
    return {"elements": sum(v["elements"] for v in layers.values()),
            "mismatches": sum(v["mismatches"] for v in layers.values()), "layers": layers}


def _relocate(project: Path, hls_model, written_at: Path, final: Path) -> None:
    """Make a project written at ``written_at`` valid at ``final``.

    hls4ml records its absolute ``OutputDir``; the C-simulation library built there (with the weights
    path compiled in) is dropped. hls4ml 1.3.0 writes ``InputShapes``/``OutputShapes`` with sorted
    keys, and ``link_existing_project`` pairs them with the top function's ports in that order (a
    project with several outputs then reads past its buffers): they are rewritten in port order.
    """
    import yaml

    cfg = project / "hls4ml_config.yml"
    text = cfg.read_text().replace(str(written_at), str(final))
    for key, variables in (("InputShapes", hls_model.get_input_variables()),
                           ("OutputShapes", hls_model.get_output_variables())):
        block = yaml.safe_dump({key: {v.name: [int(d) for d in v.shape] for v in variables}}, sort_keys=False)
        text = re.sub(rf"^{key}:\n(?:  .*\n)*", lambda _: block, text, count=1, flags=re.M)
    cfg.write_text(text)
    for lib in (project / "firmware").glob("*.so"):
        lib.unlink()


def write_projects(specs: list[DyTSpec], out, *, backend: str = "Vitis", layer_set: bool = True,
                   check: bool = False, **hls_options) -> dict:
    """Write one hls4ml project per DyT layer under ``out`` (``out/<layer>/``) and, with ``layer_set``
    and more than one layer, ``out/dyt_layers/`` holding them all; one layer alone with
    ``layer_set=False`` is written to ``out`` itself.

    ``check`` runs hls4ml's C simulation of every project before anything is moved into ``out`` and
    fails on any mismatch. ``hls_options`` go to ``convert_from_keras_model`` (``part``,
    ``clock_period``, ...). Written atomically: on an error ``out`` keeps what it held.
    """
    require_hls4ml()
    if backend not in ("Vitis", "Vivado"):
        raise HardytError(f"--backend must be Vitis or Vivado, got {backend!r}")
    single = len(specs) == 1 and not layer_set
    jobs = [(specs, "")] if single else [([s], project_name(s.name)) for s in specs]
    if layer_set and len(specs) > 1:
        jobs.append((specs, SET_NAME))
    out = Path(out).resolve()
    existed = out.exists()
    try:
        return _write(jobs, out, backend, check, hls_options)
    except BaseException:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _write(jobs, out: Path, backend: str, check: bool, hls_options: dict) -> dict:
    report = {"backend": backend, "projects": {}}
    with atomic_output_dir(out) as tmp:
        for group, sub in jobs:
            name = sub or project_name(group[0].name)
            directory = tmp / sub if sub else tmp
            try:
                hls_model = _convert(group, directory, name, backend, **hls_options)
            except HardytError:
                raise
            except Exception as e:  # noqa: BLE001 - hls4ml's errors are many; one line names the project
                raise HardytError(f"hls4ml could not convert {name}: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}") from None
            entry = {"layers": [s.name for s in group]}
            if check:
                result = csim_check(hls_model, group)
                if result["mismatches"]:
                    raise HardytError(f"{name}: hls4ml's C simulation differs from the golden model on "
                                      f"{result['mismatches']} of {result['elements']} elements")
                entry |= {k: result[k] for k in ("elements", "mismatches")}
            _relocate(directory, hls_model, tmp, out)
            report["projects"][str(out / sub) if sub else str(out)] = entry
    return report
