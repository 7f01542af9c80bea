"""Observation encoders and the positional embeddings of the memory RLModule (torch).

Dimension letters: B batch, T time, F flat observation width, E encoder output width.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp_encoder(input_size: int, hiddens: tuple[int, ...], norm_affine: bool = True) -> nn.Sequential:
    """[B,T,F] → [B,T,E]: Linear + LayerNorm, then Linear + ReLU for each further width
    (the SHM paper's POPGym feature map: Linear(F→128) + LayerNorm, Linear(128→64) + ReLU).
    ``norm_affine=False``: the LayerNorm has no learned scale and shift (the official agent's)."""
    layers: list[nn.Module] = [nn.Linear(input_size, hiddens[0]),
                               nn.LayerNorm(hiddens[0], elementwise_affine=norm_affine)]
    for width_in, width_out in zip(hiddens[:-1], hiddens[1:], strict=True):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return nn.Sequential(*layers)


class CNNEncoder(nn.Module):
    """[B,T,C·H·W] (or [B,T,C,H,W]) → [B,T,E]: two 3×3 convolutions (padding 1) and an MLP.

    Small on purpose: the memory tasks' images are tiny crops (Visual Match: 3×5×5).
    """

    def __init__(self, image_shape: tuple[int, int, int], hiddens: tuple[int, ...], norm_affine: bool = True) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.image_shape = image_shape
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()
        )
        self.head = mlp_encoder(32 * height * width, hiddens, norm_affine)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch, steps = obs.shape[:2]
        images = obs.reshape(batch * steps, *self.image_shape)
        return self.head(self.conv(images).reshape(batch, steps, -1))


def sine_embedding(positions: torch.Tensor, width: int, base: float = 10000.0) -> torch.Tensor:
    """Transformer sine/cosine embedding of time steps: positions [B,T] → [B,T,width].

    emb[..., 2i] = sin(p / base^(2i/width)), emb[..., 2i+1] = cos(p / base^(2i/width)).
    """
    half = (width + 1) // 2
    frequencies = torch.exp(
        -math.log(base) * torch.arange(half, device=positions.device, dtype=torch.float32) * 2 / width
    )
    angles = positions.float().unsqueeze(-1) * frequencies  # [B,T,half]
    embedding = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)  # [B,T,2·half]
    return embedding[..., :width]


OFFICIAL_BASE = 1024.0  # the official agent's sine base: popgym's positional_encoding(max_len = 1024, ·)


class MixedSineEmbedding(nn.Module):
    """The official SHM POPGym agent's positional embedding (popgym's ``BaseModel.apply_embedding``
    with ``embedding: sine``, ``scale_embedding``, ``embedding_mode: add``), x [B,T,W] → [B,T,W]:

        x ← x · (1 − s) + s · emb(p),   emb = ``sine_embedding(p, W, base=1024)``

    with one learned strength s (init 0.5), clamped in place to [0, 1] before every use as the
    official code does. The official table has max_len = 1024 rows; here emb is computed for any
    step p, equal to the table's rows where they exist.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.strength = nn.Parameter(torch.tensor([0.5]))

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():  # the official in-place clamp of the stored value (not traceable)
            self.strength.data.clamp_(0.0, 1.0)  # .data: outside autograd (no version bump), as the official code
        strength = self.strength.clamp(0.0, 1.0)  # the same value, traceable (ONNX export)
        embedding = sine_embedding(positions, self.width, base=OFFICIAL_BASE).to(x.dtype)
        return x * (1.0 - strength) + embedding * strength
