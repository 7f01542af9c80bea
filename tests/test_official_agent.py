"""The official SHM POPGym agent, as tune_configs/popgym_reference.yaml expresses it, has the
official code's structure: layers, widths and init statistics (thaihungle/SHM ``train_popgym.py``'s
``config_shm`` with popgym's ``BaseModel`` and ``SHMAgent``, read, not vendored; SHM.md §8).

Expected structure for Autoencode-Easy (raw observation one-hot F = 2 + 4, A = 4 actions, H = 128):

    feature_map   Linear(6, 128) [orthogonal] + LayerNorm(128, no affine)
    embedding     x(1 − s) + s·sine(p; base 1024, width 128), s = 0.5 learned
    pre           Linear(128, 64) [orthogonal] + ReLU
    SHM cell      LayerNorm(64) (affine), key/query/value/calibration Linear(64, H, no bias),
                  η Linear(64, 1, no bias), θ table (128, H) [Xavier], shortcut Linear(64, H),
                  out Linear(H, 1024) [PyTorch defaults: the cell is built after BaseModel's init]
    post          Linear(1024, 64) [orthogonal] + ReLU
    actor         Linear(64, 64) [orthogonal] → Linear(64, 4) [weights N(0, 0.01²)]
    critic        Linear(64, 64) [orthogonal] → Linear(64, 1) [weights N(0, 0.01²)]
"""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from rllib_shm.config.ppo import build_module
from rllib_shm.rllib import make_env
from rllib_shm.rllib.module import STEP
from rllib_shm.studies.search_space import trial_config
from rllib_shm.studies.study import load_study

REFERENCE = Path(__file__).parents[1] / "tune_configs" / "popgym_reference.yaml"
F, A, H = 6, 4, 128

# name in this project's module → (shape, init): the official agent's parameters, in its order
OFFICIAL = {
    "trunk.encoder.0.weight": ((128, F), "orthogonal"), "trunk.encoder.0.bias": ((128,), "default"),
    "trunk.mixed.strength": ((1,), "half"),
    "trunk.encoder.2.weight": ((64, 128), "orthogonal"), "trunk.encoder.2.bias": ((64,), "default"),
    "trunk.memory.norm.weight": ((64,), "ones"), "trunk.memory.norm.bias": ((64,), "zeros"),
    "trunk.memory.key.weight": ((H, 64), "default"), "trunk.memory.query.weight": ((H, 64), "default"),
    "trunk.memory.value.weight": ((H, 64), "default"), "trunk.memory.calib.weight": ((H, 64), "default"),
    "trunk.memory.eta.weight": ((1, 64), "default"), "trunk.memory.thetas": ((128, H), "xavier"),
    "trunk.memory.shortcut.weight": ((H, 64), "default"), "trunk.memory.shortcut.bias": ((H,), "default"),
    "trunk.memory.out.weight": ((1024, H), "default"), "trunk.memory.out.bias": ((1024,), "default"),
    "trunk.post.0.weight": ((64, 1024), "orthogonal"), "trunk.post.0.bias": ((64,), "default"),
    "pi_pre.weight": ((64, 64), "orthogonal"), "pi_pre.bias": ((64,), "default"),
    "pi_head.weight": ((A, 64), "normal_0.01"), "pi_head.bias": ((A,), "default"),
    "vf_pre.weight": ((64, 64), "orthogonal"), "vf_pre.bias": ((64,), "default"),
    "vf_head.weight": ((1, 64), "normal_0.01"), "vf_head.bias": ((1,), "default"),
}


def official_module(seed: int = 0):
    study = load_study(REFERENCE)
    config = trial_config(study.base, {"variant": "AutoencodeEasy", "run.seed": 0})
    env = make_env(config.env.id, config.env.config)
    torch.manual_seed(seed)
    return config, build_module(config, env.observation_space, env.action_space)


def is_orthogonal(weight: torch.Tensor) -> bool:
    rows, cols = weight.shape
    gram = weight @ weight.T if rows <= cols else weight.T @ weight
    return torch.allclose(gram, torch.eye(min(rows, cols)), atol=1e-5)


def test_the_reference_config_is_the_official_setup():
    config, _ = official_module()
    assert config.env.config == {"wrappers": "raw"}  # raw observations, no previous-action wrapper
    assert config.module.memory.theta_mode == "fixed"  # the official code always used θ row 0
    algo = config.algo
    assert algo.whole_episodes  # complete episodes, BPTT over each whole episode from M₀ = 0
    assert (algo.lr, algo.num_epochs, algo.lambda_, algo.clip_param, algo.vf_loss_coeff, algo.entropy_coeff,
            algo.grad_clip, algo.kl_coeff, algo.kl_target, algo.train_batch_size, algo.minibatch_size) == (
        5e-5, 30, 1.0, 0.3, 1.0, 0.0, None, 0.2, 0.01, 65536, 8192)


def test_layers_and_widths_are_the_official_agents():
    _, module = official_module()
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert shapes == {name: shape for name, (shape, _) in OFFICIAL.items()}
    assert sum(math.prod(shape) for shape, _ in OFFICIAL.values()) == 273_158
    encoder = module.trunk.encoder
    assert [type(layer) for layer in encoder] == [nn.Linear, nn.LayerNorm, nn.Linear, nn.ReLU]
    assert not encoder[1].elementwise_affine  # popgym's feature map: LayerNorm without affine
    assert [type(layer) for layer in module.trunk.post] == [nn.Linear, nn.ReLU]
    assert module.vf_trunk is None  # one trunk for actor and critic (value from the same features)


@pytest.mark.parametrize("seed", [0, 1])
def test_init_statistics_are_the_official_agents(seed):
    _, module = official_module(seed)
    for name, parameter in module.named_parameters():
        _, init = OFFICIAL[name]
        value = parameter.detach()
        if init == "orthogonal":
            assert is_orthogonal(value), name
        elif init == "normal_0.01":
            assert 0.005 < value.std() < 0.016 and value.mean().abs() < 0.006, (name, float(value.std()))
        elif init == "half":
            assert value.item() == 0.5
        elif init in ("ones", "zeros"):
            assert torch.equal(value, torch.full_like(value, 1.0 if init == "ones" else 0.0)), name
        elif init == "xavier":
            bound = math.sqrt(6 / sum(value.shape))
            assert value.abs().max() <= bound and value.abs().max() > 0.9 * bound, name
        else:  # PyTorch's Linear default: U(−1/√fan_in, 1/√fan_in), not orthogonal
            layer = name.rsplit(".", 1)[0]
            fan_in = dict(module.named_modules())[layer].in_features
            bound = 1 / math.sqrt(fan_in)
            assert value.abs().max() <= bound, name
            if value.numel() >= 64:  # enough draws to come near the bound
                assert value.abs().max() > 0.8 * bound, name
            if value.ndim == 2:
                assert not is_orthogonal(value), name


def test_torch_init_is_not_the_official_one():
    """Control: the project's default init fails the official statistics the test checks."""
    config, _ = official_module()
    import dataclasses

    plain = dataclasses.replace(config, module=dataclasses.replace(config.module, init="torch"))
    env = make_env(plain.env.id, plain.env.config)
    module = build_module(plain, env.observation_space, env.action_space)
    assert not is_orthogonal(module.trunk.post[0].weight.detach())
    assert module.pi_head.weight.std() > 0.05


def test_the_embedding_is_mixed_into_the_normalised_first_layer():
    """features = ReLU(Linear₂(LN(Linear₁ x)·(1 − s) + s·pe)), pe[p, 2i] = sin(p / 1024^(2i/128)),
    pe[p, 2i+1] = cos(p / 1024^(2i/128)) (popgym's positional_encoding with max_len 1024)."""
    _, module = official_module()
    trunk = module.trunk
    with torch.no_grad():
        trunk.mixed.strength.fill_(0.3)
        obs = torch.rand(2, 5, F)
        start = torch.tensor([0.0, 700.0])
        got = trunk.features(obs, start)
        positions = start[:, None] + torch.arange(5.0)  # [B,T]
        index = torch.arange(0, 128, 2, dtype=torch.float32)
        angles = positions[..., None] / 1024.0 ** (index / 128)
        pe = torch.zeros(2, 5, 128)
        pe[..., 0::2], pe[..., 1::2] = angles.sin(), angles.cos()
        first = nn.functional.layer_norm(trunk.encoder[0](obs), (128,))
        expected = torch.relu(trunk.encoder[2](first * 0.7 + 0.3 * pe))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    trunk.mixed.strength.data.fill_(1.7)
    trunk.features(obs, start)
    assert trunk.mixed.strength.item() == 1.0  # clamped to [0, 1] before use, as the official code does
    state = module.initial_state(2)
    assert torch.equal(state[STEP], torch.zeros(2, 1))  # positions count from the episode's start


def test_the_official_agent_exports_to_onnx_with_the_same_outputs(tmp_path):
    """The embedding's in-place clamp stays out of the traced graph (it crashed the exporter)."""
    import numpy as np
    import onnxruntime

    from rllib_shm.export.onnx_export import example_inputs
    from rllib_shm.export.policy import OneStepPolicy, acting_module

    _, module = official_module()
    policy = OneStepPolicy(acting_module(module, "expected"), "expected").eval()
    inputs = example_inputs(policy, module.observation_space)
    names = ["obs", *policy.state_names, *policy.theta_names]
    with torch.no_grad():
        expected = policy(*inputs)
        torch.onnx.export(policy, inputs, str(tmp_path / "agent.onnx"), dynamo=True, input_names=names,
                          optimize=True, external_data=False, verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "agent.onnx"))
    got = session.run(None, {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)})
    for value, reference in zip(got, expected, strict=True):
        np.testing.assert_allclose(value, reference.numpy(), atol=1e-5)
