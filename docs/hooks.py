"""MkDocs hook: the site's pages that live outside ``docs/`` — the README as the home page,
``models/*.md``, the instances' and benchmarks' READMEs (with their figures), the changelog,
the licence and the citation file — are read from where they are in the repository, never
copied into it. Links are written for the repository (``README.md`` → ``docs/tables.md``,
``docs/tables.md`` → ``../models/README.md``) and rewritten for the site, where ``docs/``
is the root."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
#: site path → repository path
PAGES = {
    "index.md": "README.md",
    "CHANGELOG.md": "CHANGELOG.md",
    "LICENSE": "LICENSE",
    "CITATION.cff": "CITATION.cff",
    "instances/README.md": "instances/README.md",
    "benchmarks/README.md": "benchmarks/README.md",
}


def _sources() -> dict[str, Path]:
    out = {uri: ROOT / path for uri, path in PAGES.items()}
    out.update({f"models/{p.name}": p for p in sorted((ROOT / "models").glob("*.md"))})
    out.update(
        {
            f"benchmarks/results/{p.name}": p
            for p in sorted((ROOT / "benchmarks/results").glob("*.png"))
        }
    )
    return out


def on_files(files: Files, config: Any) -> Files:
    for uri, path in _sources().items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    uri = page.file.src_uri
    if uri == "index.md":  # the README links docs/X as the site's X
        return re.sub(r"\]\(docs/", "](", markdown)
    if "/" not in uri and uri not in PAGES:  # a page of docs/ links ../X as the site's X
        return re.sub(r"\]\(\.\./", "](", markdown)
    return markdown
