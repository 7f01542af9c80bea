"""Baseline memories behind the same interface as SHM: GRU, LSTM and a memoryless MLP.

Dimension letters: B batch, T time, D input width, H hidden size, O output width.
Each maps x [B,T,D] to y [B,T,O] through LayerNorm(x) → core → Linear(H→O), so that the only
difference from SHM is the core:

- GRU:  h_t = GRU(x̂_t, h_{t-1})                       state {"h": [B,H]}
- LSTM: (h_t, c_t) = LSTM(x̂_t, (h_{t-1}, c_{t-1}))    state {"h": [B,H], "c": [B,H]}
- MLP:  h_t = relu(W x̂_t + b), no state                state {}
"""

from __future__ import annotations

import torch
from torch import nn

from .base import MemoryCell, State
from .validation import check_positive_int


class GRUCell(MemoryCell):
    """GRU memory (``torch.nn.GRU``, batch-first). ``state = {"h": [B,H]}``."""


    def __init__(self, input_size: int, output_size: int, hidden_size: int) -> None:
        super().__init__(input_size, output_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.norm = nn.LayerNorm(input_size)
        self.core = nn.GRU(input_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"h": (self.hidden_size,)}

    def _run(self, x, state: State):
        hidden, h = self.core(self.norm(x), state["h"].unsqueeze(0).contiguous())
        return self.out(hidden), {"h": h.squeeze(0)}, {}


class LSTMCell(MemoryCell):
    """LSTM memory (``torch.nn.LSTM``, batch-first). ``state = {"h": [B,H], "c": [B,H]}``."""


    def __init__(self, input_size: int, output_size: int, hidden_size: int) -> None:
        super().__init__(input_size, output_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.norm = nn.LayerNorm(input_size)
        self.core = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"h": (self.hidden_size,), "c": (self.hidden_size,)}

    def _run(self, x, state: State):
        h0 = state["h"].unsqueeze(0).contiguous()
        c0 = state["c"].unsqueeze(0).contiguous()
        hidden, (h, c) = self.core(self.norm(x), (h0, c0))
        return self.out(hidden), {"h": h.squeeze(0), "c": c.squeeze(0)}, {}


class MLPCell(MemoryCell):
    """Memoryless baseline: every step sees only its own input. ``state = {}``."""


    def __init__(self, input_size: int, output_size: int, hidden_size: int) -> None:
        super().__init__(input_size, output_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.norm = nn.LayerNorm(input_size)
        self.core = nn.Linear(input_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def _run(self, x, state: State):
        return self.out(torch.relu(self.core(self.norm(x)))), {}, {}
