"""``rllib-shm bench kernel``: the SHM recurrence, forward + backward, time and peak memory.

Every method computes the same thing from the same inputs x [B,T,D] (one SHMCell's parameters,
the same θ row indices), except the GRU / LSTM rows, which are torch's own modules with hidden
size min(2H, 256), shown for scale:

- ``reference``: the reference code's pattern: C and U materialised ([B,T,H,H]), a Python loop
  reading ``C[:, t]``, all states stacked and read by one einsum (O(T²) backward traffic).
- ``unbind``: the same loop over ``unbind(1)`` views.
- ``hadamard_scan``: the general HMF recurrence with C and U materialised, reads at every step.
- ``fused``: the project's SHM path (``shm_scan``) on its pure-torch backend: C_t and U_t built per
  step from vectors, hand-written reverse-time backward, chunk-boundary states only.
- ``compiled``: the same algorithm on the compiled CPU backend (``rllib_shm.memory.cpu_kernel``),
  one native call per direction. The parent process loads (or compiles) the kernel first and
  reports the cache location and the time of one fresh compile (the cost of a first use).

Rows ``act_*`` (``bench/acting.py``) time one acting step (B envs, T = 1, no autograd) instead.

Each (method, H) runs in a fresh Python process so that peak memory is its own: on CPU the rise
of the process's peak RSS over its RSS just before the first run; on CUDA
``torch.cuda.max_memory_allocated`` over the memory held before the first run.
Timing: one warm-up run (its output gives the "same y" checksum), then
``torch.utils.benchmark.Timer.blocked_autorange`` (it synchronises CUDA, disables garbage
collection while timing, and groups runs shorter than its overhead threshold into blocks): samples
are taken until they add up to (``--repeats`` − 1) × the warm-up's time, capped at ``--budget-s``,
at least one; ``median_s`` is the median per run and ``runs`` the number of samples. A method whose
warm-up already exceeds ``--budget-s`` reports that single run (its time is far from warm-up effects).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from rllib_shm.bench.acting import ACTING_METHODS, GRU_HIDDEN, measure_acting
from rllib_shm.bench.common import rss_bytes
from rllib_shm.runs.outputs import check_new_file

METHODS = ("reference", "unbind", "hadamard_scan", "fused", "compiled", "gru", "lstm", *ACTING_METHODS)
LABELS = {
    "reference": "(a) reference: C[:, t] loop",
    "unbind": "(b) same loop, unbind",
    "hadamard_scan": "hadamard_scan (general)",
    "fused": "(c) fused SHM scan (torch)",
    "compiled": "(d) fused SHM scan (compiled)",
    "gru": "torch.nn.GRU",
    "lstm": "torch.nn.LSTM",
    "act_compiled": "acting: SHM (compiled)",
    "act_torch": "acting: SHM (torch)",
    "act_gru": f"acting: torch.nn.GRU({GRU_HIDDEN})",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=8, help="B (default 8)")
    parser.add_argument("--steps", type=int, default=1024, help="T (default 1024)")
    parser.add_argument("--input-size", type=int, default=64, help="D (default 64)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="H values")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help=f"subset of {METHODS}")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after warm-up (median)")
    parser.add_argument("--budget-s", type=float, default=30.0,
                        help="stop repeating a method once its runs took this long (≥ 1 run)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: OMP_NUM_THREADS, set to 1 by the CLI)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file (default bench_results/kernel-<time>.json; never overwritten)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement as JSON


def _validate(args: argparse.Namespace) -> None:
    for name in ("batch", "steps", "input_size", "repeats"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if any(h <= 0 for h in args.sizes):
        raise ValueError(f"--sizes must be positive integers, got {args.sizes}")
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {unknown}; expected a subset of {list(METHODS)}")
    if args.device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be 'cpu' or 'cuda', got {args.device!r}")
    if args.threads is not None and args.threads <= 0:
        raise ValueError(f"--threads must be a positive integer, got {args.threads}")
    check_new_file(args.output, "--output")


def _measure(method: str, size: int, args: argparse.Namespace) -> dict:
    """Runs inside the worker process: build, warm up, time, report."""
    import torch
    from torch.utils.benchmark import Timer

    from rllib_shm.memory import SHMCell, hadamard_scan
    from rllib_shm.memory.reference import reference_forward

    if args.threads:
        torch.set_num_threads(args.threads)
    if method in ACTING_METHODS:
        return measure_acting(method, size, args.batch, args.input_size, seconds=min(2.0, 0.2 * args.repeats))
    if method in ("fused", "compiled"):
        os.environ["RLLIB_SHM_BACKEND"] = "torch" if method == "fused" else "compiled"
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # parameter initialisation of this throw-away process only
    batch, steps, width = args.batch, args.steps, args.input_size
    x = torch.randn(batch, steps, width, generator=gen).to(device).requires_grad_()
    if method in ("gru", "lstm"):
        hidden = min(2 * size, 256)
        core = (torch.nn.GRU if method == "gru" else torch.nn.LSTM)(width, hidden, batch_first=True).to(device)

        def step():
            return core(x)[0]
    else:
        cell = SHMCell(width, size, size).to(device)
        indices = cell.draw_indices(batch, steps, gen).to(device)

        def step():
            if method in ("fused", "compiled"):
                return cell(x, theta_indices=indices)[0]
            if method == "hadamard_scan":
                x_hat, key, query, value, _, shortcut, _ = cell._projections(x)
                update = value.unsqueeze(-1) * key.unsqueeze(-2)
                memory0 = cell.initial_state(batch, device)["memory"]
                reads, _ = hadamard_scan(cell.calibrations(x_hat, indices), update, query, memory0)
                return cell.out(reads + shortcut)
            loop = "index" if method == "reference" else "unbind"
            return reference_forward(cell, x, indices, loop=loop)[0]

    def once():
        x.grad = None
        y = step()
        y.square().mean().backward()
        return y

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    threads = torch.get_num_threads()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = rss_bytes()
    start = time.perf_counter()
    checksum = float(once().detach().double().square().sum())  # the warm-up run
    sync()
    warm = time.perf_counter() - start
    measurement = None
    if warm < args.budget_s:
        timer = Timer(stmt="once()", globals={"once": once}, num_threads=threads,
                      label="fwd+bwd", sub_label=f"{method} H={size}")
        measurement = timer.blocked_autorange(min_run_time=min(args.budget_s, (args.repeats - 1) * warm))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    # (after the peak: Measurement.median's first torch.quantile pages in a few MiB of code)
    median = measurement.median if measurement else warm
    runs = len(measurement.raw_times) if measurement else 1
    return {
        "method": method, "H": size, "median_s": median, "runs": runs,
        "warmup": measurement is not None, "peak_mib": peak / 2**20, "checksum": checksum,
        "threads": threads,
    }


def _worker_argv(method: str, size: int, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "rllib_shm.cli", "bench", "kernel", "--worker", f"{method}:{size}",
            "--batch", str(args.batch), "--steps", str(args.steps), "--input-size", str(args.input_size),
            "--repeats", str(args.repeats), "--budget-s", str(args.budget_s), "--device", args.device]
    return argv + (["--threads", str(args.threads)] if args.threads else [])


def _table(rows: list[dict]) -> str:
    lines = [f"{'method':<30} {'H':>4} {'fwd+bwd s':>10} {'runs':>5} {'peak MiB':>10} "
             f"{'vs (b)':>8} {'vs (a)':>8} {'same y':>7}"]
    by_key = {(r["method"], r["H"]): r for r in rows}
    for r in rows:
        if r["method"] in ACTING_METHODS:
            continue
        b, a = by_key.get(("unbind", r["H"])), by_key.get(("reference", r["H"]))
        fused = by_key.get(("fused", r["H"]))
        speed_b = f"{b['median_s'] / r['median_s']:.1f}x" if b else "-"
        speed_a = f"{a['median_s'] / r['median_s']:.0f}x" if a else "-"
        same = "-"
        if fused and r["method"] not in ("gru", "lstm"):
            rel = abs(r["checksum"] - fused["checksum"]) / max(abs(fused["checksum"]), 1e-30)
            same = "yes" if rel < 1e-4 else f"{rel:.0e}"
        lines.append(f"{LABELS[r['method']]:<30} {r['H']:>4} {r['median_s']:>10.3f} {r['runs']:>5} "
                     f"{r['peak_mib']:>10.1f} {speed_b:>8} {speed_a:>8} {same:>7}")
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

    from rllib_shm.memory import cpu_kernel
    from rllib_shm.memory.cpu_kernel.build import timed_compile

    result = cpu_kernel.kernel_build()
    if result.library is None:
        raise RuntimeError(f"the compiled CPU scan is unavailable: {result.error}")
    with tempfile.TemporaryDirectory() as scratch:
        fresh = timed_compile(Path(scratch))
    return {"kernel_cache": str(result.path), "kernel_compile_s": fresh}


def run(args: argparse.Namespace) -> int:
    _validate(args)
    if args.worker:
        method, size = args.worker.split(":")
        print(json.dumps(_measure(method, int(size), args)))
        return 0
    output = args.output or Path("bench_results") / f"kernel-{datetime.now():%Y%m%d-%H%M%S}.json"
    rows = []
    kernel = _kernel_report(args.methods)
    if kernel:
        print(f"[bench kernel] compiled CPU kernel: {kernel['kernel_cache']} (a first use compiles it: "
              f"{kernel['kernel_compile_s']:.1f} s here)", file=sys.stderr, flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for size in args.sizes:
        for method in [m for m in METHODS if m in args.methods]:
            print(f"[bench kernel] {LABELS[method]} H={size} B={args.batch} T={args.steps} ...",
                  file=sys.stderr, flush=True)
            done = subprocess.run(_worker_argv(method, size, args), capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"benchmark worker {method} H={size} failed:\n{done.stderr[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"    {r['median_s']:.6f} s (median of {r['runs']}), peak {r['peak_mib']:.1f} MiB",
                  file=sys.stderr, flush=True)
    table = _table(rows)
    print(f"B={args.batch} T={args.steps} D={args.input_size} device={args.device} "
          f"threads={rows[0]['threads'] if rows else '-'}")
    print(table)
    if kernel:
        print(f"compiled kernel: {kernel['kernel_cache']}; a fresh compile (first use) took "
              f"{kernel['kernel_compile_s']:.1f} s")
    import torch

    meta = {"batch": args.batch, "steps": args.steps, "input_size": args.input_size, "device": args.device,
            **kernel, "torch": torch.__version__, "python": platform.python_version(), "machine": platform.processor()
            or platform.machine(), "cpu_count": os.cpu_count(), "time": datetime.now().isoformat()}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"results written to {output}")
    return 0
