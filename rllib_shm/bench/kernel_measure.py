"""One row of the kernel benchmark: build a method, warm it up, time forward + backward, peak memory.

Dimension letters: B batch, T time, D input width, H memory size.

Every SHM method computes y = cell(x) for x [B,T,D] with one SHMCell's parameters and θ row
indices; GRU / LSTM are torch's modules with hidden size 2H (cuDNN on CUDA), for scale; ``ffm``
is the project's ``FFMCell`` (Fast and Forgetful Memory, ``rllib_shm/memory/ffm.py``) with trace
size M = H, context C (default 8; at H = 32 the FFM paper's 32×8) and output width H, as SHM's
cell. The timed unit is one forward + ``y.square().mean().backward()``.

Timing:
- CPU: ``torch.utils.benchmark.Timer.blocked_autorange`` for (repeats − 1) × the warm-up's time,
  capped at ``budget_s`` (median per run); a method whose warm-up exceeds ``budget_s`` reports it.
- CUDA: a second warm-up (Triton compiles and cuDNN picks its algorithms on the first), then up to
  ``repeats`` runs, each between two CUDA events, stopping once they add up to ``budget_s``
  (at least one); ``median_s`` is their median.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over what was allocated before the
first run (exact per row, so rows may share a process); on CPU the process's peak RSS over its RSS
before the first run (needs one process per row: ``rllib-shm bench kernel`` spawns them).
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import time

from rllib_shm.bench.acting import ACTING_METHODS, GRU_HIDDEN, measure_acting
from rllib_shm.bench.common import rss_bytes
from rllib_shm.bench.roofline import ffm_flops, projection_flops, rnn_flops, scan_bytes, scan_ops

METHODS = ("reference", "unbind", "hadamard_scan", "fused", "compiled", "triton", "gru", "lstm", "ffm",
           *ACTING_METHODS)
FFM_CONTEXT = 8  # C of the ffm row (the FFM paper's default); its M follows H
LABELS = {
    "reference": "(a) reference: C[:, t] loop",
    "unbind": "(b) same loop, unbind",
    "hadamard_scan": "hadamard_scan (general)",
    "fused": "(c) fused SHM scan (torch)",
    "compiled": "(d) fused SHM scan (compiled)",
    "triton": "(e) fused SHM scan (Triton)",
    "gru": "torch.nn.GRU (2H)",
    "lstm": "torch.nn.LSTM (2H)",
    "ffm": "FFM (M = H)",
    "act_compiled": "acting: SHM (compiled)",
    "act_torch": "acting: SHM (torch)",
    "act_gru": f"acting: torch.nn.GRU({GRU_HIDDEN})",
}
SCAN_METHODS = ("reference", "unbind", "hadamard_scan", "fused", "compiled", "triton")
# shm_scan backend per method
BACKEND_OF = {"fused": "torch", "compiled": "compiled", "triton": "triton", "act_compiled": "compiled",
              "act_torch": "torch"}


@contextlib.contextmanager
def scan_backend(name: str | None):
    """Run ``shm_scan`` on backend ``name`` (torch / compiled / triton) inside the block (``$RLLIB_SHM_SCAN``)."""
    from rllib_shm.memory.kernels.backend import BACKEND_ENV

    before = os.environ.get(BACKEND_ENV)
    if name is not None:
        os.environ[BACKEND_ENV] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = before


def build(method: str, batch: int, steps: int, input_size: int, size: int, device, chunk_size: int | None,
          ffm_context: int = FFM_CONTEXT):
    """(x [B,T,D] requiring grad, step() -> y) for one method, parameters from torch's seed 0."""
    import torch

    from rllib_shm.memory import FFMCell, SHMCell, hadamard_scan
    from rllib_shm.memory.reference import reference_forward

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # parameter initialisation, the same for every method of a row
    x = torch.randn(batch, steps, input_size, generator=gen).to(device).requires_grad_()
    if method in ("gru", "lstm"):
        core = (torch.nn.GRU if method == "gru" else torch.nn.LSTM)(input_size, 2 * size, batch_first=True)
        core = core.to(device)
        return x, lambda: core(x)[0]
    if method == "ffm":  # trace M = H, context C, output H (as SHM's cell)
        ffm = FFMCell(input_size, size, trace_size=size, context_size=ffm_context).to(device)
        return x, lambda: ffm(x)[0]
    cell = SHMCell(input_size, size, size, chunk_size=chunk_size).to(device)
    indices = cell.draw_indices(batch, steps, gen).to(device)

    def step():
        if method in BACKEND_OF:
            return cell(x, theta_indices=indices)[0]
        if method == "hadamard_scan":
            projections = cell._projections(x)  # by name: the tuple grows with the cell's options
            x_hat, key, query, value, shortcut = (projections.x_hat, projections.key, projections.query,
                                                   projections.value, projections.shortcut)
            update = value.unsqueeze(-1) * key.unsqueeze(-2)
            memory0 = cell.initial_state(batch, device)["memory"]
            reads, _ = hadamard_scan(cell.calibrations(x_hat, indices), update, query, memory0)
            return cell.out(reads + shortcut)
        return reference_forward(cell, x, indices, loop="index" if method == "reference" else "unbind")[0]

    return x, step


def work(method: str, batch: int, steps: int, input_size: int, size: int, chunk: int,
         ffm_context: int = FFM_CONTEXT) -> dict:
    """Model FLOPs (and, for the Triton scan, bytes) of one fwd + bwd (``roofline.py``)."""
    if method == "ffm":
        return {"flops": ffm_flops(batch, steps, input_size, size, ffm_context, size), "bytes": None}
    if method in ("gru", "lstm"):
        return {"flops": rnn_flops(batch, steps, input_size, 2 * size, 3 if method == "gru" else 4),
                "bytes": None}
    flops = scan_ops(batch, steps, size) + projection_flops(batch, steps, input_size, size, size)
    return {"flops": flops, "bytes": scan_bytes(batch, steps, size, chunk) if method == "triton" else None}


def _time_cuda(once, repeats: int, budget_s: float) -> list[float]:
    import torch

    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget_s):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        once()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return times


def measure(method: str, size: int, *, batch: int, steps: int, input_size: int, device: str = "cpu",
            repeats: int = 5, budget_s: float = 30.0, threads: int | None = None,
            chunk_size: int | None = None, ffm_context: int = FFM_CONTEXT) -> dict:
    """Build, warm up, time and report one (method, H) row as a dict (keys in ``rllib-shm bench kernel``)."""
    import torch
    from torch.utils.benchmark import Timer

    from rllib_shm.memory.kernels.fused import default_chunk_size

    if threads:
        torch.set_num_threads(threads)
    if method in ACTING_METHODS:
        with scan_backend(BACKEND_OF.get(method)):
            return measure_acting(method, size, batch, input_size, seconds=min(2.0, 0.2 * repeats))
    cuda = device == "cuda"
    x, step = build(method, batch, steps, input_size, size, torch.device(device), chunk_size, ffm_context)

    def once():
        x.grad = None
        y = step()
        y.square().mean().backward()
        return y

    with scan_backend(BACKEND_OF.get(method)):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            base = rss_bytes()
        start = time.perf_counter()
        checksum = float(once().detach().double().square().sum())  # the warm-up run
        if cuda:
            torch.cuda.synchronize()
        warm = time.perf_counter() - start
        if cuda:
            once()  # second warm-up: compiled, algorithms chosen
            times = _time_cuda(once, repeats, budget_s)
            median, runs, timed = statistics.median(times), len(times), True
            peak = torch.cuda.max_memory_allocated() - base
        else:
            timed = warm < budget_s
            if timed:
                timer = Timer(stmt="once()", globals={"once": once}, num_threads=torch.get_num_threads())
                measurement = timer.blocked_autorange(min_run_time=min(budget_s, (repeats - 1) * warm))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
            # (after the peak: Measurement.median's first torch.quantile pages in a few MiB of code)
            median = measurement.median if timed else warm
            runs = len(measurement.raw_times) if timed else 1
    chunk = min(chunk_size or default_chunk_size(steps), steps)
    return {
        "method": method, "H": size, "B": batch, "T": steps, "median_s": median, "runs": runs,
        "warmup": timed, "warmup_s": warm, "peak_mib": peak / 2**20, "checksum": checksum,
        "threads": torch.get_num_threads(), **work(method, batch, steps, input_size, size, chunk, ffm_context),
        **({"C": ffm_context} if method == "ffm" else {}),
    }
