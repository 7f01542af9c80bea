"""How close a timed run comes to the GPU's limits: work models and the GPUs' spec peaks.

Dimension letters: B batch, T time, D input width, H memory size, K chunk length, N = ⌈T/K⌉.

These are models, not counters: the useful arithmetic and the minimal memory traffic of SHM's
recurrence as ``rllib_shm/memory/kernels/triton_kernels.py`` computes it, divided by a measured time,
give the rate reached; divided by the device's peak (NVIDIA's spec figures below), the fraction of
its limit. The same model is applied to every SHM row (the torch loop does the same useful work
with far more traffic), so "FLOP/s" compares implementations of one computation.

Arithmetic per entry (i, j) of M per step, counting adds, multiplies, compares/selects, exp and
reciprocals as one operation each:

- forward 15: calibration C = 2σ(2θc) 10 (incl. 1 exp, 1 reciprocal), M ⊙ C + v k 3, read 2;
- backward 41: the chunk's recomputed forward 13, calibration and its slope again 13, then
  G += ∂r q 2, ∂Z 2, ∂v 2, ∂θ 2, ∂q 2, ∂k 2, ∂c 2, G ⊙ C 1.

So fwd + bwd ≈ 56·B·T·H² operations, 6 of them exp/reciprocal, which run on the special-function
units at 1/8 of the FP32 FMA rate (16 vs 128 per SM and clock on Hopper): that ceiling is about
as low as the FP32 one. The cell's projections (6 Linear layers D→H, one H→O) add 2·B·T·D·(6H + O)
forward and about twice that backward.

FFM (``ffm_flops``; M trace size, C context, O output width) counts the useful work of its step
recurrence S_t = γ ⊙ S_{t−1} + x̃_t: one complex multiply-add per entry of the M×C trace and step
(8 real operations), forward, and twice that backward; plus its Linear layers (D→M twice, D→O
twice, 2MC→O), ≈ 3× forward. The chunked parallel form ``ffm_scan`` computes does about K/2 times
more recurrence arithmetic than this (every power γ^{n−k} of a chunk); it is not counted, so FFM's
rate is of the same work a step loop would do.

Memory traffic (bytes, HBM, fwd + bwd, s bytes per input element):

- forward: the five [B,T,H] inputs read, the reads written (6·B·T·H·s), M_0 read, M_T and the N
  chunk boundaries written ((N + 2)·B·H²·4);
- backward: the inputs read twice and ∂r once (10·B·T·H·s), the boundaries read (N·B·H²·4), every
  step's M_{t-1} written to and read back from scratch (2·B·T·H²·4: the dominant term unless it
  stays in L2), five gradients written and the three atomically summed ones zeroed (8·B·T·H·4),
  ∂M_0 written and ∂M_T read (2·B·H²·4).
"""

from __future__ import annotations

from dataclasses import dataclass

FORWARD_OPS_PER_ENTRY = 15
BACKWARD_OPS_PER_ENTRY = 41


@dataclass(frozen=True)
class Peak:
    """Spec figures of one GPU model (NVIDIA datasheets; not measured here)."""

    name: str
    fp32_flops: float  # non-tensor FP32, FLOP/s
    memory_bytes_per_s: float  # HBM bandwidth


# Matched against torch.cuda.get_device_name() in this order (first substring match wins).
PEAKS: tuple[tuple[str, Peak], ...] = (
    ("H100 PCIe", Peak("H100 PCIe (datasheet)", 51e12, 2.0e12)),
    ("H100", Peak("H100 SXM5 (datasheet)", 67e12, 3.35e12)),
    ("H200", Peak("H200 SXM (datasheet)", 67e12, 4.8e12)),
)


def peak_for(device_name: str) -> Peak | None:
    """The spec peak of a GPU by its torch name (e.g. 'NVIDIA H100 80GB HBM3'), or None if unknown.

    Variants whose figures differ and are not listed (H100 NVL, H200 NVL) are not guessed.
    """
    if "NVL" in device_name:
        return None
    for needle, peak in PEAKS:
        if needle in device_name:
            return peak
    return None


def _check(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def scan_ops(batch: int, steps: int, size: int) -> int:
    """Arithmetic operations of SHM's recurrence, forward + backward (model above)."""
    _check(batch=batch, steps=steps, size=size)
    return (FORWARD_OPS_PER_ENTRY + BACKWARD_OPS_PER_ENTRY) * batch * steps * size * size


def projection_flops(batch: int, steps: int, input_size: int, size: int, output_size: int) -> int:
    """The SHM cell's Linear layers, forward + backward (≈ 3× forward)."""
    _check(batch=batch, steps=steps, input_size=input_size, size=size, output_size=output_size)
    return 3 * 2 * batch * steps * input_size * (6 * size + output_size)


def rnn_flops(batch: int, steps: int, input_size: int, hidden: int, gates: int) -> int:
    """A GRU (3 gates) or LSTM (4 gates) layer's matrix products, forward + backward (≈ 3× forward)."""
    _check(batch=batch, steps=steps, input_size=input_size, hidden=hidden, gates=gates)
    return 3 * 2 * gates * batch * steps * hidden * (input_size + hidden)


def ffm_flops(batch: int, steps: int, input_size: int, trace: int, context: int, output_size: int) -> int:
    """FFM's step recurrence and Linear layers, forward + backward (≈ 3× forward; model above)."""
    _check(batch=batch, steps=steps, input_size=input_size, trace=trace, context=context, output_size=output_size)
    recurrence = 8 * batch * steps * trace * context
    linear = 2 * batch * steps * (2 * input_size * trace + 2 * input_size * output_size
                                  + 2 * trace * context * output_size)
    return 3 * (recurrence + linear)


def scan_bytes(batch: int, steps: int, size: int, chunk: int, element_bytes: int = 4) -> int:
    """Minimal HBM traffic of the Triton scan, forward + backward (model above)."""
    _check(batch=batch, steps=steps, size=size, chunk=chunk, element_bytes=element_bytes)
    vectors = batch * steps * size
    matrices = batch * size * size
    boundaries = -(-steps // chunk)
    forward = 6 * vectors * element_bytes + (boundaries + 2) * matrices * 4
    backward = (10 * vectors * element_bytes + boundaries * matrices * 4 + 2 * vectors * size * 4
                + 8 * vectors * 4 + 2 * matrices * 4)
    return forward + backward


def fraction(amount: float, seconds: float, peak_per_s: float | None) -> float | None:
    """amount / seconds / peak (None when the peak is unknown)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    return None if peak_per_s is None else amount / seconds / peak_per_s
