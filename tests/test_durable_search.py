"""DurableOptunaSearch: a trial Optuna already has as finished (told just before the driver was
killed, while Tune's saved experiment state still has it running) may be resumed by Tune; its
results must neither end the study nor change Optuna's value."""

import warnings

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from ray.tune.search.optuna import OptunaSearch

from rllib_shm.studies.durable_search import DurableOptunaSearch


def searcher(cls, url):
    return cls(space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)}, metric="score", mode="max",
               sampler=optuna.samplers.TPESampler(seed=0), study_name="s", storage=optuna.storages.RDBStorage(url))


def killed_after_telling(tmp_path):
    """Trial t1: Tune's saved state (``save_to_dir``) has it running after one result; Optuna was
    then told it COMPLETE with 0.5, and the driver died before Tune saved again."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = searcher(DurableOptunaSearch, url)
    assert first.suggest("t1") is not None
    first.on_trial_result("t1", {"score": 0.1, "training_iteration": 1})
    first.save_to_dir(str(tmp_path), session_str="before-kill")
    first.on_trial_complete("t1", {"score": 0.5, "training_iteration": 4})
    return url


def test_resumed_results_of_a_finished_trial_are_not_reported(tmp_path):
    url = killed_after_telling(tmp_path)
    resumed = searcher(DurableOptunaSearch, url)
    resumed.restore_from_dir(str(tmp_path))
    resumed.on_trial_result("t1", {"score": 0.9, "training_iteration": 5})
    resumed.on_trial_result("t1", {"score": 0.95, "training_iteration": 6})
    resumed.on_trial_complete("t1", {"score": 0.95, "training_iteration": 6})
    (trial,) = optuna.load_study(study_name="s", storage=url).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == 0.5 and trial.intermediate_values == {1: 0.1}
    # the searcher goes on: the next trial is a new Optuna trial
    assert resumed.suggest("t2") is not None
    resumed.on_trial_result("t2", {"score": 0.3, "training_iteration": 1})
    resumed.on_trial_complete("t2", {"score": 0.3, "training_iteration": 1})
    values = [t.value for t in optuna.load_study(study_name="s", storage=url).trials]
    assert values == [0.5, 0.3]


def test_plain_optuna_search_fails_there(tmp_path):
    """The reason for the subclass: Ray Tune's own OptunaSearch raises, and Tune ends the study."""
    url = killed_after_telling(tmp_path)
    plain = searcher(OptunaSearch, url)
    plain.restore_from_dir(str(tmp_path))
    with pytest.raises(UpdateFinishedTrialError):
        plain.on_trial_result("t1", {"score": 0.9, "training_iteration": 5})


def test_repeated_steps_of_a_resumed_trial_are_one_log_line_not_a_warning_each(tmp_path, caplog):
    """A trial resumed from a checkpoint older than its last report repeats steps Optuna holds:
    Optuna keeps its first values and warns per step; the searcher says it once."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = searcher(DurableOptunaSearch, url)
    assert first.suggest("t1") is not None
    for step in (1, 2, 3):
        first.on_trial_result("t1", {"score": 0.1 * step, "training_iteration": step})
    first.save_to_dir(str(tmp_path), session_str="before-kill")
    resumed = searcher(DurableOptunaSearch, url)
    resumed.restore_from_dir(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning reaching the caller fails the test
        for step in (2, 3, 4):  # resumed from the checkpoint of step 1
            resumed.on_trial_result("t1", {"score": 0.9, "training_iteration": step})
    repeats = [r for r in caplog.records if "repeats steps Optuna already holds" in r.getMessage()]
    assert len(repeats) == 1 and "from step 2 on" in repeats[0].getMessage()
    resumed.on_trial_complete("t1", {"score": 0.9, "training_iteration": 4})
    (trial,) = optuna.load_study(study_name="s", storage=url).trials
    assert trial.intermediate_values == {1: pytest.approx(0.1), 2: pytest.approx(0.2), 3: pytest.approx(0.3), 4: 0.9}
