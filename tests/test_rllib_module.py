"""MemoryRLModule without Ray's runtime: shapes for every action space, CNN inputs, state layout,
compute_values with and without embeddings, and the public acting / recording API."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rllib_shm.memory import MemoryConfig
from rllib_shm.rllib.module import MEMORY_TRACE, THETA_COLUMN, MemoryRLModule
from rllib_shm.rllib.module_config import ModuleConfig

B, T = 3, 7


def make(obs_space, action_space, **kwargs):
    memory = kwargs.pop("memory", MemoryConfig(kind="shm", mem_size=8, num_thetas=16))
    config = ModuleConfig(memory=memory, max_seq_len=T, memory_output=16, encoder_hiddens=(16,),
                          head_hiddens=(16,), **kwargs)
    torch.manual_seed(0)  # parameter init only
    return MemoryRLModule(observation_space=obs_space, action_space=action_space,
                          model_config=config.to_model_config())


def batch_for(module, obs_space, steps=T):
    obs = torch.as_tensor(np.stack([[obs_space.sample() for _ in range(steps)] for _ in range(B)]))
    state = {k: torch.from_numpy(v).unsqueeze(0).repeat(B, *[1] * v.ndim)
             for k, v in module.get_initial_state().items()}
    return {Columns.OBS: obs, Columns.STATE_IN: state}


@pytest.mark.parametrize(
    ("action_space", "inputs"),
    [(gym.spaces.Discrete(4), 4), (gym.spaces.MultiDiscrete([3, 5]), 8),
     (gym.spaces.Box(-1, 1, (2,), np.float32), 4)],
)
@pytest.mark.parametrize("shared_trunk", [True, False])
def test_forward_shapes_for_every_action_space(action_space, inputs, shared_trunk):
    obs_space = gym.spaces.Box(-1, 1, (6,), np.float32)
    module = make(obs_space, action_space, shared_trunk=shared_trunk)
    batch = batch_for(module, obs_space)
    out = module.forward_exploration(batch)
    assert out[Columns.ACTION_DIST_INPUTS].shape == (B, T, inputs)
    prefix = "" if shared_trunk else "pi_"
    assert out[prefix + THETA_COLUMN].shape == (B, T)
    assert out[Columns.STATE_OUT][prefix + "memory"].shape == (B, 8, 8)
    assert torch.equal(out[Columns.STATE_OUT][prefix + "step"], torch.full((B, 1), float(T)))
    dist = module.get_exploration_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    action = dist.sample()[0, 0].numpy()
    assert action.shape == action_space.shape
    if not isinstance(action_space, gym.spaces.Box):  # Gaussian samples are unsquashed by RLlib
        assert action_space.contains(action.astype(action_space.dtype))


@pytest.mark.parametrize("shared_trunk", [True, False])
def test_compute_values_with_and_without_embeddings_agree_when_theta_is_replayed(shared_trunk):
    obs_space = gym.spaces.Box(-1, 1, (6,), np.float32)
    module = make(obs_space, gym.spaces.Discrete(4), shared_trunk=shared_trunk)
    batch = batch_for(module, obs_space)
    acted = module.forward_exploration(batch)
    train_batch = {**batch, **{k: v for k, v in acted.items() if k.endswith(THETA_COLUMN)}}
    out = module.forward_train(train_batch)
    with_embeddings = module.compute_values(train_batch, embeddings=out[Columns.EMBEDDINGS])
    without = module.compute_values(train_batch)
    assert with_embeddings.shape == (B, T)
    torch.testing.assert_close(with_embeddings, without)
    torch.testing.assert_close(out[Columns.ACTION_DIST_INPUTS], acted[Columns.ACTION_DIST_INPUTS])


def test_cnn_encoder_on_uint8_images_and_positional_embedding():
    obs_space = gym.spaces.Box(0, 255, (3, 5, 5), np.uint8)
    module = make(obs_space, gym.spaces.Discrete(4), encoder="cnn", positional_embedding="sine")
    out = module.forward_inference(batch_for(module, obs_space))
    assert out[Columns.ACTION_DIST_INPUTS].shape == (B, T, 4)
    assert torch.isfinite(out[Columns.ACTION_DIST_INPUTS]).all()


@pytest.mark.parametrize("kind", ["gru", "lstm", "mlp", "ffm"])
def test_baselines_share_the_module(kind):
    obs_space = gym.spaces.Box(-1, 1, (6,), np.float32)
    module = make(obs_space, gym.spaces.Discrete(4), memory=MemoryConfig(kind=kind, mem_size=8))
    assert module.is_stateful() and "step" in module.get_initial_state()  # same code path for all
    out = module.forward_train(batch_for(module, obs_space))
    assert out[Columns.ACTION_DIST_INPUTS].shape == (B, T, 4)
    assert not any(k.endswith(THETA_COLUMN) for k in out)


def test_bad_module_inputs():
    with pytest.raises(ValueError, match="needs a Box observation space"):
        make(gym.spaces.Discrete(3), gym.spaces.Discrete(4))
    with pytest.raises(ValueError, match="encoder 'cnn' needs image observations"):
        make(gym.spaces.Box(-1, 1, (6,), np.float32), gym.spaces.Discrete(4), encoder="cnn")


@pytest.mark.parametrize("kind", ["shm", "gru", "lstm"])
@pytest.mark.parametrize("shared_trunk", [True, False])
def test_act_records_what_the_memory_holds(kind, shared_trunk):
    """act(record=True) over an episode step by step: the recorded memory is the state the module
    returns (M_t for SHM, h_t for GRU/LSTM), whatever the memory kind; SHM adds C_t in (0, 2)."""
    obs_space = gym.spaces.Box(-1, 1, (5,), np.float32)
    module = make(obs_space, gym.spaces.Discrete(3), shared_trunk=shared_trunk,
                  memory=MemoryConfig(kind=kind, mem_size=8, num_thetas=16))
    module.eval()
    module.reseed(4)
    state, prefix = module.initial_state(B), "" if shared_trunk else "pi_"
    assert module.has_memory_state and module.memory_kind == kind
    with torch.no_grad():
        for _ in range(3):
            obs = torch.as_tensor(np.stack([obs_space.sample() for _ in range(B)])).unsqueeze(1)
            out = module.act(obs, state, explore=True, record=True)
            trace = out[MEMORY_TRACE]
            held = out[Columns.STATE_OUT][prefix + ("memory" if kind == "shm" else "h")]
            torch.testing.assert_close(trace["memory"][:, 0], held, rtol=1e-5, atol=1e-6)
            if kind == "shm":
                assert trace["calibration"].shape == (B, 1, 8, 8)
                assert 0 < trace["calibration"].min() and trace["calibration"].max() < 2
                assert torch.equal(trace["theta_indices"], out[prefix + THETA_COLUMN])
            state = out[Columns.STATE_OUT]


def test_reseed_repeats_the_theta_draws_and_mlp_has_nothing_to_record():
    obs_space = gym.spaces.Box(-1, 1, (5,), np.float32)
    module = make(obs_space, gym.spaces.Discrete(3))
    obs = torch.zeros(B, 1, 5)
    draws = []
    for _ in range(2):
        module.reseed(11)
        draws.append(module.act(obs, module.initial_state(B), explore=True)[THETA_COLUMN])
    assert torch.equal(draws[0], draws[1])
    mlp = make(obs_space, gym.spaces.Discrete(3), memory=MemoryConfig(kind="mlp", mem_size=8))
    assert not mlp.has_memory_state
    with pytest.raises(ValueError, match="MLPCell has no state"):
        mlp.act(obs, mlp.initial_state(B), record=True)


@pytest.mark.parametrize("shared_trunk", [True, False])
def test_shm_options_state_flows_through_the_module_step_by_step_as_whole(shared_trunk):
    """The recency path's state (the last w − 1 inputs) is a module state like M_t: acting one step
    at a time with the state threaded gives what one call over the sequence gives."""
    obs_space = gym.spaces.Box(-1, 1, (6,), np.float32)
    module = make(obs_space, gym.spaces.Discrete(4), shared_trunk=shared_trunk,
                  memory=MemoryConfig(kind="shm", mem_size=8, num_thetas=16, key_query="signed", recency=3))
    prefix = "" if shared_trunk else "pi_"
    assert module.get_initial_state()[prefix + "recent"].shape == (2, 16)  # w − 1 = 2 inputs of width 16
    batch = batch_for(module, obs_space)
    whole = module.forward_exploration(batch)
    state, logits = batch[Columns.STATE_IN], []
    for t in range(T):
        step = {Columns.OBS: batch[Columns.OBS][:, t:t + 1], Columns.STATE_IN: state,
                prefix + THETA_COLUMN: whole[prefix + THETA_COLUMN][:, t:t + 1]}
        out = module.forward_exploration(step)
        logits.append(out[Columns.ACTION_DIST_INPUTS])
        state = out[Columns.STATE_OUT]
    torch.testing.assert_close(torch.cat(logits, 1), whole[Columns.ACTION_DIST_INPUTS], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state[prefix + "recent"], whole[Columns.STATE_OUT][prefix + "recent"])
