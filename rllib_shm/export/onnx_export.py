"""``export_onnx``: a checkpoint's acting step (``OneStepPolicy``) to an ONNX model plus a JSON
sidecar, checked once against the torch module with onnxruntime before it is reported.

The model's inputs: ``obs`` [B,*obs] (the env's raw observation and dtype; uint8 images are scaled
by 1/255 inside the graph), one input per state tensor (named as in the module's state, e.g.
``memory``, ``step``, ``pi_h``), and with ``--theta sample`` one int64 θ row index [B] per trunk
that draws one (``theta_indices``, or ``pi_``/``vf_``-prefixed). Outputs: ``action_dist_inputs``
[B,A], ``greedy_action``, ``value`` [B] (PPO's V(h); SAC policies have none) and ``<state>_out``
for every state tensor. B is dynamic.
The sidecar (``policy.json`` beside ``policy.onnx``) lists all of that with shapes and dtypes, the
initial state, the action space, θ's mode and row counts, and the checkpoint and config it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rllib_shm.export.policy import OneStepPolicy, acting_module
from rllib_shm.export.runtime import SIDECAR_FORMAT, sidecar_path
from rllib_shm.files import publish, scratch_directory
from rllib_shm.runs.checkpoints import load_checkpoint
from rllib_shm.runs.outputs import check_new_file

NO_VALUE = ("none: a SAC policy's actor has no V(h); its critic, Q(h, a) on a trunk with its own recurrent "
            "state, is not part of the acting step")
BATCH = 2  # example batch for tracing; the exported batch dimension is dynamic


def check_output(output: Path) -> None:
    """A new ``.onnx`` file in an existing, writable directory, whose sidecar does not exist either."""
    if output.suffix != ".onnx":
        raise ValueError(f"--output {str(output)!r} must end in .onnx")
    check_new_file(output, "--output")
    check_new_file(sidecar_path(output), "--output's sidecar")


def space_description(space: gym.Space) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": space.low.tolist(), "high": space.high.tolist()}
    return {"type": type(space).__name__, "repr": str(space)}


def _tensor_entry(name: str, tensor: torch.Tensor | np.ndarray) -> dict[str, Any]:
    shape = list(tensor.shape[1:])
    dtype = str(tensor.dtype).removeprefix("torch.")
    return {"name": name, "shape": ["batch", *shape], "dtype": dtype}


def example_inputs(policy: OneStepPolicy, observation_space: gym.Space, seed: int = 0):
    """(obs, *states, *thetas) for a batch of ``BATCH``: observations sampled from the space."""
    observation_space.seed(seed)
    obs = torch.as_tensor(np.stack([observation_space.sample() for _ in range(BATCH)]))
    states = [tensor for tensor in policy.module.initial_state(BATCH).values()]
    rows = {name: getattr(trunk.memory, "num_thetas", 1) for name, trunk in _theta_trunks(policy)}
    thetas = [torch.arange(BATCH, dtype=torch.long) % rows[name] for name in policy.theta_names]
    return (obs, *states, *thetas)


def _theta_trunks(policy: OneStepPolicy):
    module = policy.module
    trunks = {"": module.trunk} if module.vf_trunk is None else {"pi_": module.trunk, "vf_": module.vf_trunk}
    return [(prefix + "theta_indices", trunk) for prefix, trunk in trunks.items()]


def export_onnx(checkpoint: Path, output: Path, *, theta: str = "expected",
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``checkpoint``'s acting step to ``output`` (+ sidecar); returns the sidecar."""
    check_output(output)
    loaded = load_checkpoint(checkpoint)
    module = acting_module(loaded.module, theta)
    policy = OneStepPolicy(module, theta).eval()
    inputs = example_inputs(policy, module.observation_space)
    input_names = ["obs", *policy.state_names, *policy.theta_names]
    output_names = policy.output_names
    batch = torch.export.Dim("batch", min=1)
    dynamic_shapes = ({0: batch}, tuple({0: batch} for _ in inputs[1:]))  # forward(obs, *inputs)
    with torch.no_grad():
        expected = policy(*inputs)
    rows = dict(_theta_trunks(policy))
    initial = module.get_initial_state()
    meta = {
        "format": SIDECAR_FORMAT,
        "model": output.name,
        "inputs": [_tensor_entry(name, tensor) for name, tensor in zip(input_names, inputs, strict=True)],
        "outputs": [_tensor_entry(name, tensor) for name, tensor in zip(output_names, expected, strict=True)],
        "observation": {**_tensor_entry("obs", inputs[0]),
                        "preprocessing": "uint8 observations are scaled by 1/255 inside the graph; feed raw "
                                         "observations" if module.observation_space.dtype == np.uint8 else
                                         "none: feed raw observations"},
        "state": [{"name": name, "shape": list(value.shape),
                   "initial": None if not np.any(value) else value.tolist()} for name, value in initial.items()],
        "theta": {"mode": theta,
                  "inputs": [{"name": name, "rows": int(rows[name].memory.num_thetas)} for name in policy.theta_names]},
        "action_space": space_description(module.action_space),
        "observation_space": space_description(module.observation_space),
        "greedy_action": "argmax per categorical; Box: the Gaussian mean unsquashed to [low, high] and clipped",
        "value": "V(h) of the value head" if policy.has_value else NO_VALUE,
        "memory": module.memory_kind,
        "shared_trunk": module.module_config.shared_trunk,
        "checkpoint": str(Path(checkpoint).resolve()),
        "config": loaded.config.to_dict() if loaded.config else None,
        "not_exported": ["training (losses, optimiser, RLlib connectors)",
                         "exploration beyond the distribution inputs (sample from action_dist_inputs yourself)",
                         *([] if policy.has_value else [f"value: {NO_VALUE}"])],
    }
    # Written under temporary names and checked with onnxruntime first: a failed export leaves nothing;
    # the model and its sidecar are moved in together, never over files another export wrote meanwhile.
    with scratch_directory(output.parent, "export") as scratch:
        model = scratch / output.name
        with torch.no_grad():
            torch.onnx.export(policy, inputs, str(model), dynamo=True, input_names=input_names,
                              output_names=output_names, dynamic_shapes=dynamic_shapes, optimize=True,
                              external_data=False, verbose=False)  # one self-contained file
        sidecar_path(model).write_text(json.dumps(meta, indent=2))
        difference = _check_with_onnxruntime(model, meta, inputs, expected)
        publish({sidecar_path(model): sidecar_path(output), model: output}, flag="--output")
    log(f"exported {checkpoint} ({module.memory_kind}, θ {theta}) to {output} "
        f"({output.stat().st_size / 2**20:.2f} MiB) and {sidecar_path(output).name}; onnxruntime matches torch "
        f"to {difference:.1e}")
    return meta


def _check_with_onnxruntime(output: Path, meta: dict, inputs, expected) -> float:
    """Run the exported model on the tracing inputs; the largest difference to torch's outputs."""
    from rllib_shm.export.runtime import OnnxPolicy

    policy = OnnxPolicy(output)
    names = [entry["name"] for entry in meta["inputs"]]
    feeds = {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)}
    got = policy.session.run(policy.output_names, feeds)
    difference = max(float(np.max(np.abs(np.asarray(g, np.float64) - e.numpy().astype(np.float64))))
                     if e.numel() else 0.0 for g, e in zip(got, expected, strict=True))
    if not difference < 1e-4:
        raise RuntimeError(f"the exported model differs from the torch module by {difference:.3g}; "
                           f"the export {output} is not usable")
    return difference
