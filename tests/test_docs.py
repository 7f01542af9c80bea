"""The README and the documentation site say true things: links resolve, the site builds with
``mkdocs build --strict``, and the commands and examples of README.md and docs/getting-started.md work.

- every relative link of README.md, docs/**.md and cluster/README.md reaches an existing file (an
  anchor into a Markdown file, one of its headings);
- every ``python`` block of the checked pages runs (one process per page, no Ray started);
- every ``bash`` block's command is known and valid without running it: ``rllib-shm ...`` is
  parsed by the real argument parser, its study or config file is loaded and checked as the
  command would (``load_study`` / ``load_config`` with the ``--set`` overrides), files it names
  exist unless they are placeholders (``<...>``) or outputs; ``pip install -e ".[x]"`` names
  extras pyproject.toml defines; ``mlflow ui`` takes the options given.

The ONNX example of docs/export.md runs on a real export in tests/test_export.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED_PAGES = [ROOT / "README.md", ROOT / "docs" / "getting-started.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# commands a page may show that need no check beyond being these
SHELL_STEPS = {("python3.11", "-m", "venv", ".venv"), (".", ".venv/bin/activate"), ("pytest",)}
# flags whose value is a file the command writes, not one that must exist
OUTPUT_FLAGS = {"--out", "--output", "--record-memory", "--storage"}


def markdown_pages() -> list[Path]:
    docs = [p for p in (ROOT / "docs").rglob("*.md") if "_hooks" not in p.parts]
    return [ROOT / "README.md", ROOT / "cluster" / "README.md", *sorted(docs)]


def code_blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (mkdocs), which GitHub's agrees with for plain headings."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*?)\s*#*$", text, re.M)}


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for url in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith("/"):
            continue
        path, _, anchor = url.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{url} (no {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target})")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{url} (no heading #{anchor} in {target.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "episode_return_max_mean" in readme.split("## ")[0], "the main metric is defined before the first section"
    for page in ("getting-started", "studies", "evaluation", "cluster"):
        assert f"](docs/{page}.md)" in readme, f"the README links docs/{page}.md"


def commands(page: Path) -> list[list[str]]:
    """Every command of the page's bash blocks: continuations joined, comments dropped, ``&&`` split."""
    found = []
    for block in code_blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                step = words[: words.index("&&")] if "&&" in words else words
                words = words[len(step) + 1:]
                found.append(step)
    return found


def check_rllib_shm(argv: list[str], capsys) -> None:
    from rllib_shm.cli.main import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"rllib-shm {shlex.join(argv)}: {capsys.readouterr().err.strip()}") from None
    overrides = getattr(args, "overrides", [])
    if args.command == "tune":
        from rllib_shm.studies.study import load_study

        load_study(ROOT / args.study, overrides)
    elif args.command == "train":
        from rllib_shm.config.loading import load_config

        load_config(ROOT / args.config if getattr(args, "config", None) else None, overrides)
    skip = False
    for word in argv:
        if skip or word.startswith("-") or "<" in word:
            skip = word in OUTPUT_FLAGS or word == "--set"
            continue
        if "/" in word or word.endswith((".yaml", ".yml")):
            assert (ROOT / word).exists(), f"rllib-shm {shlex.join(argv)}: no file {word}"


def check_pip(argv: list[str]) -> None:
    assert argv[:3] == ["pip", "install", "-e"], argv
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    target = argv[3]
    match = re.fullmatch(r"\.(?:\[([\w,]+)\])?", target)
    assert match, f"pip install -e {target}: not this project"
    for extra in filter(None, (match.group(1) or "").split(",")):
        assert extra in extras, f"pip install -e {target}: no extra {extra!r} in pyproject.toml"


def check_mlflow(argv: list[str]) -> None:
    import click
    from mlflow.cli import cli

    command = cli.get_command(click.Context(cli), argv[1])  # resolves aliases (``ui`` is ``server``)
    assert command is not None, f"mlflow {argv[1]}: no such command"
    options = {opt for param in command.params for opt in param.opts}
    given = {word for word in argv[2:] if word.startswith("--")}
    assert given <= options, f"mlflow {argv[1]}: unknown options {sorted(given - options)}"


@pytest.mark.parametrize("page", CHECKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_are_valid(page, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    checked = commands(page)
    assert checked, f"{page.relative_to(ROOT)} shows no commands"
    for argv in checked:
        if argv[0] == "rllib-shm":
            check_rllib_shm(argv[1:], capsys)
        elif argv[0] == "pip":
            check_pip(argv)
        elif argv[0] == "mlflow":
            check_mlflow(argv)
        else:
            assert tuple(argv) in SHELL_STEPS, f"{page.relative_to(ROOT)}: unchecked command {shlex.join(argv)}"


@pytest.mark.parametrize("page", [p for p in CHECKED_PAGES if code_blocks(p, "python")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples_run(page, tmp_path):
    code = "\n".join(code_blocks(page, "python"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is in the dev extra")
def test_site_builds_strict(tmp_path):
    """``mkdocs build --strict`` (as .ci/run): broken links, missing anchors, unresolved API references fail."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "memory" / "index.html").read_text().count("SHMCell") > 0
