"""Structural search spaces: parsing, validation of every searched path and value, Optuna mapping."""

import optuna
import pytest

from rllib_shm.studies.search_space import decode, split_search_space, to_optuna, trial_config


def study(**search):
    data = {"env": {"id": "rllib_shm/CueRecall-D5-v0"}, "module": {"memory": {}}, "algo": {}, "run": {}}
    for path, spec in search.items():
        node = data
        *parents, last = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = spec
    return data


def test_split_and_map_to_optuna():
    base, space = split_search_space(study(algo__lr={"loguniform": [1e-4, "3e-3"]},
                                           module__memory__kind={"choice": ["shm", "gru", "mlp"]},
                                           module__memory__mem_size={"int": [8, 64]},
                                           module__encoder_hiddens={"choice": [[32], [64, 32]]}))
    assert set(space) == {"algo.lr", "module.memory.kind", "module.memory.mem_size", "module.encoder_hiddens"}
    assert "lr" not in base["algo"]
    dists = to_optuna(space)
    assert dists["algo.lr"] == optuna.distributions.FloatDistribution(1e-4, 3e-3, log=True)
    assert dists["module.encoder_hiddens"].choices == (0, 1)  # lists are indexed
    values = decode(space, {"algo.lr": 1e-3, "module.memory.kind": "gru", "module.memory.mem_size": 16,
                            "module.encoder_hiddens": 1})
    config = trial_config(base, values)
    assert config.module.encoder_hiddens == (64, 32) and config.module.memory.kind == "gru"
    assert config.algo.lr == 1e-3 and config.module.memory.mem_size == 16


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"algo__lr": {"loguniform": [1e-2, 1e-4]}}, "search space algo.lr: loguniform needs low < high"),
        ({"algo__lr": {"loguniform": [0, 1e-4]}}, "loguniform needs low > 0"),
        ({"module__memory__kind": {"choice": []}}, "choice needs a non-empty list"),
        ({"module__memory__kind": {"choice": ["shm", "transformer"]}},
         "search space module.memory.kind: value 'transformer' is invalid"),
        ({"module__memory__mem_sise": {"int": [8, 64]}}, r"value 8 is invalid: unknown config key\(s\) "
                                                          r"\['module.memory.mem_sise'\]"),
        ({"module__memory__mem_size": {"int": [0, 64]}}, "value 0 is invalid: module.memory: mem_size must be"),
        ({"algo__num_epochs": {"int": [1.5, 4]}}, "int bounds must be integers"),
        ({"algo__lr": {"uniform": [1e-3]}}, r"uniform needs \[low, high\]"),
    ],
)
def test_impossible_spaces_are_refused(search, message):
    with pytest.raises(ValueError, match=message):
        split_search_space(study(**search))


VARIANTS = {
    "baseline": {},
    "theta-fixed": {"module.memory.theta_mode": "fixed"},
    "H128-sine": {"module.memory.mem_size": 128, "module.positional_embedding": "sine", "algo.lr": 1e-3},
}


def test_variants_are_named_partial_overrides_searched_as_one_choice():
    data = {**study(run__seed={"choice": [0, 1, 2]}), "variants": VARIANTS}
    data["module"]["memory"].update(kind="shm", mem_size=64)
    base, space = split_search_space(data)
    assert space["variant"] == ("choice", ["baseline", "theta-fixed", "H128-sine"])
    assert to_optuna(space)["variant"].choices == ("baseline", "theta-fixed", "H128-sine")  # names, not indices
    baseline = trial_config(base, decode(space, {"variant": "baseline", "run.seed": 1}))
    fixed = trial_config(base, {"variant": "theta-fixed", "run.seed": 2})
    big = trial_config(base, {"variant": "H128-sine", "run.seed": 0})
    assert (baseline.module.memory.theta_mode, baseline.module.memory.mem_size, baseline.run.seed) == ("random", 64, 1)
    assert (fixed.module.memory.theta_mode, fixed.module.memory.mem_size, fixed.run.seed) == ("fixed", 64, 2)
    assert big.module.memory.mem_size == 128 and big.module.positional_embedding == "sine" and big.algo.lr == 1e-3
    assert big.module.memory.kind == "shm" and big.module.memory.theta_mode == "random"  # the rest stays as written
    assert base["variants"] == VARIANTS  # unchanged by the trials


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({}, "variants must be a non-empty mapping of name → overrides"),
        ({"a": ["algo.lr", 1e-3]}, "variants.a must map dotted paths to values"),
        ({"a": {"algo.lr": {"choice": [1e-3, 1e-4]}}}, "variants.a.algo.lr: a variant sets plain values"),
        ({"a": {"run.seed": 3}}, r"variants.a sets run.seed \(searched as run.seed\): a path is either searched"),
        ({"a": {"run": {"seed": 3}}}, r"variants.a sets run \(searched as run.seed\)"),
        ({"a": {"module.memory.kind": "transformer"}}, "variants.a is invalid: .*kind must be one of"),
        ({"a": {"module.memory.mem_sise": 8}}, r"variants.a is invalid: unknown config key\(s\) "
                                               r"\['module.memory.mem_sise'\]"),
    ],
)
def test_impossible_variants_are_refused(variants, message):
    with pytest.raises(ValueError, match=message):
        split_search_space({**study(run__seed={"choice": [0, 1]}), "variants": variants})
