"""Stable Hadamard Memory (SHM) cell, with the calibration ablations of the paper.

Dimension letters: B batch, T time, D input width, H memory size, L θ-table rows, O output width.

For every step t, with x̂_t = LayerNorm(x_t) [B,T,D]:

    k_t = relu(W_k x̂_t) / (1e-5 + Σ_H relu(W_k x̂_t))        [B,T,H]  non-negative, L1-normalised
    q_t = relu(W_q x̂_t) / (1e-5 + Σ_H relu(W_q x̂_t))        [B,T,H]
    v_t = W_v x̂_t,   η_t = sigmoid(W_η x̂_t),   c_t = W_c x̂_t  [B,T,H], [B,T,1], [B,T,H]
    C_t = 1 + tanh(θ_t ⊗ c_t)                                 [B,T,H,H]  entries in (0, 2)
    U_t = η_t v_t ⊗ k_t                                       [B,T,H,H]
    M_t = M_{t-1} ⊙ C_t + U_t                                 [B,H,H]    M_0 = 0
    y_t = W_o (M_t q_t + W_s x̂_t + b_s) + b_o                 [B,T,O]

θ_t = Θ[l_t] with Θ a learned [L,H] table (Xavier-uniform). ``theta_mode``:

- ``random`` (paper): l_t ~ Uniform{0..L−1}, one draw per batch element and step, from an
  explicit ``torch.Generator`` (the cell's own, seeded by ``seed``, unless one is passed).
- ``fixed`` (what the reference code effectively ran: its draw was always 0): l_t = 0.

The drawn indices are returned as ``extras_out["theta_indices"]`` [B,T] (int64) and, passed back
as ``theta_indices=``, replay the same θ_t exactly (PPO must learn on the memory trajectory
that chose the actions). In ``eval()`` mode, ``eval_theta`` selects the behaviour:

- ``sample``: draw as in training (what the reference code does at evaluation).
- ``expected``: deterministic; C_t = E_l[1 + tanh(Θ[l] ⊗ c_t)] = 1 + (1/L) Σ_l tanh(Θ[l] ⊗ c_t),
  the calibration averaged over the table (still in (0, 2)); no indices are returned.
- passing ``theta_indices`` always replays, in either mode.

``evaluation=True`` / ``False`` (a per-call extra) overrides ``self.training`` for this choice, so an
RLlib module can act deterministically without switching the whole module to ``eval()``.

``calibration`` variants (paper Fig. 3a):

- ``shm``: C_t = 1 + tanh(θ_t ⊗ c_t), θ_t from the table (above).
- ``none``: C_t = 1 (linear attention / fast weights).
- ``fixed_matrix``: C = 1 + tanh(W_C), one learned input-independent [H,H] matrix.
- ``random_matrix``: C_t = 1 + tanh(R[l_t]), R a fixed (not learned) N(0, 1) buffer [L,H,H],
  l_t drawn and replayed like θ's rows.
- ``neural_theta``: θ_t = W_θ x̂_t, a network of the input instead of a table draw.

``shm``, ``none`` and ``neural_theta`` run the fused recurrence (``shm_scan``) that never
materialises [B,T,H,H]; ``fixed_matrix`` and ``random_matrix`` run ``table_scan`` (C_t = table[l_t]
with the [L,H,H] table 1 + tanh(W_C) or 1 + tanh(R)), fused as well on the compiled CPU backend.
``memory_clamp`` (M_t ← clamp(M_t, −c, c)) is fused on the compiled backend too; the torch backend
runs clamped cells and ``table_scan`` through the general ``hadamard_scan`` (O(B·T·H²) memory for
random matrices and clamps), and so does the ``expected`` evaluation of ``shm`` (an average over
the table that no single θ_t reproduces).

Two options that are not the paper's (off by default), for the one-factor studies of why SHM
learns short-term state slowly (``docs/memory-length.md``):

- ``key_query="signed"``: k_t = W_k x̂_t / (1e-5 + Σ_H |W_k x̂_t|), q_t likewise: signed keys and
  queries, still L1-normalised, so ‖U_t‖ keeps the paper's bound (|k|₁ ≤ 1). The paper's ``relu``
  makes every read a non-negative mixture of the memory's columns.
- ``recency=w`` (w ≥ 2), the recency path: the cell sees x̃_t = Σ_{j<w} a_j ⊙ x̂_{t−j} in place of
  x̂_t, a causal depthwise convolution of width w (a_j [D] learned; a_0 = 1 and the rest 0 at
  initialisation, so a new cell computes what the paper's does). It is the short convolution of
  Mamba and GLA / DeltaNet (flash-linear-attention's ``ShortConvolution``) without its activation.
  The last w − 1 inputs x̂ are state: ``state["recent"]`` [B, w−1, D], zeros at the start.

Either option runs the general path (the compiled acting kernel assumes the paper's form).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .base import MemoryCell, State
from .kernels import cpu_kernel
from .kernels.backend import select_backend
from .kernels.fused import shm_scan, table_scan
from .scan import hadamard_scan
from .stacked_linear import StackedLinear
from .validation import check_choice, check_clamp, check_positive_int, check_recency, check_tensor

THETA_MODES = ("random", "fixed")
CALIBRATIONS = ("shm", "none", "fixed_matrix", "random_matrix", "neural_theta")
KEY_QUERY = ("relu", "signed")
EVAL_THETA = ("sample", "expected")
_INDEXED = ("shm", "random_matrix")  # calibrations that draw a row per step


def _l1_relu(z: torch.Tensor) -> torch.Tensor:
    z = torch.relu(z)
    return z / (1e-5 + z.sum(dim=-1, keepdim=True))


def _l1_signed(z: torch.Tensor) -> torch.Tensor:
    return z / (1e-5 + z.abs().sum(dim=-1, keepdim=True))


class Projections(NamedTuple):
    """Everything the cell computes from x̂_t before the recurrence, each [B,T,H] (x̂: [B,T,D])."""

    x_hat: torch.Tensor  # LayerNorm(x), or x̃ (its recency mix) where ``recency`` is on
    key: torch.Tensor  # k_t
    query: torch.Tensor  # q_t
    value: torch.Tensor  # η_t v_t
    calib: torch.Tensor  # c_t
    shortcut: torch.Tensor  # W_s x̂_t + b_s
    theta: torch.Tensor | None  # θ_t = W_θ x̂_t (neural θ only)
    recent: torch.Tensor | None  # the last w − 1 inputs x̂ after x, [B,w−1,D] (``recency`` only)


class SHMCell(MemoryCell):
    """SHM: ``cell(x [B,T,D], {"memory": [B,H,H]}) -> (y [B,T,O], {"memory": [B,H,H]})``.

    Examples:
        >>> cell = SHMCell(input_size=8, output_size=16, mem_size=4)
        >>> y, state, extras = cell(torch.randn(2, 5, 8), return_extras=True)
        >>> y.shape, state["memory"].shape, extras["theta_indices"].shape
        (torch.Size([2, 5, 16]), torch.Size([2, 4, 4]), torch.Size([2, 5]))
    """

    extra_inputs = ("theta_indices", "generator", "evaluation")

    def __init__(
        self,
        input_size: int,
        output_size: int,
        mem_size: int,
        *,
        num_thetas: int = 128,
        theta_mode: str = "random",
        calibration: str = "shm",
        eval_theta: str = "sample",
        memory_clamp: float | None = None,
        chunk_size: int | None = None,
        seed: int = 0,
        key_query: str = "relu",
        recency: int = 0,
    ) -> None:
        super().__init__(input_size, output_size)
        self.mem_size = check_positive_int("mem_size", mem_size)
        self.num_thetas = check_positive_int("num_thetas", num_thetas)
        self.theta_mode = check_choice("theta_mode", theta_mode, THETA_MODES)
        self.calibration = check_choice("calibration", calibration, CALIBRATIONS)
        self.eval_theta = check_choice("eval_theta", eval_theta, EVAL_THETA)
        self.memory_clamp = check_clamp(memory_clamp)
        self.chunk_size = None if chunk_size is None else check_positive_int("chunk_size", chunk_size)
        self.key_query = check_choice("key_query", key_query, KEY_QUERY)
        self.recency = check_recency(recency)
        self.generator = torch.Generator().manual_seed(int(seed))

        size = self.mem_size
        self.norm = nn.LayerNorm(input_size)
        self.key = nn.Linear(input_size, size, bias=False)
        self.query = nn.Linear(input_size, size, bias=False)
        self.value = nn.Linear(input_size, size, bias=False)
        self.calib = nn.Linear(input_size, size, bias=False)
        self.eta = nn.Linear(input_size, 1, bias=False)
        self.shortcut = nn.Linear(input_size, size)
        self.out = nn.Linear(size, output_size)
        if self.recency:  # a_j [w,D]: a_0 = 1, the rest 0 (x̃_t = x̂_t at initialisation)
            weights = torch.zeros(self.recency, input_size)
            weights[0] = 1.0
            self.recency_weights = nn.Parameter(weights)
        self._stacked = StackedLinear()  # the input projections as one product (_input_layers)
        if calibration == "shm":
            self.thetas = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_thetas, size)))
        elif calibration == "neural_theta":
            self.theta_net = nn.Linear(input_size, size, bias=False)
        elif calibration == "fixed_matrix":
            self.calibration_logits = nn.Parameter(torch.zeros(size, size))
        elif calibration == "random_matrix":
            noise = torch.randn(num_thetas, size, size, generator=torch.Generator().manual_seed(int(seed)))
            self.register_buffer("random_logits", noise)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"memory": (self.mem_size, self.mem_size)}
        if self.recency:
            shapes["recent"] = (self.recency - 1, self.input_size)
        return shapes

    @property
    def draws_rows(self) -> bool:  # random θ rows (shm) or random calibration matrices (random_matrix)
        return self.calibration in _INDEXED and self.theta_mode == "random"

    # -- θ row indices -----------------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """Restart the cell's own θ generator from ``seed``."""
        self.generator.manual_seed(int(seed))

    def random_state(self) -> torch.Tensor:
        """The θ generator's state (uint8 tensor), for checkpoints of a run's θ stream."""
        return self.generator.get_state()

    def set_random_state(self, state: torch.Tensor) -> None:
        """Continue the θ stream from ``random_state()``'s output."""
        self.generator.set_state(torch.as_tensor(state, dtype=torch.uint8).clone())

    def draw_indices(self, batch: int, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """l [B,T] int64: Uniform{0..L−1} in ``random`` mode, zeros in ``fixed`` mode (on CPU)."""
        if self.theta_mode == "fixed":
            return torch.zeros(batch, steps, dtype=torch.long)
        return torch.randint(0, self.num_thetas, (batch, steps), generator=generator or self.generator)

    def _indices(self, x, theta_indices, generator, evaluation=None) -> torch.Tensor | None:
        """Indices to use: replayed, drawn, or None for the deterministic ``expected`` mode.

        ``evaluation`` (default: ``not self.training``) selects the ``eval_theta`` behaviour.
        """
        batch, steps = x.shape[:2]
        if theta_indices is not None:
            check_tensor("theta_indices", theta_indices, (batch, steps), "B,T", floating=False)
            if theta_indices.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"theta_indices must be an integer tensor, got dtype {theta_indices.dtype}")
            checkable = theta_indices.numel() and not torch.compiler.is_exporting()  # an export can't branch on values
            if checkable and (theta_indices.min() < 0 or theta_indices.max() >= self.num_thetas):
                raise ValueError(
                    f"theta_indices must lie in [0, {self.num_thetas - 1}], got values in "
                    f"[{int(theta_indices.min())}, {int(theta_indices.max())}]"
                )
            return theta_indices.to(device=x.device, dtype=torch.long)
        evaluation = (not self.training) if evaluation is None else evaluation
        if evaluation and self.eval_theta == "expected":
            return None
        return self.draw_indices(batch, steps, generator).to(x.device)

    # -- the cell ----------------------------------------------------------------------------
    def _input_layers(self) -> tuple[nn.Linear, ...]:
        """W_k, W_q, W_v, W_η, W_c, W_s (+ W_θ): their outputs side by side are H, H, H, 1, H, H (+ H) wide."""
        modules = self._modules  # (direct: attribute lookups through nn.Module cost µs per acting step)
        names = ("key", "query", "value", "eta", "calib", "shortcut") + (
            ("theta_net",) if self.calibration == "neural_theta" else ())
        return tuple(modules[name] for name in names)

    def _recency_mix(self, x_hat: torch.Tensor, recent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x̃_t = Σ_{j<w} a_j ⊙ x̂_{t−j} [B,T,D] and the new ``recent`` state (the last w − 1 x̂) [B,w−1,D]."""
        window, steps = self.recency, x_hat.shape[1]
        padded = torch.cat([recent, x_hat], dim=1)  # [B, w−1+T, D]: x̂_{t−w+1} … x̂_{T−1}
        weights = self.recency_weights
        mixed = sum(weights[j] * padded[:, window - 1 - j: window - 1 - j + steps] for j in range(window))
        return mixed, padded[:, steps:]

    def _projections(self, x: torch.Tensor, recent: torch.Tensor | None = None) -> Projections:
        x_hat, recent_after = self.norm(x), None
        if self.recency:
            x_hat, recent_after = self._recency_mix(x_hat, recent)
        size = self.mem_size
        stacked = self._stacked(x_hat, self._input_layers())
        # one split (its backward is one concatenation; slicing would allocate a zero-filled
        # gradient of the whole stacked output per slice)
        widths = [2 * size, size, 1, size, size] + ([size] if self.calibration == "neural_theta" else [])
        key_query, value, eta, calib, shortcut, *theta = stacked.split(widths, dim=-1)
        normalise = _l1_relu if self.key_query == "relu" else _l1_signed
        key_query = normalise(key_query.unflatten(-1, (2, size)))  # k and q in one pass
        value = torch.sigmoid(eta) * value  # η_t v_t
        return Projections(x_hat, key_query[..., 0, :], key_query[..., 1, :], value, calib, shortcut,
                           theta[0] if theta else None, recent_after)

    def _act(self, x: torch.Tensor, memory0: torch.Tensor, indices: torch.Tensor | None):
        """Acting without autograd on the compiled backend: y [B,T,O], M_T; None where it does not apply.

        Equals ``_run``'s general path: one stacked product, then the projections' nonlinearities,
        θ_t and the recurrence in one native call (``cpu_kernel.act``), then W_o.
        """
        if (torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.compiler.is_exporting()
                or self.key_query != "relu" or self.recency
                or self.calibration not in ("shm", "none", "neural_theta")
                or (self.calibration == "shm" and indices is None)
                or select_backend(x.device, x.dtype) != "compiled"):
            return None
        stacked = self._stacked(self.norm(x), self._input_layers()).contiguous()
        thetas = self.thetas if self.calibration == "shm" else None
        offset = 5 * self.mem_size + 1 if self.calibration == "neural_theta" else 0
        rows = indices.contiguous() if thetas is not None else None
        reads, memory = cpu_kernel.act(stacked, thetas.contiguous() if thetas is not None else None, rows, offset,
                                       memory0.contiguous(), self.memory_clamp)
        return self.out(reads), memory

    def calibrations(self, x_hat: torch.Tensor, indices: torch.Tensor | None) -> torch.Tensor:
        """C [B,T,H,H] materialised (for the general path, inspection and drawing)."""
        batch, steps = x_hat.shape[:2]
        size = self.mem_size
        if self.calibration == "none":
            return x_hat.new_ones(1, 1, 1, 1).expand(batch, steps, size, size)
        if self.calibration == "fixed_matrix":
            return (1 + torch.tanh(self.calibration_logits)).expand(batch, steps, size, size)
        if self.calibration == "random_matrix":
            if indices is None:  # expected over the table
                return (1 + torch.tanh(self.random_logits).mean(0)).expand(batch, steps, size, size)
            return 1 + torch.tanh(self.random_logits[indices])
        calib = self.calib(x_hat)
        if self.calibration == "neural_theta":
            theta = self.theta_net(x_hat)
        elif indices is None:  # expected: mean over the L rows, one step at a time (B·L·H² memory)
            rows = [torch.tanh(self.thetas[None, :, :, None] * c_t[:, None, None, :]).mean(1)
                    for c_t in calib.unbind(1)]
            return 1 + torch.stack(rows, dim=1)
        else:
            theta = self.thetas[indices]
        return 1 + torch.tanh(theta.unsqueeze(-1) * calib.unsqueeze(-2))

    def _table(self, indices: torch.Tensor | None, batch: int, steps: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """fixed / random matrix as a calibration table [L,H,H] and the rows l [B,T] to read from it."""
        if self.calibration == "fixed_matrix":
            table = (1 + torch.tanh(self.calibration_logits))[None]
        else:  # random_matrix: R is a fixed buffer, so 1 + tanh(R) is cached until it changes
            key = (self.random_logits.data_ptr(), self.random_logits._version, self.random_logits.dtype)
            cached = getattr(self, "_random_table", None)
            if cached is None or cached[0] != key:
                cached = (key, 1 + torch.tanh(self.random_logits))
                self._random_table = cached
            table = cached[1] if indices is not None else cached[1].mean(0, keepdim=True)
        if indices is None or self.calibration == "fixed_matrix":
            indices = torch.zeros(batch, steps, dtype=torch.long, device=device)
        return table, indices

    def _run(self, x, state: State, theta_indices=None, generator=None, evaluation=None):
        indices = (
            self._indices(x, theta_indices, generator, evaluation) if self.calibration in _INDEXED else None
        )
        memory0, clamp = state["memory"], self.memory_clamp
        acted = self._act(x, memory0, indices)
        if acted is not None:
            return acted[0], {"memory": acted[1]}, {"theta_indices": indices} if indices is not None else {}
        p = self._projections(x, state.get("recent"))  # by name: the tuple grows with the cell's options
        if self.calibration in ("fixed_matrix", "random_matrix"):
            table, rows = self._table(indices, x.shape[0], x.shape[1], x.device)
            reads, memory = table_scan(table, rows, p.value, p.key, p.query, memory0, self.chunk_size,
                                       memory_clamp=clamp)
        elif self.calibration == "shm" and indices is None:  # expected θ: averaged C, materialised
            update = p.value.unsqueeze(-1) * p.key.unsqueeze(-2)
            reads, memory = hadamard_scan(self.calibrations(p.x_hat, indices), update, p.query, memory0, clamp)
        else:
            if self.calibration == "none":
                theta = torch.zeros_like(p.calib)  # 2·sigmoid(0) = 1: C_t = 1 exactly
            elif self.calibration == "neural_theta":
                theta = p.theta
            else:
                theta = self.thetas[indices]
            reads, memory = shm_scan(theta, p.calib, p.value, p.key, p.query, memory0, self.chunk_size,
                                     memory_clamp=clamp)
        y = self.out(reads + p.shortcut)
        extras_out = {"theta_indices": indices} if indices is not None else {}
        return y, {"memory": memory, **({"recent": p.recent} if self.recency else {})}, extras_out

    @torch.no_grad()
    def trace(self, x: torch.Tensor, state: State | None = None, theta_indices=None, generator=None,
              evaluation=None):
        """Everything the memory did over x [B,T,D], materialised, for inspection and drawing.

        Returns a dict: ``memory`` M_t [B,T,H,H], ``calibration`` C_t [B,T,H,H], ``update`` U_t
        [B,T,H,H], ``reads`` [B,T,H], ``y`` [B,T,O], ``theta_indices`` [B,T] or None.
        """
        check_tensor("x", x, (None, None, self.input_size), "B,T,D")
        if x.shape[1] < 1:
            raise ValueError(f"trace needs at least one step, got x of shape {tuple(x.shape)}")
        state = self.initial_state(x.shape[0], x.device) if state is None else state
        self._check_state(state, x)
        indices = (
            self._indices(x, theta_indices, generator, evaluation) if self.calibration in _INDEXED else None
        )
        p = self._projections(x, state.get("recent"))
        calibration = self.calibrations(p.x_hat, indices)
        update = p.value.unsqueeze(-1) * p.key.unsqueeze(-2)
        memory, memories = state["memory"], []
        for c_t, u_t in zip(calibration.unbind(1), update.unbind(1), strict=True):
            memory = memory * c_t + u_t
            if self.memory_clamp is not None:
                memory = memory.clamp(-self.memory_clamp, self.memory_clamp)
            memories.append(memory)
        memories = torch.stack(memories, 1)
        reads = torch.einsum("btij,btj->bti", memories, p.query)
        y = self.out(reads + p.shortcut)
        return {"memory": memories, "calibration": calibration.contiguous(), "update": update,
                "reads": reads, "y": y, "theta_indices": indices}
