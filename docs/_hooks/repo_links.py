"""mkdocs hook: links from a page to a file of the repository outside ``docs/`` work in the site.

The pages are read on GitHub too, where ``[study](../../tune_configs/quickstart.yaml)`` opens the
study file. mkdocs knows only the files under ``docs/``, so such a link would be reported as not
found (and fail ``mkdocs build --strict``). This hook:

- ``on_files``: follows every relative link of every page (and of the Markdown files it adds) and
  adds each existing repository file it reaches outside ``docs/`` to the site under ``repo/<path>``
  (a Markdown file becomes a page there, its own links handled the same way);
- ``on_page_markdown``: rewrites those links to the added copies.

A link to a file that exists nowhere is left as written, so mkdocs still reports it (strict fails).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
PREFIX = "repo"


def _roots(config) -> tuple[Path, Path]:
    docs = Path(config["docs_dir"]).resolve()
    return docs, docs.parent


def _targets(source: Path, text: str):
    """(link as written, its path without anchor, the file it resolves to) for each relative link."""
    for match in LINK.finditer(FENCE.sub("", text)):
        url = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith(("#", "/")):
            continue
        path = url.split("#", 1)[0].split("?", 1)[0]
        if path:
            yield url, path, (source.parent / path).resolve()


def _outside(target: Path, docs: Path, root: Path) -> bool:
    return target.is_file() and target.is_relative_to(root) and not target.is_relative_to(docs)


def on_files(files: Files, config) -> Files:
    docs, root = _roots(config)
    queue = [Path(f.abs_src_path) for f in files if f.src_uri.endswith(".md") and f.abs_src_path]
    added: set[Path] = set()
    while queue:
        source = queue.pop()
        for _, _, target in _targets(source, source.read_text(encoding="utf-8")):
            if _outside(target, docs, root) and target not in added:
                added.add(target)
                uri = f"{PREFIX}/{target.relative_to(root).as_posix()}"
                files.append(File.generated(config, uri, abs_src_path=str(target)))
                if target.suffix == ".md":
                    queue.append(target)
    return files


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    docs, root = _roots(config)
    source = Path(page.file.abs_src_path).resolve()
    page_dir = posixpath_dir(page.file.src_uri)

    def rewrite(match: re.Match) -> str:
        for written, path, target in _targets(source, match.group(0)):
            if target.is_relative_to(docs) and source.is_relative_to(docs):
                return match.group(0)
            if target.is_relative_to(docs):
                uri = target.relative_to(docs).as_posix()
            elif _outside(target, docs, root):
                uri = f"{PREFIX}/{target.relative_to(root).as_posix()}"
            else:
                return match.group(0)
            new = os.path.relpath(uri, page_dir or ".").replace(os.sep, "/") + written[len(path):]
            return f"{match.group(1)}{new}{match.group(3)}"
        return match.group(0)

    pieces, last = [], 0
    for fence in FENCE.finditer(markdown):  # links inside code blocks are code, not links
        pieces += [LINK.sub(rewrite, markdown[last:fence.start()]), fence.group(0)]
        last = fence.end()
    return "".join([*pieces, LINK.sub(rewrite, markdown[last:])])


def posixpath_dir(uri: str) -> str:
    return uri.rsplit("/", 1)[0] if "/" in uri else ""
