"""Settings from `reintegrate.toml` (working directory) or `--config FILE`.

Every key is optional; the defaults make the tool work from any folder with the shipped templates and
Havering's term dates. Paths in the file are relative to the file's own folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from marshmallow import ValidationError

from pipeline.core.errors import ConfigError
from schemas.config import CONFIG_SCHEMA, first_problem

CONFIG_NAME = "reintegrate.toml"


@dataclass(frozen=True)
class Config:
    outbox: Path = Path("outbox")
    inbox: Path = Path("inbox")
    templates_dir: Path | None = None  # None: ./templates if present, else the shipped templates
    term_dates: Path | None = None  # None: the shipped Havering term dates
    ledger: Path | None = None  # None: <outbox>/ledger.sqlite3
    workers: int | None = None  # None: chosen from the machine and the batch size
    pdf: bool = False
    email: dict = field(default_factory=dict)
    source: Path | None = None  # the file these settings came from

    def __post_init__(self):
        # accept plain strings from Python callers
        for name in ("outbox", "inbox", "templates_dir", "term_dates", "ledger", "source"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    @property
    def ledger_path(self) -> Path:
        return self.ledger or (self.outbox / "ledger.sqlite3")

    def ledger_of(self, run_dir: str | Path) -> Path:
        """The ledger a run folder was recorded in: the configured one, else the one in the outbox holding it."""
        return self.ledger or (Path(run_dir).resolve().parent / "ledger.sqlite3")

    def templates(self) -> Path | None:
        if self.templates_dir:
            return self.templates_dir
        local = Path("templates")
        return local if (local / "reintegration-plan.docx").is_file() else None


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file; with no path, `reintegrate.toml` in the working directory if it exists. Each
    setting is checked by `schemas.config.ConfigSchema`; the first problem is a `ConfigError`."""
    if path is None:
        path = Path(CONFIG_NAME)
        if not path.is_file():
            return Config()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: the config file does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: not a valid TOML file ({exc})") from None
    try:
        values = CONFIG_SCHEMA.load(data)
    except ValidationError as err:
        raise ConfigError(f"{path.name}: {first_problem(err.messages)}") from None
    base = path.parent

    def as_path(key):
        return None if values[key] is None else _beside(values[key], base)

    email = values["email"]
    if isinstance(email.get("ca_file"), str) and email["ca_file"].strip():
        email = {**email, "ca_file": str(_beside(email["ca_file"].strip(), base))}
    return Config(
        outbox=as_path("outbox") or Config.outbox,
        inbox=as_path("inbox") or Config.inbox,
        templates_dir=as_path("templates_dir"),
        term_dates=as_path("term_dates"),
        ledger=as_path("ledger"),
        workers=values["workers"],
        pdf=values["pdf"],
        email=email,
        source=path,
    )


def _beside(text: str, base: Path) -> Path:
    """A path from the config file, like every path in it: relative to the file's own folder."""
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p
