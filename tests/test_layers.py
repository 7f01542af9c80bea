"""The layers of ARCHITECTURE.md §2, checked on the source: imports point downward only.

Every module of ``rllib_shm`` and ``envs`` is parsed (``ast``, no import), and each import of a
project package or of a third-party library is checked against its layer's allowance. Lazy
imports inside functions count too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer -> project layers it may import (itself included)
PROJECT_ALLOWED = {
    "memory": {"memory"},
    "envs": {"envs"},
    "rllib": {"memory", "envs", "rllib"},
    "config": {"memory", "rllib", "config"},
    "locking": {"locking"},  # driver and store-creation locks (standard library only)
    "interrupts": {"interrupts"},  # signals held while a final state is written (standard library only)
    "tracking": {"config", "locking", "tracking"},
    "ray_session": {"ray_session"},
    "files": {"files"},  # whole-file writes and output claims (standard library only)
    "drawing": {"files", "drawing"},
    "runs": {"memory", "envs", "rllib", "config", "tracking", "ray_session", "files", "interrupts", "drawing", "runs"},
    "studies": {"memory", "envs", "rllib", "config", "tracking", "ray_session", "files", "locking", "interrupts",
                "runs", "studies"},
    "reports": {"memory", "envs", "rllib", "config", "tracking", "files", "runs", "studies", "reports"},
    # bench study reads study files
    "bench": {"memory", "rllib", "config", "files", "runs", "studies", "export", "bench"},
    "export": {"memory", "envs", "rllib", "config", "files", "runs", "export"},
    "cli": {"memory", "envs", "rllib", "config", "tracking", "ray_session", "files", "locking", "interrupts", "runs",
            "studies", "reports", "bench", "export", "cli"},
}
# layer -> third-party top-level packages (or dotted prefixes) it must not import
FORBIDDEN = {
    "memory": {"ray", "gymnasium", "mlflow", "optuna", "matplotlib"},
    "envs": {"ray", "torch", "mlflow", "optuna"},
    "rllib": {"ray.tune.tuner", "ray.tune.search", "ray.tune.schedulers", "optuna", "mlflow"},
    "config": {"ray.tune", "optuna", "mlflow"},
    "tracking": {"ray", "optuna"},
    "files": {"ray", "torch", "gymnasium", "mlflow", "optuna", "matplotlib", "numpy"},
    "locking": {"ray", "torch", "gymnasium", "mlflow", "optuna", "matplotlib", "numpy"},
    "interrupts": {"ray", "torch", "gymnasium", "mlflow", "optuna", "matplotlib", "numpy"},
    "drawing": {"ray", "torch", "gymnasium", "mlflow", "optuna"},  # numpy + matplotlib only
    "runs": {"optuna", "ray.tune.search", "ray.tune.schedulers"},
    "bench": {"optuna", "mlflow"},
    "export": {"ray.tune", "optuna", "mlflow"},
    "reports": {"ray", "optuna"},  # a report reads MLflow only
}
# single modules with a stricter rule
FORBIDDEN_IN_MODULE = {
    "rllib_shm/export/runtime.py": {"torch", "ray"},  # runs an exported policy with numpy + onnxruntime only
}


def layer_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] == "envs":
        return "envs"
    return parts[1]  # rllib_shm/<layer>/... or rllib_shm/<module>.py


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.append("<relative>" + (node.module or ""))
    return names


MODULES = sorted(p for p in [*ROOT.joinpath("rllib_shm").rglob("*.py"), *ROOT.joinpath("envs").glob("*.py")]
                 if p.name != "__init__.py" or p.parent.name != "rllib_shm")


def test_every_layer_is_known():
    assert {layer_of(p) for p in MODULES} == set(PROJECT_ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_downward(path):
    layer = layer_of(path)
    problems = []
    for name in imports(path):
        if name.startswith("<relative>"):
            if layer not in ("memory", "envs"):  # the two leaf packages use relative imports internally
                problems.append(f"relative import {name[10:]!r}")
            continue
        if name.startswith("rllib_shm.") or name == "rllib_shm":
            target = name.split(".")[1] if "." in name else "rllib_shm"
            if target not in PROJECT_ALLOWED[layer]:
                problems.append(f"{name} (layer {target!r} is not below {layer!r})")
        elif name.split(".")[0] == "envs" and "envs" not in PROJECT_ALLOWED[layer]:
            problems.append(f"{name} (layer 'envs' is not below {layer!r})")
        rules = FORBIDDEN.get(layer, set()) | FORBIDDEN_IN_MODULE.get(str(path.relative_to(ROOT)), set())
        for forbidden in rules:
            if name == forbidden or name.startswith(forbidden + "."):
                problems.append(f"{name} (the {layer!r} layer must not import {forbidden})")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)
