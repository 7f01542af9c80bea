"""Several ``nn.Linear`` layers on one input as one matrix product.

Dimension letters: D input width, N_i each layer's output width.

    [y_1 | y_2 | ...] = x [W_1; W_2; ...]ᵀ + [b_1 | b_2 | ...]      (b_i = 0 for a layer without bias)

One ``addmm`` instead of one per layer: on the CPU at small batches (acting, one step per env step)
the per-call overhead of each small product costs more than its arithmetic. Gradients flow to each
layer's own parameters through ``torch.cat``. Without autograd (acting) the stacked weight is kept
and rebuilt only when a parameter changes (its storage or in-place version counter), so an
optimiser step or ``.to()`` is always seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class StackedLinear:
    """``stack(x, layers)`` -> [..., ΣN_i], the layers' outputs side by side in ``layers``' order."""

    def __init__(self) -> None:
        self._cached: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def _parameters(layers: Sequence[nn.Linear]) -> list[torch.Tensor]:
        return [p for layer in layers for p in layer._parameters.values() if p is not None]  # weight, bias

    @staticmethod
    def _stack(layers: Sequence[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor]:
        weight = torch.cat([layer.weight for layer in layers])
        biases = [layer.bias if layer.bias is not None else weight.new_zeros(layer.out_features) for layer in layers]
        return weight, torch.cat(biases)

    def __call__(self, x: torch.Tensor, layers: Sequence[nn.Linear]) -> torch.Tensor:
        tracing = torch.compiler.is_compiling() or torch.compiler.is_exporting()
        if torch.is_grad_enabled() or tracing:
            weight, bias = self._stack(layers)
        else:
            key = tuple((id(p), p.data_ptr(), p._version, p.dtype) for p in self._parameters(layers))
            if self._cached is None or self._cached[0] != key:
                self._cached = (key, *self._stack(layers))
            _, weight, bias = self._cached
        return torch.nn.functional.linear(x, weight, bias)

    def __getstate__(self) -> dict:  # a pickled / deep-copied cell carries no cache
        return {"_cached": None}
