"""Files that ship with reintegrate: the Word and email templates, the officers' guide, the example workbook.

One lookup for all of them, in one order: a source checkout's own folder first (`templates/`, `docs/`,
`examples/` beside `pipeline/`), else the copy a `pip install .` put inside the package (`pipeline/_templates`,
`pipeline/_docs`, `pipeline/_examples`: see `[tool.hatch.build.targets.wheel.force-include]` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent.parent  # the pipeline package


def shipped(relative: str) -> Path | None:
    """`relative` as in the repository (``"docs/getting-started.md"``, ``"templates"``), or None if missing."""
    top, _, rest = relative.partition("/")
    for candidate in (_HERE.parent / relative, _HERE / f"_{top}" / rest):
        if candidate.exists():
            return candidate
    return None


def guide_dir() -> Path | None:
    """The officers' guide (docs/), whose pages `reintegrate docs` lists and shows."""
    return shipped("docs")
