"""MLflow for a study: one parent run, one child run per trial, from the Tune driver.

Each study has its own MLflow experiment (named by ``tune.name`` unless ``run.mlflow_experiment``
says otherwise). A trial's run is named by what varies (``tracking/run_names.py``: ``shm-H32 lr=1e-3 s0``),
logs each parameter once under its config path (``tracking.curated_params``), and logs its metrics
at MLflow step = env steps so far (``iteration`` is a metric), so runs with different batch sizes
overlay honestly in MLflow's charts.

Trial runs are top-level rows beside the parent run (tag ``rllib_shm.study_run``), not nested
under it: MLflow's UI folds nested runs away and leaves them out of its charts.

Runs are found again by tags (``rllib_shm.study``, ``rllib_shm.trial_id``), so a resumed study
reuses its parent and never creates a second child for a trial. The client is created lazily and
not pickled (Tune stores callbacks with the experiment state).
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from rllib_shm.runs.results import METRICS
from rllib_shm.studies.search_space import VARIANTS, decode, trial_config
from rllib_shm.tracking import (
    NOTE_TAG,
    SEARCHED_TAG,
    STUDY_RUN_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    curated_params,
    experiment_id,
    find_study_parent,
    log_metrics,
    log_params,
    provenance,
    run_tags,
    trial_run_filter,
)
from rllib_shm.tracking.run_names import run_name


class StudyTracker(Callback):
    def __init__(self, tracking_uri: str, experiment_name: str, study: str, base: dict, space: dict) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.study = study
        self.base = base
        self.space = space
        self.parent_run_id: str | None = None
        self.children: dict[str, str] = {}
        self._client = None
        self._experiment_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    @property
    def client(self):
        if self._client is None:
            import mlflow

            self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        if getattr(self, "_experiment_id", None) is None:  # (absent in trackers pickled by older versions)
            self._experiment_id = experiment_id(self.client, self.experiment_name)
        return self._experiment_id

    def ensure_parent(self, params: dict[str, Any], tags: dict[str, str], fresh: bool = False) -> str:
        """The study's parent run. Resumed (``fresh`` False): the newest one of the study's name, found
        by tag in any experiment (a study begun before studies had experiments of their own stays where
        it began). A fresh study (``fresh``: not ``--resume``; its Tune store did not exist) always gets
        a new one in the study's experiment, so an earlier attempt of the same name whose store was
        removed keeps its own runs and the report, which reads the newest, reads this one."""
        if self.parent_run_id is None:
            found = None if fresh else find_study_parent(self.client, self.study)
            if found is not None:
                self.parent_run_id = found.info.run_id
                self._experiment_id = found.info.experiment_id
            else:
                run = self.client.create_run(self.experiment_id(), run_name=self.study,
                                             tags={STUDY_TAG: self.study, "kind": "study", **tags, **provenance()})
                self.parent_run_id = run.info.run_id
                log_params(self.client, self.parent_run_id, params)
        return self.parent_run_id

    def child(self, trial) -> str:
        if trial.trial_id in self.children:
            return self.children[trial.trial_id]
        found = self.client.search_runs([self.experiment_id()], trial_run_filter(self.study, trial.trial_id))
        if found:
            run_id = found[0].info.run_id
        else:
            values = decode(self.space, {k: v for k, v in trial.config.items() if k in self.space})
            config = trial_config(self.base, values)
            name = run_name(config, values)
            tags = {STUDY_TAG: self.study, TRIAL_TAG: trial.trial_id, "kind": "trial", SEARCHED_TAG: ",".join(values),
                    STUDY_RUN_TAG: self.parent_run_id or "", **run_tags(config), **provenance(),
                    NOTE_TAG: f"Trial `{trial.trial_id}` of study `{self.study}`: {name}. Searched: "
                              + ", ".join(f"`{path}` = {value}" for path, value in values.items())}
            run = self.client.create_run(self.experiment_id(), run_name=name, tags=tags)
            run_id = run.info.run_id
            overrides = tuple(path for variant in self.base.get(VARIANTS, {}).values() for path in variant)
            log_params(self.client, run_id, curated_params(config, values, overrides))
        self.children[trial.trial_id] = run_id
        return run_id

    def close_open_runs(self, status: str = "FAILED") -> None:
        """End every run of this study still RUNNING (the parent and unfinished trials) with
        ``status``: a study whose driver fails leaves nothing RUNNING behind. Called only by the driver
        holding the study's lock (``locking.DriverLock``), so those runs are this driver's, or those of a
        killed one whose trials it resumed: a refused second driver never gets here."""
        runs = self.client.search_runs([self.experiment_id()],
                                       f"tags.`{STUDY_TAG}` = '{self.study}' and attributes.status = 'RUNNING'")
        for run in runs:
            self.client.set_terminated(run.info.run_id, status=status)

    def close_dropped_children(self) -> list[str]:
        """After a finished ``fit``: end the child runs still RUNNING as FAILED and tag them
        ``rllib_shm.dropped``. They belong to trials a driver started just before it was killed and
        that the restored experiment state did not know (Tune replaced them with new trials)."""
        runs = self.client.search_runs(
            [self.experiment_id()],
            f"tags.`{STUDY_TAG}` = '{self.study}' and tags.kind = 'trial' and attributes.status = 'RUNNING'")
        for run in runs:
            self.client.set_tag(run.info.run_id, "rllib_shm.dropped", "the driver was killed while this trial "
                                "started; the resumed study ran it again as a new trial")
            self.client.set_terminated(run.info.run_id, status="FAILED")
        return [run.info.run_id for run in runs]

    # -- Tune callback hooks ------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        self.child(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.child(trial)
        log_metrics(self.client, run_id, {key: result[key] for key in (*METRICS, "iteration") if key in result},
                    step=int(result.get("env_steps", 0)))
        if result.get("node_id"):
            self.client.set_tag(run_id, "node_id", result["node_id"])

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.client.set_tag(self.child(trial), "checkpoint", f"{checkpoint.path}/algo")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.client.set_terminated(self.child(trial), status="FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.client.set_terminated(self.child(trial), status="FAILED")
