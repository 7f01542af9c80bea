"""The one interface every memory cell implements (SHM, its ablations, GRU, LSTM, MLP).

Dimension letters: B batch, T time, D input width, O output width.

    y, new_state = cell(x, state, **extras)                x [B,T,D] -> y [B,T,O]
    y, new_state, extras_out = cell(x, state, return_extras=True, **extras)
    state = cell.initial_state(batch_size, device)         dict of tensors with a leading B

``state`` is a dict of tensors without a time dimension (e.g. SHM: ``{"memory": [B,H,H]}``,
GRU: ``{"h": [B,H]}``, LSTM: ``{"h": [B,H], "c": [B,H]}``, MLP: ``{}``). ``extras`` are per-step
inputs some cells accept (SHM: ``theta_indices`` [B,T] to replay θ draws, ``generator``);
``extras_out`` are per-step outputs to store with the trajectory (SHM random θ:
``{"theta_indices": [B,T]}``), empty for cells without any. Passing ``state=None`` starts from
``initial_state``. Running a sequence in pieces with the state carried (and the extras replayed)
equals running it whole.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .validation import check_positive_int, check_tensor

State = dict[str, torch.Tensor]


class MemoryCell(nn.Module):
    """Base class: input checks, the optional-extras return convention, and state plumbing."""

    #: the per-step extras this cell accepts (adapters pass only these; SHM: θ replay and generator)
    extra_inputs: tuple[str, ...] = ()
    #: whether the cell draws a table row per step (returned as ``theta_indices``, replayable)
    draws_rows: bool = False

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.output_size = check_positive_int("output_size", output_size)

    # -- to implement ----------------------------------------------------------------------
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each state tensor without the batch dimension."""
        raise NotImplementedError

    def _run(self, x: torch.Tensor, state: State, **extras: Any) -> tuple[torch.Tensor, State, State]:
        """x [B,T,D], validated state -> (y [B,T,O], new state, extras_out)."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def select_extras(self, **candidates: Any) -> dict[str, Any]:
        """The ``candidates`` this cell accepts (``extra_inputs``) and that are not None."""
        return {k: v for k, v in candidates.items() if k in self.extra_inputs and v is not None}

    def reseed(self, seed: int) -> None:
        """Restart the cell's own random stream from ``seed`` (no-op for cells that draw nothing)."""

    def random_state(self) -> torch.Tensor | None:
        """The state of the cell's own random stream (a uint8 tensor), None if it draws nothing."""
        return None

    def set_random_state(self, state: torch.Tensor) -> None:
        """Continue the cell's own random stream from ``random_state()``'s output."""
        raise ValueError(f"{type(self).__name__} has no random stream to restore")

    @torch.no_grad()
    def trace(self, x: torch.Tensor, state: State | None = None, **extras: Any) -> dict[str, torch.Tensor]:
        """What the memory held after every step of x [B,T,D], for inspection and drawing.

        Returns ``{"memory": [B,T,*S]}``, the cell's first state tensor (shape S) after each step
        (GRU / LSTM: h_t [B,T,H]). Cells with more to show override it (SHM adds C_t, U_t, ...).
        ValueError for a cell without state (nothing to draw).
        """
        shapes = self.state_shapes()
        if not shapes:
            raise ValueError(f"{type(self).__name__} has no state: there is no memory to trace")
        check_tensor("x", x, (None, None, self.input_size), "B,T,D")
        key = next(iter(shapes))
        state = self.initial_state(x.shape[0], x.device) if state is None else state
        frames = []
        for t in range(x.shape[1]):
            _, state = self(x[:, t : t + 1], state, **extras)
            frames.append(state[key])
        return {"memory": torch.stack(frames, dim=1)}

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros for every state tensor, [B, ...]."""
        check_positive_int("batch_size", batch_size)
        dtype = self._parameter_dtype()
        return {
            name: torch.zeros((batch_size, *shape), device=device, dtype=dtype)
            for name, shape in self.state_shapes().items()
        }

    def forward(
        self,
        x: torch.Tensor,
        state: State | None = None,
        *,
        return_extras: bool = False,
        **extras: Any,
    ):
        check_tensor("x", x, (None, None, self.input_size), "B,T,D")
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        self._check_state(state, x)
        y, new_state, extras_out = self._run(x, state, **extras)
        return (y, new_state, extras_out) if return_extras else (y, new_state)

    def _check_state(self, state: State, x: torch.Tensor) -> None:
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict of tensors, got {type(state).__name__}")
        expected = self.state_shapes()
        if set(state) != set(expected):
            raise ValueError(f"state must have keys {sorted(expected)}, got {sorted(state)}")
        for name, shape in expected.items():
            tensor = check_tensor(f"state[{name!r}]", state[name], (x.shape[0], *shape),
                                  ",".join(["B", *map(str, shape)]))
            if tensor.device != x.device or tensor.dtype != x.dtype:
                raise ValueError(
                    f"state[{name!r}] is {tensor.dtype} on {tensor.device} but x is {x.dtype} on {x.device}"
                )

    def _parameter_dtype(self) -> torch.dtype:
        for parameter in self.parameters():
            return parameter.dtype
        return torch.get_default_dtype()
