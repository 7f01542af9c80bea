"""The GPU kernel table of docs/benchmarks.md in one command (no Ray needed; a source tree is enough):

    PYTHONPATH=. python -m rllib_shm.bench.gpu_table

Dimension letters: B batch, T time, D input width, H memory size.

Sweeps B ∈ {8, 64}, T ∈ {1024, 4096}, H ∈ {32, 64, 128, 256} (options narrow it) and, for each,
the Triton scan, the torch fused loop, and cuDNN's GRU / LSTM with hidden 2H: one SHM cell (or
RNN layer) forward + backward on x [B,T,D], timed with CUDA events (median), peak allocated memory
over the row's start, all rows in this one process (``kernel_measure.py``). Then a Markdown table:
model GFLOP/s and GB/s (``roofline.py``) and their fraction of the device's spec peak where the
device is in ``roofline.PEAKS``, time relative to the GRU of the same (B, T, H), and the Triton
scan's speed-up over the torch loop; last, the issue's two targets. A row that fails (e.g. out of
memory) is reported as such and the sweep goes on. ``--device cpu`` only checks the harness
(tiny sizes; ``triton`` needs TRITON_INTERPRET=1 there; CPU memory is not measured per row).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import datetime
from pathlib import Path

from rllib_shm.bench.kernel import check_triton_method
from rllib_shm.bench.kernel_measure import LABELS, METHODS, measure
from rllib_shm.bench.roofline import Peak, fraction, peak_for
from rllib_shm.files import write_json
from rllib_shm.runs.outputs import check_new_file


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rllib_shm.bench.gpu_table",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 64], help="B values")
    parser.add_argument("--steps", type=int, nargs="+", default=[1024, 4096], help="T values")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256], help="H values")
    parser.add_argument("--methods", nargs="+", default=["triton", "fused", "gru", "lstm"],
                        help=f"subset of {METHODS}")
    parser.add_argument("--input-size", type=int, default=64, help="D (default 64)")
    parser.add_argument("--chunk-size", type=int, default=None, help="K of the fused scans (default ≈ √(T/2))")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (median)")
    parser.add_argument("--budget-s", type=float, default=10.0, help="stop a row's runs after this long (≥ 1)")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to check the harness")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file (default bench_results/gpu-table-<time>.json; never overwritten)")
    return parser.parse_args(argv)


def validate(args: argparse.Namespace) -> None:
    for name in ("batches", "steps", "sizes"):
        values = getattr(args, name)
        if any(v <= 0 for v in values):
            raise ValueError(f"--{name} must be positive integers, got {values}")
    for name in ("input_size", "repeats") + (("chunk_size",) if args.chunk_size is not None else ()):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if not args.budget_s > 0:
        raise ValueError(f"--budget-s must be positive, got {args.budget_s}")
    if args.device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be 'cpu' or 'cuda', got {args.device!r}")
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {unknown}; expected a subset of {list(METHODS)}")
    if "triton" in args.methods:
        check_triton_method(args.device)
        if max(args.sizes) > 256:
            raise ValueError(f"--methods triton supports --sizes up to 256, got {max(args.sizes)}")
    check_new_file(args.output, "--output")


def _cells(row: dict, rows: dict, peak: Peak | None) -> list[str]:
    """The table's cells for one measured row (``rows`` indexes every row by (B, T, H, method))."""
    key = (row["B"], row["T"], row["H"])
    seconds = row["median_s"]
    flops = fraction(row["flops"], seconds, peak.fp32_flops if peak else None)
    moved = row["bytes"] and fraction(row["bytes"], seconds, peak.memory_bytes_per_s if peak else None)
    gru = rows.get((*key, "gru"))
    triton = rows.get((*key, "triton"))
    fused = rows.get((*key, "fused"))
    speedup, same = "-", "-"
    if row["method"] == "fused" and triton and "error" not in triton:
        speedup = f"{seconds / triton['median_s']:.3g}x"
    if row["method"] == "triton" and fused and "error" not in fused:  # the same output as the torch loop?
        rel = abs(row["checksum"] - fused["checksum"]) / max(abs(fused["checksum"]), 1e-30)
        same = "yes" if rel < 1e-4 else f"NO ({rel:.0e})"
    return [
        f"{seconds * 1e3:.2f}", "-" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}",
        f"{row['flops'] / seconds / 1e9:.3g}", f"{100 * flops:.1f} %" if flops is not None else "-",
        f"{row['bytes'] / seconds / 1e9:.3g}" if row["bytes"] else "-", f"{100 * moved:.1f} %" if moved else "-",
        f"{seconds / gru['median_s']:.2f}" if gru and "error" not in gru else "-", speedup, same,
    ]


def table(results: list[dict], peak: Peak | None) -> str:
    """Markdown: one line per (B, T, H, method)."""
    header = ["B", "T", "H", "method", "fwd+bwd ms", "peak MiB", "GFLOP/s (model)", "of FP32 peak",
              "GB/s (model)", "of HBM peak", "time vs GRU(2H)", "Triton speed-up", "same y"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = {(r["B"], r["T"], r["H"], r["method"]): r for r in results}
    for r in results:
        cells = [f"failed: {r['error']}"] + [""] * 8 if "error" in r else _cells(r, rows, peak)
        key = [str(r["B"]), str(r["T"]), str(r["H"]), LABELS[r["method"]]]
        lines.append("| " + " | ".join([*key, *cells]) + " |")
    return "\n".join(lines)


def targets(results: list[dict]) -> list[str]:
    """The issue's two targets, from the rows measured (when present)."""
    rows = {(r["B"], r["T"], r["H"], r["method"]): r for r in results if "error" not in r}
    lines = []
    triton, gru, fused = (rows.get((8, 1024, 128, m)) for m in ("triton", "gru", "fused"))
    if triton and gru:
        ratio = triton["median_s"] / gru["median_s"]
        lines.append(f"B=8 T=1024 H=128: Triton / cuDNN GRU(256) time = {ratio:.2f} (target ≤ 1.5)")
    if triton and fused:
        ratio = fused["median_s"] / triton["median_s"]
        lines.append(f"B=8 T=1024 H=128: torch loop / Triton time = {ratio:.1f} (target ≥ 20)")
    big = rows.get((64, 4096, 256, "triton"))
    if big:
        full = 64 * 4096 * 256 * 256 * 4 / 2**20
        lines.append(f"B=64 T=4096 H=256: Triton peak {big['peak_mib']:.0f} MiB (one [B,T,H,H] fp32 tensor: "
                     f"{full:.0f} MiB)")
    return lines


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = parse(argv)
    try:
        validate(args)
    except (ValueError, OSError) as error:
        print(f"gpu_table: error: {error}", file=sys.stderr)
        return 2
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_table: error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    peak = peak_for(name) if args.device == "cuda" else None
    results = []
    for batch in args.batches:
        for steps in args.steps:
            for size in args.sizes:
                for method in args.methods:
                    print(f"[gpu_table] B={batch} T={steps} H={size} {LABELS[method]} ...", file=sys.stderr,
                          flush=True)
                    try:
                        row = measure(method, size, batch=batch, steps=steps, input_size=args.input_size,
                                      device=args.device, repeats=args.repeats, budget_s=args.budget_s,
                                      chunk_size=args.chunk_size)
                        if args.device == "cpu":
                            row["peak_mib"] = None  # RSS peaks are per process, not per row
                    except (RuntimeError, MemoryError) as error:  # torch.cuda.OutOfMemoryError included
                        row = {"method": method, "B": batch, "T": steps, "H": size,
                               "error": str(error).strip().splitlines()[0][:80]}
                        if args.device == "cuda":
                            torch.cuda.empty_cache()
                    results.append(row)
    import importlib.util

    triton_version = None
    if importlib.util.find_spec("triton"):
        import triton

        triton_version = triton.__version__
    meta = {"device": args.device, "device_name": name, "peak": peak and vars(peak), "torch": torch.__version__,
            "triton": triton_version, "python": platform.python_version(), "input_size": args.input_size,
            "chunk_size": args.chunk_size, "time": datetime.now().isoformat()}
    peaks = (f"{peak.name}: FP32 {peak.fp32_flops / 1e12:.0f} TFLOP/s, HBM {peak.memory_bytes_per_s / 1e12:.2f} TB/s"
             if peak else "unknown device, no fractions")
    print(f"Device: {name}; torch {torch.__version__}, Triton {triton_version}; D = {args.input_size}; "
          f"spec peaks {peaks}")
    print(table(results, peak))
    print("\n".join(targets(results)))
    output = args.output or Path("bench_results") / f"gpu-table-{datetime.now():%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, {"meta": meta, "results": results}, flag="--output")
    print(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
