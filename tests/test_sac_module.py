"""Recurrent SAC's module and learner without a Ray cluster: padded steps change no loss, the θ
replay modes, log α in the learner state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from rllib_shm.config import load_config
from rllib_shm.config.sac import build_sac_config
from rllib_shm.rllib import make_env
from rllib_shm.rllib.module import THETA_COLUMN

BASE = ["env.id=rllib_shm/CueRecall-D5-v0", "env.config={delay: 3}", "algo.name=sac",
        "module.max_seq_len=12",
        "module.memory.mem_size=8", "module.encoder_hiddens=[16, 16]", "module.memory_output=16",
        "module.head_hiddens=[16]"]


def learner_for(overrides):
    config = load_config(None, [*BASE, *overrides])
    env = make_env(config.env.id, config.env.config)
    torch.manual_seed(0)
    return build_sac_config(config).build_learner(env=env)


def episodes_batch(padded_length: int, seed: int = 0, actions: int = 2):
    """Three CueRecall-D3 episodes (5 steps), zero-padded to ``padded_length`` with garbage in
    the padding (it must not matter)."""
    rng = np.random.default_rng(seed)
    steps, batch = 5, 3
    obs = torch.zeros(batch, padded_length, 3)
    nxt = torch.zeros(batch, padded_length, 3)
    cues = rng.integers(2, size=batch)
    for b, cue in enumerate(cues):
        obs[b, 0, cue] = 1.0
        obs[b, 4, 2] = 1.0  # the query at t = delay + 1 = 4
        nxt[b, 3, 2] = 1.0
    real_actions = rng.integers(actions, size=(batch, steps))  # real steps first: the same for every padding
    pad = padded_length - steps
    garbage = torch.from_numpy(np.random.default_rng(pad).normal(size=(batch, pad, 3)).astype(np.float32))
    obs[:, steps:], nxt[:, steps:] = garbage, garbage.flip(1)
    acts = torch.from_numpy(np.concatenate([real_actions, np.random.default_rng(pad + 1).integers(
        actions, size=(batch, pad))], axis=1))
    rewards = torch.zeros(batch, padded_length)
    rewards[:, steps - 1] = torch.from_numpy(np.where(real_actions[:, -1] == cues, 1.0, -1.0)).float()
    rewards[:, steps:] = garbage[..., 0]
    terminated = torch.zeros(batch, padded_length)
    terminated[:, steps - 1] = 1.0
    terminated[:, steps:] = 1.0
    mask = torch.zeros(batch, padded_length, dtype=torch.bool)
    mask[:, :steps] = True
    return {Columns.OBS: obs, Columns.NEXT_OBS: nxt, Columns.ACTIONS: acts, Columns.REWARDS: rewards,
            Columns.TERMINATEDS: terminated, Columns.LOSS_MASK: mask}


def losses(learner, batch):
    module = learner.module[DEFAULT_MODULE_ID]
    batch = {**batch, Columns.STATE_IN: module.initial_state(batch[Columns.OBS].shape[0])}
    config = learner.config.get_config_for_module(DEFAULT_MODULE_ID)
    fwd_out = module.forward_train(batch)
    total = learner.compute_loss_for_module(module_id=DEFAULT_MODULE_ID, config=config, batch=batch, fwd_out=fwd_out)
    parts = {name: float(loss.detach()) for (_, name), loss in learner._temp_losses.items()}
    learner._temp_losses.clear()
    return float(total.detach()), parts


@pytest.mark.parametrize("memory", [["module.memory.kind=gru"], ["module.memory.kind=lstm"], ["module.memory.kind=ffm"],
                                    ["module.memory.kind=shm", "module.memory.theta_mode=fixed"]])
def test_padded_steps_change_no_loss(memory):
    learner = learner_for(memory)
    short_total, short_parts = losses(learner, episodes_batch(5))
    for padded in (7, 12):
        total, parts = losses(learner, episodes_batch(padded))
        assert total == pytest.approx(short_total, rel=1e-5, abs=1e-6)
        assert parts == pytest.approx(short_parts, rel=1e-5, abs=1e-6)
    assert set(short_parts) == {"qf_loss", "policy_loss", "alpha_loss"}  # both Q heads in one critic loss


def test_padding_is_what_the_loss_ignores_and_real_steps_are_not():
    """Control: the same change to a real step does change the loss."""
    learner = learner_for(["module.memory.kind=gru"])
    batch = episodes_batch(7)
    reference, _ = losses(learner, batch)
    batch[Columns.REWARDS] = batch[Columns.REWARDS].clone()
    batch[Columns.REWARDS][0, 2] = 5.0
    changed, _ = losses(learner, batch)
    assert abs(changed - reference) > 1e-3


def act_episode(module, obs):
    """Act step by step as an env runner does (explore=True); returns the θ rows drawn and the
    policy's inputs [B,T,A]."""
    state, rows, logits = module.initial_state(obs.shape[0]), [], []
    for t in range(obs.shape[1]):
        out = module.act(obs[:, t:t + 1], state, explore=True)
        rows.append(out[THETA_COLUMN])
        logits.append(out[Columns.ACTION_DIST_INPUTS])
        state = out[Columns.STATE_OUT]
    return torch.cat(rows, 1), torch.cat(logits, 1)


def test_theta_acting_mode_replays_the_actors_acting_draws():
    learner = learner_for(["module.memory.kind=shm", "algo.sac.theta_replay=acting"])
    module = learner.module[DEFAULT_MODULE_ID]
    batch = episodes_batch(5)
    rows, acting_logits = act_episode(module, batch[Columns.OBS])
    batch = {**batch, THETA_COLUMN: rows, Columns.STATE_IN: module.initial_state(3)}
    first, second = module.forward_train(batch), module.forward_train(batch)
    torch.testing.assert_close(first[Columns.ACTION_DIST_INPUTS], acting_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first["action_probs"], second["action_probs"])
    assert not torch.allclose(first["qf_preds"], second["qf_preds"])  # the critic draws its own, fresh


def test_theta_fresh_mode_draws_new_rows_on_every_forward():
    learner = learner_for(["module.memory.kind=shm"])  # theta_replay: fresh (default)
    module = learner.module[DEFAULT_MODULE_ID]
    batch = episodes_batch(5)
    rows, _ = act_episode(module, batch[Columns.OBS])
    batch = {**batch, THETA_COLUMN: rows, Columns.STATE_IN: module.initial_state(3)}
    first, second = module.forward_train(batch), module.forward_train(batch)
    assert not torch.allclose(first["action_probs"], second["action_probs"])


def test_log_alpha_is_kept_in_the_learner_state():
    learner = learner_for(["module.memory.kind=gru"])
    with torch.no_grad():
        learner.curr_log_alpha[DEFAULT_MODULE_ID].fill_(-1.25)
    state = learner.get_state()
    fresh = learner_for(["module.memory.kind=gru"])
    assert float(fresh.curr_log_alpha[DEFAULT_MODULE_ID][0]) == pytest.approx(0.0)  # initial_alpha 1
    fresh.set_state(state)
    assert float(fresh.curr_log_alpha[DEFAULT_MODULE_ID][0]) == pytest.approx(-1.25)


def next_draws(module) -> dict[str, torch.Tensor]:
    """The next θ rows [4, 6] each training trunk would draw (advances the generators)."""
    trunks = {"pi": module.trunk, "qf": module.qf_encoder, "target_qf": module.target_qf_encoder}
    return {name: trunk.memory.draw_indices(4, 6) for name, trunk in trunks.items()}


def test_actor_critic_and_target_draw_their_own_rows_and_the_learner_state_keeps_the_generators():
    learner = learner_for(["module.memory.kind=shm"])
    module = learner.module[DEFAULT_MODULE_ID]
    assert set(module.training_random_states()) == {"pi", "qf", "target_qf"}
    first = next_draws(module)  # the critic never draws the actor's rows, nor the target the critic's
    assert not torch.equal(first["pi"], first["qf"]) and not torch.equal(first["qf"], first["target_qf"])
    state = learner.get_state()
    assert "theta_generators" not in learner.get_state(components="rl_module")  # not in weight syncs
    expected = next_draws(module)
    fresh = learner_for(["module.memory.kind=shm"])
    fresh.set_state(state)
    restored = next_draws(fresh.module[DEFAULT_MODULE_ID])
    for name in expected:
        torch.testing.assert_close(restored[name], expected[name], rtol=0, atol=0)
    assert "theta_generators" not in learner_for(["module.memory.kind=gru"]).get_state()  # nothing draws


def test_discrete_auto_target_entropy_is_half_the_uniform_entropy():
    learner = learner_for(["module.memory.kind=gru"])
    assert float(learner.target_entropy[DEFAULT_MODULE_ID]) == pytest.approx(0.5 * np.log(2))


MEMORIES = [["module.memory.kind=mlp"], ["module.memory.kind=gru"], ["module.memory.kind=lstm"],
            ["module.memory.kind=ffm"], ["module.memory.kind=shm"],
            ["module.memory.kind=shm", "module.memory.theta_mode=fixed"],
            *[["module.memory.kind=shm", f"module.memory.calibration={c}"]
              for c in ("none", "fixed_matrix", "random_matrix", "neural_theta")],
            ["module.memory.kind=gru", "algo.sac.critic_memory={kind: shm, mem_size: 8}"]]


@pytest.mark.parametrize("memory", MEMORIES, ids=lambda m: "-".join(v.split("=")[1] for v in m))
def test_every_memory_learns_through_actor_and_critic(memory):
    """One update step's losses are finite and reach both trunks' memories (where they have weights)."""
    learner = learner_for(memory)
    module = learner.module[DEFAULT_MODULE_ID]
    batch = {**episodes_batch(7), Columns.STATE_IN: module.initial_state(3)}
    config = learner.config.get_config_for_module(DEFAULT_MODULE_ID)
    fwd_out = module.forward_train(batch)
    learner.compute_loss_for_module(module_id=DEFAULT_MODULE_ID, config=config, batch=batch, fwd_out=fwd_out)
    critic, actor = (learner._temp_losses[(DEFAULT_MODULE_ID, name)] for name in ("qf_loss", "policy_loss"))
    assert torch.isfinite(critic) and torch.isfinite(actor)
    critic.backward(retain_graph=True)
    actor.backward()
    learner._temp_losses.clear()
    for trunk in (module.trunk, module.qf_encoder):
        grads = [p.grad for p in trunk.memory.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert not grads or any(float(g.abs().sum()) > 0 for g in grads)


def test_with_stored_start_states_the_critic_trunk_acts_and_the_actor_is_drawn():
    """chunk_start_state: stored: the acting state holds the actor's (pi_) and the critic's (qf_)
    trunk states, env runners get the critic trunk but not the Q heads, and the memory drawing
    (``act(record=True)``) traces the actor's memory."""
    from rllib_shm.rllib.module import MEMORY_TRACE

    learner = learner_for(["module.memory.kind=shm", "algo.sac.replay=chunks", "algo.sac.chunk_start_state=stored",
                           "algo.sac.chunk_length=4", "algo.sac.burn_in=4"])
    module = learner.module[DEFAULT_MODULE_ID]
    assert set(module.get_initial_state()) == {"pi_step", "pi_memory", "qf_step", "qf_memory"}
    assert module.start_state_every == 4
    synced = module.get_state(inference_only=True)
    assert any(key.startswith("qf_encoder.") for key in synced)
    assert not any(key.startswith(("qf.", "qf_twin.", "target_")) for key in synced)
    obs = episodes_batch(5)[Columns.OBS]
    out = module.act(obs, module.initial_state(3), explore=True, record=True)
    assert set(out[Columns.STATE_OUT]) == set(module.get_initial_state())
    assert {"pi_" + THETA_COLUMN, "qf_" + THETA_COLUMN} <= set(out)
    trace = learner_for(["module.memory.kind=shm"]).module[DEFAULT_MODULE_ID]
    assert out[MEMORY_TRACE].keys() == trace.act(obs, trace.initial_state(3), explore=True, record=True)[
        MEMORY_TRACE].keys()
