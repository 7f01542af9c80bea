"""``rllib-shm bench kernel``: the SHM recurrence, forward + backward, time and peak memory.

Also a module without Ray or the CLI's other dependencies (a GPU machine with torch and Triton
only): ``PYTHONPATH=. python -m rllib_shm.bench.kernel --device cuda``.

Every method computes the same thing from the same inputs x [B,T,D] (one SHMCell's parameters,
the same θ row indices), except the GRU / LSTM rows, which are torch's own modules (cuDNN on
CUDA) with hidden size 2H, and the FFM row, shown for scale:

- ``reference``: the reference code's pattern: C and U materialised ([B,T,H,H]), a Python loop
  reading ``C[:, t]``, all states stacked and read by one einsum (O(T²) backward traffic).
- ``unbind``: the same loop over ``unbind(1)`` views.
- ``hadamard_scan``: the general HMF recurrence with C and U materialised, reads at every step.
- ``fused``: ``shm_scan``'s torch backend: C_t and U_t built per step from vectors, hand-written
  reverse-time backward, chunk-boundary states only (a Python loop of small kernels per step).
- ``compiled``: the same algorithm on the compiled CPU backend (``rllib_shm.memory.kernels.cpu_kernel``),
  one native call per direction. The parent process loads (or compiles) the kernel first and
  reports the cache location and the time of one fresh compile (the cost of a first use).
- ``triton``: ``shm_scan``'s Triton backend (``rllib_shm/memory/kernels/triton_scan.py``): the whole
  recurrence in one forward and one backward kernel. CUDA, or CPU under Triton's interpreter
  (``TRITON_INTERPRET=1``; toy sizes only, for checks).

- ``ffm``: the project's Fast and Forgetful Memory cell (``rllib_shm/memory/ffm.py``, its
  chunked parallel form) on the same x [B,T,D]: trace size M = H, context C = ``--ffm-context``
  (default 8, so H = 32 is the FFM paper's 32×8), output width H like SHM's cell. Its state is
  M×C complex (2·M·C floats, 512 at 32×8) against SHM's H².

Rows ``act_*`` (``bench/acting.py``) time one acting step (B envs, T = 1, no autograd) instead.

Default methods: on CPU all but ``triton``; on CUDA ``triton fused gru lstm ffm`` (the materialising
methods need [B,T,H,H] tensors). Each (method, H) runs in a fresh Python process so that peak
memory is its own; timing and memory as in ``kernel_measure.py``. "same y" compares a method's
output checksum with the fused (torch) one's, else the first SHM method's; "GFLOP/s" is the
model work of ``roofline.py`` per second of the measured time. ``gpu_table.py`` runs the whole
GPU sweep (B, T, H) in one go.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from rllib_shm.bench.acting import ACTING_METHODS
from rllib_shm.bench.common import worker_failure
from rllib_shm.bench.kernel_measure import FFM_CONTEXT, LABELS, METHODS, SCAN_METHODS, measure
from rllib_shm.files import write_json
from rllib_shm.runs.outputs import check_new_file

CPU_METHODS = ("reference", "unbind", "hadamard_scan", "fused", "compiled", "gru", "lstm", "ffm", *ACTING_METHODS)
CUDA_METHODS = ("triton", "fused", "gru", "lstm", "ffm")
SAME_Y_REFERENCE = ("fused", "compiled", "triton", "hadamard_scan", "unbind", "reference")  # first present: "same y"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=8, help="B (default 8)")
    parser.add_argument("--steps", type=int, default=1024, help="T (default 1024)")
    parser.add_argument("--input-size", type=int, default=64, help="D (default 64)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="H values")
    parser.add_argument("--methods", nargs="+", default=None,
                        help=f"subset of {METHODS} (default: {' '.join(CPU_METHODS)} on CPU, "
                             f"{' '.join(CUDA_METHODS)} on CUDA)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="K, steps between stored states of the fused scans (default ≈ √(T/2))")
    parser.add_argument("--ffm-context", type=int, default=FFM_CONTEXT,
                        help=f"C of the ffm row, whose trace size M follows H (default {FFM_CONTEXT}: "
                             "H = 32 is the FFM paper's 32×8)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after warm-up (median)")
    parser.add_argument("--budget-s", type=float, default=30.0,
                        help="stop repeating a method once its runs took this long (≥ 1 run)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: OMP_NUM_THREADS, set to 1 by the CLI)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file (default bench_results/kernel-<time>.json; never overwritten)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement as JSON


def check_triton_method(device: str) -> None:
    """The ``triton`` method runs where Triton imports, on CUDA or under its interpreter."""
    from rllib_shm.memory.kernels.backend import triton_available

    if not triton_available():
        raise ValueError("--methods triton needs Triton: pip install -e '.[gpu]' (Linux)")
    if device == "cpu" and os.environ.get("TRITON_INTERPRET", "0").lower() not in ("1", "true", "on", "yes"):
        raise ValueError("--methods triton on --device cpu needs Triton's interpreter (TRITON_INTERPRET=1; "
                         "toy sizes only), or --device cuda")


def check_device(device: str) -> None:
    """``--device cuda`` needs a GPU that torch sees."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU (torch.cuda.is_available() is False); run on a GPU "
                         "machine, or use --device cpu")


def validate(args: argparse.Namespace) -> None:
    for name in ("batch", "steps", "input_size", "repeats", "ffm_context"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if any(h <= 0 for h in args.sizes):
        raise ValueError(f"--sizes must be positive integers, got {args.sizes}")
    if args.device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be 'cpu' or 'cuda', got {args.device!r}")
    check_device(args.device)
    if args.methods is None:
        args.methods = list(CPU_METHODS if args.device == "cpu" else CUDA_METHODS)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {unknown}; expected a subset of {list(METHODS)}")
    if args.chunk_size is not None and args.chunk_size <= 0:
        raise ValueError(f"--chunk-size must be a positive integer, got {args.chunk_size}")
    if args.threads is not None and args.threads <= 0:
        raise ValueError(f"--threads must be a positive integer, got {args.threads}")
    if not args.budget_s > 0:
        raise ValueError(f"--budget-s must be positive, got {args.budget_s}")
    if "triton" in args.methods:
        check_triton_method(args.device)
        if max(args.sizes) > 256:
            raise ValueError(f"--methods triton supports --sizes up to 256, got {max(args.sizes)}")
    check_new_file(args.output, "--output")


def _worker_argv(method: str, size: int, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "rllib_shm.bench.kernel", "--worker", f"{method}:{size}",
            "--batch", str(args.batch), "--steps", str(args.steps), "--input-size", str(args.input_size),
            "--repeats", str(args.repeats), "--budget-s", str(args.budget_s), "--device", args.device,
            "--methods", method, "--ffm-context", str(args.ffm_context)]
    argv += ["--threads", str(args.threads)] if args.threads else []
    return argv + (["--chunk-size", str(args.chunk_size)] if args.chunk_size else [])


def _table(rows: list[dict]) -> str:
    lines = [f"{'method':<30} {'H':>4} {'fwd+bwd s':>10} {'runs':>5} {'peak MiB':>10} "
             f"{'vs (b)':>8} {'vs (a)':>8} {'same y':>7} {'GFLOP/s':>8}"]
    by_key = {(r["method"], r["H"]): r for r in rows}
    for r in rows:
        if r["method"] in ACTING_METHODS:
            continue
        b, a = by_key.get(("unbind", r["H"])), by_key.get(("reference", r["H"]))
        first = next((by_key[(m, r["H"])] for m in SAME_Y_REFERENCE if (m, r["H"]) in by_key), None)
        speed_b = f"{b['median_s'] / r['median_s']:.1f}x" if b else "-"
        speed_a = f"{a['median_s'] / r['median_s']:.0f}x" if a else "-"
        same = "-"
        if first and r["method"] in SCAN_METHODS:
            rel = abs(r["checksum"] - first["checksum"]) / max(abs(first["checksum"]), 1e-30)
            same = "yes" if rel < 1e-4 else f"{rel:.0e}"
        lines.append(f"{LABELS[r['method']]:<30} {r['H']:>4} {r['median_s']:>10.3f} {r['runs']:>5} "
                     f"{r['peak_mib']:>10.1f} {speed_b:>8} {speed_a:>8} {same:>7} "
                     f"{r['flops'] / r['median_s'] / 1e9:>8.1f}")
    acting = [r for r in rows if r["method"] in ACTING_METHODS]
    if acting:
        lines += ["", f"{'one acting step (T = 1, no grad)':<34} {'H':>4} {'µs/step':>10} {'runs':>6} "
                      f"{'vs GRU':>7}"]
        for r in acting:
            gru = next((g for g in acting if g["method"] == "act_gru" and g["H"] == r["H"]), None)
            ratio = f"{r['median_s'] / gru['median_s']:.2f}x" if gru else "-"
            lines.append(f"{LABELS[r['method']]:<34} {r['H']:>4} {r['median_s'] * 1e6:>10.1f} {r['runs']:>6} "
                         f"{ratio:>7}")
    return "\n".join(lines)


def _kernel_report(methods: list[str]) -> dict:
    """Load (or compile) the CPU kernel before the workers run; time one fresh compile."""
    if not {"compiled", "act_compiled"} & set(methods):
        return {}
    import tempfile

    from rllib_shm.memory.kernels import cpu_kernel
    from rllib_shm.memory.kernels.cpu_kernel.build import timed_compile

    result = cpu_kernel.kernel_build()
    if result.library is None:
        raise RuntimeError(f"the compiled CPU scan is unavailable: {result.error}")
    with tempfile.TemporaryDirectory() as scratch:
        fresh = timed_compile(Path(scratch))
    return {"kernel_cache": str(result.path), "kernel_compile_s": fresh}


def run(args: argparse.Namespace) -> int:
    validate(args)
    if args.worker:
        method, size = args.worker.split(":")
        print(json.dumps(measure(method, int(size), batch=args.batch, steps=args.steps,
                                 input_size=args.input_size, device=args.device, repeats=args.repeats,
                                 budget_s=args.budget_s, threads=args.threads, chunk_size=args.chunk_size,
                                 ffm_context=args.ffm_context)))
        return 0
    output = args.output or Path("bench_results") / f"kernel-{datetime.now():%Y%m%d-%H%M%S}.json"
    rows = []
    kernel = _kernel_report(args.methods)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for size in args.sizes:
        for method in [m for m in METHODS if m in args.methods]:
            print(f"[bench kernel] {LABELS[method]} H={size} B={args.batch} T={args.steps} ...",
                  file=sys.stderr, flush=True)
            done = subprocess.run(_worker_argv(method, size, args), capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise worker_failure(f"{method} H={size}", done.returncode, done.stderr)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"    {r['median_s']:.6f} s (median of {r['runs']}), peak {r['peak_mib']:.1f} MiB",
                  file=sys.stderr, flush=True)
    import torch

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    ffm = f" FFM C={args.ffm_context}" if "ffm" in args.methods else ""
    print(f"B={args.batch} T={args.steps} D={args.input_size}{ffm} device={args.device} ({device_name}) "
          f"threads={rows[0]['threads'] if rows else '-'}")
    print(_table(rows))
    if kernel:
        print(f"compiled kernel: {kernel['kernel_cache']}; a fresh compile (first use) took "
              f"{kernel['kernel_compile_s']:.1f} s")
    meta = {"batch": args.batch, "steps": args.steps, "input_size": args.input_size, "device": args.device,
            "ffm_context": args.ffm_context,
            "device_name": device_name, "chunk_size": args.chunk_size, **kernel, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "time": datetime.now().isoformat()}
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, {"meta": meta, "results": rows}, flag="--output")
    print(f"results written to {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m rllib_shm.bench.kernel``: the same as ``rllib-shm bench kernel``, without the CLI
    (so without Ray); bad arguments end in one line and exit code 2."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(prog="python -m rllib_shm.bench.kernel", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError) as error:
        print(f"bench kernel: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
