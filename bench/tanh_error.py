"""tanh approximation error: config -> worst/mean ULP and ROM bits, over every input code.

    .venv/bin/python bench/tanh_error.py          # prints the table, writes bench/results/tanh_error.{json,md}

alpha * LSB is set so that the input range spans tanh arguments of +-4
(the input clip the calibration typically chooses); the output is 8 bits,
full scale 1.0 = code 127.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from hardyt.quant.files import atomic_write_text
from hardyt.quant.contract.tanh import build_lut, build_pwl, build_threshold, error_report

OUT = Path(__file__).parent / "results"
OUT_BITS = 8
ARG_RANGE = 4.0


def configs():
    for in_bits in (6, 8, 10):
        yield f"lut in={in_bits}", lambda n=in_bits: build_lut(n, OUT_BITS, ARG_RANGE / 2 ** (n - 1))
    yield "lut in=12 drop=2", lambda: build_lut(12, OUT_BITS, ARG_RANGE / 2 ** 11, drop_bits=2)
    for in_bits in (12, 16):
        for segments in (8, 16, 32):
            yield (f"pwl in={in_bits} seg={segments}",
                   lambda n=in_bits, s=segments: build_pwl(n, OUT_BITS, ARG_RANGE / 2 ** (n - 1), s))
    for in_bits in (8, 10, 12, 16):
        yield f"threshold in={in_bits}", lambda n=in_bits: build_threshold(n, OUT_BITS, ARG_RANGE / 2 ** (n - 1))


def main() -> int:
    rows = []
    for name, build in configs():
        t0 = time.perf_counter()
        t = build()
        r = error_report(t)
        rows.append({"config": name, "in_bits": t.in_bits, "out_bits": t.out_bits, "worst_ulp": r.worst_ulp,
                     "mean_ulp": r.mean_ulp, "rom_entries": r.rom_entries, "rom_bits": r.rom_bits,
                     "build_s": time.perf_counter() - t0})
    header = f"| config | worst ULP | mean ULP | ROM entries | ROM bits |\n|---|---|---|---|---|\n"
    table = header + "".join(f"| {r['config']} | {r['worst_ulp']:.3f} | {r['mean_ulp']:.3f} | "
                             f"{r['rom_entries']} | {r['rom_bits']} |\n" for r in rows)
    print(table)
    cmd = "python bench/tanh_error.py"
    meta = {"command": cmd, "out_bits": OUT_BITS, "arg_range": ARG_RANGE, "python": sys.version.split()[0],
            "machine": platform.machine()}
    OUT.mkdir(exist_ok=True)
    atomic_write_text(OUT / "tanh_error.json", json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    atomic_write_text(OUT / "tanh_error.md", f"# tanh error ({OUT_BITS}-bit out, input spans ±{ARG_RANGE})\n\n"
                      f"Command: `{cmd}`\n\n{table}")
    target = [r for r in rows if r["in_bits"] == 16 and r["rom_entries"] <= 32 and r["worst_ulp"] <= 1.0]
    print(f"target PWL <= 1 ULP at 16-bit in / 8-bit out with <= 32 segments: {'met' if target else 'NOT met'}")
    thr = [r for r in rows if r["config"].startswith("threshold")]
    ok = all(r["worst_ulp"] <= 0.5 and r["rom_entries"] == 2 ** OUT_BITS - 1 for r in thr)
    print(f"target threshold <= 0.5 ULP with {2 ** OUT_BITS - 1} words at 8/10/12/16-bit in: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
