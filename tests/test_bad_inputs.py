"""Every sub-command refuses bad input cleanly: exit code 2, one error line naming the offending
value and what was expected, no traceback, and nothing created or changed on disk (a snapshot of
the working area before and after each attempt). Runs in-process through ``rllib_shm.cli.main``."""

import hashlib
import importlib.util
import json
import math
import os
import shutil

import mlflow
import pytest
import torch
import yaml

from rllib_shm.cli import main
from rllib_shm.config import load_config
from rllib_shm.config.ppo import model_config
from rllib_shm.export.runtime import SIDECAR_FORMAT
from rllib_shm.rllib import make_env
from rllib_shm.rllib.module import MemoryRLModule
from rllib_shm.runs.checkpoints import CHECKPOINT_META
from rllib_shm.tracking import experiment_id

TASK = "rllib_shm/CueRecall-D5-v0"
SMALL = ["module.memory.mem_size=8", "module.memory_output=16", "module.encoder_hiddens=[16]",
         "module.head_hiddens=[16]"]
STUDY = {"env": {"id": TASK}, "module": {"memory": {"kind": {"choice": ["shm", "gru"]}, "mem_size": 8}},
         "run": {"stop_iters": 1}, "tune": {"name": "s", "num_samples": 2}}


def save_checkpoint(directory, kind="shm", nan=False):
    config = load_config(None, [f"env.id={TASK}", f"module.memory.kind={kind}", *SMALL])
    env = make_env(TASK)
    torch.manual_seed(0)
    module = MemoryRLModule(observation_space=env.observation_space, action_space=env.action_space,
                            model_config=model_config(config))
    if nan:
        with torch.no_grad():
            module.pi_head.weight[0, 0] = math.nan
    module.save_to_path(str(directory))
    (directory / CHECKPOINT_META).write_text(json.dumps({"config": config.to_dict(), "iteration": 1}))
    return directory


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The files the bad inputs point at."""
    root = tmp_path_factory.mktemp("world")
    (root / "list.yaml").write_text("- a\n- b\n")
    (root / "broken.yaml").write_text("env: [unclosed\n")
    (root / "latin1.yaml").write_bytes("run: {name: caf\xe9}\n".encode("latin-1"))
    (root / "adir").mkdir()
    (root / "taken.json").write_text("{}")
    for name, mutate in (
        ("named", lambda d: d["run"].update(name="mine")),
        ("outdir", lambda d: d["run"].update(output_dir="elsewhere")),
        ("nothing", lambda d: d["module"]["memory"].update(kind="shm")),
        ("inverted", lambda d: d.setdefault("algo", {}).update(lr={"loguniform": [1e-2, 1e-4]})),
        ("gridcont", lambda d: (d.setdefault("algo", {}).update(lr={"uniform": [1e-4, 1e-2]}),
                                d["tune"].update(sampler="grid"))),
        ("metric", lambda d: d["tune"].update(metric="reward")),
        ("huge", lambda d: d["module"]["memory"].update(mem_size={"choice": [8, 100000]})),
        ("good", lambda d: None),
        ("nosuccess", lambda d: (d["env"].update(id={"choice": [TASK, "rllib_shm/popgym-RepeatFirstEasy-v0"]}),
                                 d["run"].update(stop_success=0.9))),
    ):
        data = json.loads(json.dumps(STUDY))
        mutate(data)
        (root / f"study_{name}.yaml").write_text(yaml.safe_dump(data))
    good = save_checkpoint(root / "ckpt")
    save_checkpoint(root / "ckpt_mlp", kind="mlp")
    save_checkpoint(root / "ckpt_nan", nan=True)
    truncated = root / "ckpt_truncated"
    shutil.copytree(good, truncated)
    state = truncated / "module_state.pkl"
    state.write_bytes(state.read_bytes()[:100])
    garbled = root / "ckpt_garbled_meta"
    shutil.copytree(good, garbled)
    (garbled / CHECKPOINT_META).write_text("{not json")
    latin = root / "ckpt_latin1_meta"
    shutil.copytree(good, latin)
    (latin / CHECKPOINT_META).write_bytes(b'{"config": "caf\xe9"}')
    drawn = root / "drawn"
    drawn.mkdir()
    (drawn / "memory.gif").write_bytes(b"GIF89a")
    for name, sidecar in (("onnx_truncated", GOOD_SIDECAR), ("onnx_sidecar", {**GOOD_SIDECAR, "state": 5}),
                          ("onnx_sidecar_list", [1, 2])):  # a model that is not ONNX, beside a sidecar
        (root / name).mkdir()
        (root / name / "policy.onnx").write_bytes(b"\x08\x07\x12\x04torch" + b"\x00" * 13)
        (root / name / "policy.json").write_text(json.dumps(sidecar))
    named_dots = json.loads(json.dumps(STUDY))
    named_dots["tune"]["name"] = ".."
    (root / "study_dots.yaml").write_text(yaml.safe_dump(named_dots))
    faulty = json.loads(json.dumps(STUDY))
    faulty["env"]["id"] = "faulty_envs:OutOfSpace"
    (root / "study_faulty_env.yaml").write_text(yaml.safe_dump(faulty))
    reported = root / "reported"
    reported.mkdir()
    (reported / "report.md").write_text("# an earlier report\n")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlstore' / 'mlflow.db'}")  # a store, no study
    experiment_id(client, "rllib-shm")
    experiment_id(client, "empty")
    orphan = json.loads(json.dumps(STUDY))
    orphan["tune"]["name"] = "orphan"
    (root / "mlstore" / "orphan").mkdir()
    (root / "mlstore" / "orphan" / "study.yaml").write_text(yaml.safe_dump(orphan))  # a study with no MLflow runs
    return root


GOOD_SIDECAR = {"format": SIDECAR_FORMAT, "inputs": [{"name": "obs"}], "outputs": [{"name": "value"}],
                "observation": {"dtype": "float32"}, "state": [], "theta": {"mode": "expected", "inputs": []},
                "action_space": {}, "observation_space": {}}  # every field OnnxPolicy reads


def snapshot(root):
    state = {}
    for directory, _, files in os.walk(root):
        state[directory] = None
        for name in files:
            path = os.path.join(directory, name)
            state[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return state


W = "{w}"  # replaced by the world directory
CASES = [
    # train: config files
    (["train", f"{W}/missing.yaml"], "config file '{w}/missing.yaml' does not exist"),
    (["train", f"{W}/adir"], "is a directory, expected a YAML file"),
    (["train", f"{W}/latin1.yaml"], "latin1.yaml' is not UTF-8 text"),
    (["train", f"{W}/broken.yaml"], "broken.yaml' is not valid YAML"),
    (["train", f"{W}/list.yaml"], "must hold a mapping of sections, got list"),
    # train: --set
    (["train", "--set", "oops"], "--set expects section.key=value, got 'oops'"),
    (["train", "--set", "algo.lrr=1"], "unknown config key(s) ['algo.lrr']"),
    (["train", "--set", "algo.lr=.inf"], "algo.lr: expected a finite number, got inf"),
    (["train", "--set", "algo.lr=1e999"], "algo.lr: expected a finite number, got '1e999'"),
    (["train", "--set", "algo.entropy_coeff=.nan"], "algo.entropy_coeff: expected a finite number"),
    (["train", "--set", "algo.lr=abc"], "algo.lr: expected a number, got 'abc'"),
    (["train", "--set", "algo.lr=-1"], "algo.lr must be > 0, got -1.0"),
    (["train", "--set", "algo.gamma=1.5"], "algo.gamma must be in (0, 1]"),
    (["train", "--set", "algo.minibatch_size=5000"], "algo.minibatch_size (5000) must not exceed"),
    (["train", "--set", "algo.num_epochs=0"], "algo.num_epochs must be ≥ 1, got 0"),
    (["train", "--set", "run.stop_iters=0"], "run.stop_iters and run.checkpoint_every must be ≥ 1"),
    (["train", "--set", "run.name=a/b"], "run.name must be a non-empty name without '/'"),
    (["train", "--set", "run.stop_return=.inf"], "run.stop_return: expected a finite number"),
    (["train", "--set", "run.stop_success=1.5"], "run.stop_success is a success rate in [0, 1] (e.g. 0.95), got 1.5"),
    (["train", "--set", "run.stop_success=0.9"], "run.stop_success needs an env that reports info['success'] on an "
                                                 "episode's last step; rllib_shm/popgym-RepeatFirstEasy-v0 ended"),
    (["train", "--set", "run.seed=1.5"], "run.seed: expected an integer, got 1.5"),
    (["train", "--set", "module.memory.mem_size=0"], "mem_size must be a positive integer, got 0"),
    (["train", "--set", "module.memory.mem_size=100000"], "GiB of memory but"),
    (["train", "--set", "module.memory.kind=transformer"], "kind must be one of"),
    (["train", "--set", "module.memory.theta_mode=sometimes"], "theta_mode must be one of"),
    (["train", "--set", "module.memory.memory_clamp=.inf"], "memory_clamp: expected a finite number"),
    (["train", "--set", "module.max_seq_len=0"], "max_seq_len must be a positive integer, got 0"),
    (["train", "--set", "module.encoder=cnn", "--set", f"env.id={TASK}"], "encoder 'cnn' needs image observations"),
    (["train", "--set", "module.encoder_hiddens=[]"], "encoder_hiddens must be a non-empty list"),
    # train: envs
    (["train", "--set", "env.id=rllib_shm/VisualMatsh-L250-v0"], "close matches: rllib_shm/VisualMatch-L250-v0"),
    (["train", "--set", "env.id=no_such_pkg.mod:Env"], "cannot import module 'no_such_pkg.mod'"),
    (["train", "--set", "env.id=MiniGrid-Empty-5x5-v0"], "needs a Box observation space"),
    (["train", "--set", "run.output_dir=/proc/rllib-shm"], "directory '/proc' is not writable"),
    (["train", "--set", f"env.id={TASK}", "--set", "env.config={bogus: 1}"], "does not fit rllib_shm/CueRecall"),
    # train: envs that fail only when built or played (before: after Ray had started, or "unexpected")
    (["train", "--set", f"env.id={TASK}", "--set", "env.config={delay: .nan}"],
     "env.config.delay: expected a finite number, got nan"),
    (["train", "--set", "env.id=faulty_envs:DictActions"], "its action space Dict('move': Discrete(2), 'speak': "
                                                           "Discrete(3)) is not supported"),
    (["train", "--set", "env.id=faulty_envs:MultiBinaryActions"], "its action space MultiBinary(3) is not supported"),
    (["train", "--set", "env.id=faulty_envs:OutOfSpace"], "env faulty_envs:OutOfSpace: the observation at reset lies "
                                                          "outside its observation space"),
    (["train", "--set", "env.id=faulty_envs:NanObservations"], "env faulty_envs:NanObservations: the observation at "
                                                               "step 1 holds 2 non-finite value(s)"),
    (["train", "--set", "env.id=faulty_envs:StepRaises"], "env faulty_envs:StepRaises failed at step 0 (sampled "
                                                          "actions, seed 0): RuntimeError: the simulator lost"),
    (["train", "--set", "env.id=faulty_envs:InitRaises"], "env faulty_envs:InitRaises could not be built: "
                                                          "RuntimeError: no licence file found"),
    (["train", "--set", "env.id=rllib_shm/MiniGrid-MemoryS7-v0", "--set", "env.config={size: 3}"],
     "env rllib_shm/MiniGrid-MemoryS7-v0 failed at reset (sampled actions, seed 0): AssertionError"),
    *([(["train", "--set", "env.id=LunarLander-v3"], "env LunarLander-v3 needs an optional dependency that is not "
                                                      "installed: Box2D is not installed")]
      if importlib.util.find_spec("Box2D") is None else []),
    *([(["train", "--set", "env.id=HalfCheetah-v5"], "env HalfCheetah-v5 needs an optional dependency that is not "
                                                      "installed: MuJoCo is not installed")]
      if importlib.util.find_spec("mujoco") is None else []),
    (["train", "--set", "run.seed=-1"], "run.seed must be ≥ 0"),
    # train: tracking
    (["train", *(f"--set={o}" for o in SMALL), "--set", f"env.id={TASK}", "--mlflow-uri", "http://127.0.0.1:9"],
     "MLflow tracking URI 'http://127.0.0.1:9' is not reachable"),
    # tune
    (["tune", f"{W}/missing_study.yaml"], "study file '{w}/missing_study.yaml' does not exist"),
    (["tune", f"{W}/latin1.yaml"], "latin1.yaml' is not UTF-8 text"),
    (["tune", f"{W}/study_named.yaml"], "run.name has no meaning in a study"),
    (["tune", f"{W}/study_outdir.yaml"], "run.output_dir has no meaning in a study"),
    (["tune", f"{W}/study_nothing.yaml"], "searches nothing"),
    (["tune", f"{W}/study_inverted.yaml"], "algo.lr: loguniform needs low < high"),
    (["tune", f"{W}/study_gridcont.yaml"], "tune.sampler 'grid' needs choice or int distributions"),
    (["tune", f"{W}/study_metric.yaml"], "tune.metric must be one of"),
    (["tune", f"{W}/study_nosuccess.yaml", "--storage", f"{W}/store"],
     "run.stop_success needs an env that reports info['success']"),
    (["tune", f"{W}/study_huge.yaml", "--storage", f"{W}/store"], "module.memory.mem_size=100000); lower"),
    (["tune", f"{W}/study_good.yaml", "--num-samples", "0"], "tune.num_samples must be ≥ 1, got 0"),
    (["tune", f"{W}/study_dots.yaml"], "tune.name must be 1 to 100 letters, digits, '.', '_' or '-', starting with"),
    (["tune", f"{W}/study_faulty_env.yaml", "--storage", f"{W}/store"],
     "env faulty_envs:OutOfSpace: the observation at reset lies outside its observation space"),
    (["tune", f"{W}/study_good.yaml", "--storage", f"{W}/store", "--resume"], "there is no study to resume"),
    (["tune", f"{W}/study_good.yaml", "--set", "algo.lr=.inf"], "algo.lr: expected a finite number"),
    (["tune", f"{W}/study_good.yaml", "--storage", "/proc/rllib-shm"], "directory '/proc' is not writable"),
    (["tune", f"{W}/study_good.yaml", "--storage", f"{W}/taken.json"], "taken.json' is a file, expected a directory"),
    # evaluate
    (["evaluate", f"{W}/nowhere"], "does not exist or is not a directory"),
    (["evaluate", f"{W}/adir"], "is not an RLlib checkpoint"),
    (["evaluate", f"{W}/ckpt", "--episodes", "0"], "--episodes must be ≥ 1, got 0"),
    (["evaluate", f"{W}/ckpt", "--record-memory", f"{W}/new_dir", "--memory-steps", "-3"],
     "--memory-steps [-3]: expected 1 to 32 distinct steps ≥ 0"),
    (["evaluate", f"{W}/ckpt", "--record-memory", f"{W}/new_dir", "--cue-steps", "0"],
     "--cue-steps 0: expected an integer ≥ 1 (steps 0..N-1 are the cue phase)"),
    (["evaluate", f"{W}/ckpt", "--cue-steps", "3"], "--cue-steps 3: it marks the cue phase of the memory drawing"),
    (["evaluate", f"{W}/ckpt", "--output", f"{W}/taken.json"], "taken.json' exists; results are never overwritten"),
    (["evaluate", f"{W}/ckpt", "--output", f"{W}/no/dir/e.json"], "directory '{w}/no/dir' does not exist"),
    (["evaluate", f"{W}/ckpt", "--record-memory", f"{W}/taken.json"], "taken.json' is a file, expected a directory"),
    (["evaluate", f"{W}/ckpt", "--record-episodes", f"{W}/taken.json"],
     "--record-episodes '{w}/taken.json': expected a file name ending in .npz"),
    (["evaluate", f"{W}/ckpt", "--record-episodes", f"{W}/no/dir/e.npz"], "directory '{w}/no/dir' does not exist"),
    (["evaluate", f"{W}/ckpt", "--record-memory", f"{W}/drawn"], "already holds ['memory.gif']"),
    (["evaluate", f"{W}/ckpt", "--env", "rllib_shm/VisualMatch-L5-v0"], "the env does not match the checkpoint"),
    (["evaluate", f"{W}/ckpt_mlp", "--record-memory", f"{W}/new_dir"], "the 'mlp' memory has no state to draw"),
    (["evaluate", f"{W}/ckpt_truncated"], "module weights (module_state.pkl"),
    (["evaluate", f"{W}/ckpt_garbled_meta"], "rllib_shm.json' is not valid checkpoint metadata"),
    (["evaluate", f"{W}/ckpt_latin1_meta"], "rllib_shm.json' is not UTF-8 text"),
    (["evaluate", f"{W}/ckpt_nan"], "has non-finite weights in 1 tensor(s), first 'pi_head.weight'"),
    (["evaluate", f"{W}/ckpt", "--env-config", "colour=red"], "rllib_shm/CueRecall-D5-v0 takes no keyword argument "
                                                              "'colour'; it takes delay"),
    (["evaluate", f"{W}/ckpt", "--env-config", "delay=-1"], "--env-config delay=-1: rllib_shm/CueRecall-D5-v0 "
                                                            "refused the env config"),
    (["evaluate", f"{W}/ckpt", "--env-config", "delay"], "--env-config expects KEY=VALUE"),
    (["evaluate", f"{W}/ckpt", "--seed", "-1"], "--seed -1: expected an integer ≥ 0"),
    (["evaluate", f"{W}/ckpt", "--env", "faulty_envs:InitRaises"], "env faulty_envs:InitRaises could not be built: "
                                                                   "RuntimeError: no licence file found"),
    (["evaluate", f"{W}/onnx_truncated/policy.onnx"], "policy.onnx' cannot be loaded (corrupt or truncated? export"),
    (["evaluate", f"{W}/onnx_sidecar/policy.onnx"], "policy.json' is damaged: TypeError"),
    (["evaluate", f"{W}/onnx_sidecar_list/policy.onnx"], "policy.json' holds a JSON list, expected an object"),
    # export
    (["export", f"{W}/ckpt", "--output", f"{W}/policy.pt"], "must end in .onnx"),
    (["export", f"{W}/ckpt", "--output", f"{W}/no/dir/p.onnx"], "directory '{w}/no/dir' does not exist"),
    (["export", f"{W}/ckpt_nan", "--output", f"{W}/p.onnx"], "has non-finite weights"),
    # bench and envs
    (["bench", "kernel", "--sizes", "0"], "--sizes must be positive integers, got [0]"),
    (["bench", "kernel", "--output", f"{W}/taken.json"], "taken.json' exists"),
    (["bench", "kernel", "--output", f"{W}/no/dir/k.json"], "directory '{w}/no/dir' does not exist"),
    (["bench", "ppo", "--variants", "nope"], "--variants: unknown ['nope']"),
    (["bench", "ppo", "--env", "nope_env"], "unknown environment 'nope_env'"),
    (["bench", "ppo", "--env", "faulty_envs:StepRaises"], "env faulty_envs:StepRaises failed at step 0"),
    *([(["bench", "kernel", "--device", "cuda"], "--device cuda: torch sees no CUDA GPU")]
      if not torch.cuda.is_available() else []),
    (["bench", "onnx", "--steps", "0"], "--size and --steps must be positive"),
    (["envs", "zzzz"], "no environment id contains 'zzzz'"),
    # report
    (["report", "nostudy", "--storage", f"{W}/mlstore", "--out", f"{W}/rep"],
     "unknown study 'nostudy': no '{w}/mlstore/nostudy/study.yaml' (studies under '{w}/mlstore': ['orphan'])"),
    (["report", "orphan", "--storage", f"{W}/mlstore", "--out", f"{W}/rep"], "study 'orphan' has no MLflow parent run"),
    (["report", "nostudy", "--storage", f"{W}/adir", "--out", f"{W}/rep"], "no MLflow store at '{w}/adir/mlflow.db'"),
    (["report", "a/b", "--out", f"{W}/rep"], "study name 'a/b': expected a study's tune.name"),
    (["report", "--experiment", "nope", "--storage", f"{W}/mlstore", "--out", f"{W}/rep"],
     "--experiment 'nope': no such MLflow experiment"),
    (["report", "--experiment", "empty", "--storage", f"{W}/mlstore", "--out", f"{W}/rep"],
     "--experiment 'empty' holds no training runs"),
    (["report", "--runs", "0123abc", "--storage", f"{W}/mlstore", "--out", f"{W}/rep"],
     "--runs: unknown MLflow run id(s) ['0123abc']"),
    (["train", "--set", "env.id=my_cue:MyCue"], "cannot import module 'my_cue' of env 'my_cue:MyCue': it is neither "
     "installed nor in the current directory '{w}' (entry points resolve against the directory rllib-shm runs in"),
    (["report", "--out", f"{W}/rep"], "give exactly one of a study name, --experiment NAME or --runs ID"),
    (["report", "--runs", "0123abc", "--storage", f"{W}/mlstore"], "report: pass --out DIR (there is no default"),
    (["report", "orphan", "--storage", f"{W}/mlstore"], "study 'orphan' has no MLflow parent run"),
    (["ui", f"{W}/adir"], "MLflow store '{w}/adir': expected a tracking URI, an mlflow.db file"),
    (["ui", "http://127.0.0.1:9"], "MLflow tracking URI 'http://127.0.0.1:9' is not reachable"),
    (["report", "orphan", "--experiment", "empty", "--out", f"{W}/rep"], "give exactly one of a study name"),
    (["report", "orphan", "--storage", f"{W}/mlstore", "--out", f"{W}/rep", "--threshold", "high"],
     "--threshold 'high': expected a finite number"),
    (["report", "orphan", "--storage", f"{W}/mlstore", "--out", f"{W}/rep", "--threshold", "nan"],
     "--threshold 'nan': expected a finite number"),
    (["report", "orphan", "--storage", f"{W}/mlstore", "--out", f"{W}/reported"],
     "already holds report files ['report.md']: pass --force"),
    (["report", "orphan", "--storage", f"{W}/mlstore", "--out", f"{W}/taken.json"],
     "taken.json' is a file, expected a directory"),
    (["report", "orphan", "--storage", f"{W}/mlstore", "--out", f"{W}/rep", "--mlflow-uri", "http://127.0.0.1:9"],
     "MLflow tracking URI 'http://127.0.0.1:9' is not reachable"),
]


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_refused_cleanly(world, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(world)  # relative defaults (results/, bench_results/) would land here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the report's default store is under --storage
    argv = [part.replace(W, str(world)) for part in argv]
    before = snapshot(world)
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"rllib-shm {argv[0]}: error:")]
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert message.replace(W, str(world)) in lines[0], lines[0]
    assert snapshot(world) == before, "something was written or changed"


def test_at_least_forty_cases_cover_every_sub_command():
    from rllib_shm.cli.main import SUBCOMMANDS

    assert len(CASES) >= 40
    assert {argv[0] for argv, _ in CASES} == set(SUBCOMMANDS)
