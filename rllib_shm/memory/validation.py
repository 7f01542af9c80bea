"""Argument checks shared by the memory math: every failure is a ``ValueError`` that names the
argument, what was given and what was expected."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int > 0, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_clamp(value: object, name: str = "memory_clamp") -> float | None:
    """Return ``value`` if it is None or a finite number > 0 (not a bool), else raise naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive finite number or None, got {value!r}")
    return value


def check_recency(value: object) -> int:
    """``recency``: 0 (off) or a convolution width w ≥ 2; ValueError naming the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value == 1:
        raise ValueError(f"recency must be 0 (off) or a window width ≥ 2 (an int), got {value!r}")
    return value


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value  # type: ignore[return-value]


def check_tensor(
    name: str,
    value: object,
    shape: Sequence[int | None],
    letters: str,
    *,
    floating: bool = True,
) -> torch.Tensor:
    """Check rank, shape (``None`` = any size) and dtype kind of one tensor.

    ``letters`` names the expected dimensions (e.g. ``"B,T,H,H"``) for the error message.
    """
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [{letters}], got {type(value).__name__}")
    if value.dim() != len(shape):
        raise ValueError(
            f"{name} must have rank {len(shape)} [{letters}], got shape {tuple(value.shape)}"
        )
    for actual, expected in zip(value.shape, shape, strict=True):
        if expected is not None and actual != expected:
            expected_str = ",".join("*" if s is None else str(s) for s in shape)
            raise ValueError(
                f"{name} must have shape [{letters}] = [{expected_str}], got {tuple(value.shape)}"
            )
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_same_dtype_device(**tensors: torch.Tensor) -> None:
    """All tensors share one dtype and one device; the message lists each one's."""
    items = list(tensors.items())
    dtypes = {t.dtype for _, t in items}
    devices = {t.device for _, t in items}
    if len(dtypes) > 1:
        detail = ", ".join(f"{n}={t.dtype}" for n, t in items)
        raise ValueError(f"all inputs must share one dtype, got {detail}")
    if len(devices) > 1:
        detail = ", ".join(f"{n}={t.device}" for n, t in items)
        raise ValueError(f"all inputs must be on one device, got {detail}")
