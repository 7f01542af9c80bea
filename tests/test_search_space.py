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
