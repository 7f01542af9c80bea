"""One-step acting for ``rllib-shm bench kernel``: the env runner's case, B envs, T = 1, no autograd.

Dimension letters: B batch, D input width, H memory size.

Each row times one call ``y, state = core(x [B,1,D], state)`` with the state carried from the
previous call, under ``torch.no_grad()``:

- ``act_compiled``: ``SHMCell(D, H, H)`` on the compiled backend (stacked input projection, one
  native call for the rest, ``SHMCell._act``), θ rows drawn per step as when acting;
- ``act_torch``: the same cell forced onto the pure-torch backend;
- ``act_gru``: ``torch.nn.GRU(D, 256)``, the baseline the issue names (GRU-256 at every H).

Timing: ``torch.utils.benchmark.Timer.blocked_autorange`` for about ``seconds``; median per call.
"""

from __future__ import annotations

ACTING_METHODS = ("act_compiled", "act_torch", "act_gru")
GRU_HIDDEN = 256


def measure_acting(method: str, size: int, batch: int, width: int, seconds: float = 2.0) -> dict:
    """Median seconds per acting step for one row (runs in the bench's worker process; the caller
    selects the scan backend, ``kernel_measure.scan_backend``)."""
    import torch
    from torch.utils.benchmark import Timer

    from rllib_shm.memory import SHMCell

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # parameter initialisation of this throw-away process only
    x = torch.randn(batch, 1, width, generator=gen)
    if method == "act_gru":
        core = torch.nn.GRU(width, GRU_HIDDEN, batch_first=True)
        state = {"h": torch.zeros(1, batch, GRU_HIDDEN)}

        def step():
            _, state["h"] = core(x, state["h"])
    else:
        cell = SHMCell(width, size, size)
        state = {"cell": cell.initial_state(batch)}

        def step():
            _, state["cell"] = cell(x, state["cell"])

    with torch.no_grad():
        step()  # warm-up (and, for the compiled row, the kernel load)
        measurement = Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads(),
                            label="acting", sub_label=f"{method} H={size}").blocked_autorange(min_run_time=seconds)
    return {"method": method, "H": size, "median_s": measurement.median, "runs": len(measurement.raw_times),
            "warmup": True, "peak_mib": float("nan"), "checksum": float("nan"),
            "threads": torch.get_num_threads()}
