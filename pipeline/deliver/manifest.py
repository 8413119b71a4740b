"""The run folder's ``manifest.json``, as `reintegrate run` wrote it (`schemas.manifest`): what `send` reads to
know which referrals to email, with which documents and addresses.

`send` takes the entries as written (JSON), not loaded by the schema as `reviews` and the term register load
them: each entry is checked on its own (`prepare.prepare_entry`), so one entry an officer broke by hand fails
alone while the others are sent, and the substance `send` compares is hashed over the entry as written."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.errors import InputError


def read_manifest(run_dir: Path) -> dict:
    """The manifest of `run_dir`, with a list of referrals; `InputError` when the folder is not a run folder."""
    path = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise InputError(run_dir, "this is not a run folder (it does not exist or is not a folder)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "the run folder has no manifest.json, so it is not a run folder written by "
                               "'reintegrate run'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"the manifest cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("referrals", []), list):
        raise InputError(path, "the manifest has no list of referrals")
    return manifest
