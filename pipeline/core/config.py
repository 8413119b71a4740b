"""Settings from `reintegrate.toml` (working directory) or `--config FILE`.

Every key is optional; the defaults make the tool work from any folder with the shipped templates and
Havering's term dates. Paths in the file are relative to the file's own folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import ConfigError

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

    def templates(self) -> Path | None:
        if self.templates_dir:
            return self.templates_dir
        local = Path("templates")
        return local if (local / "reintegration-plan.docx").is_file() else None


_KEYS = {"outbox", "inbox", "templates_dir", "term_dates", "ledger", "workers", "pdf", "email"}


def _boolean(data: dict, key: str, path: Path) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):  # "false" in quotes is a non-empty string, which Python calls true
        raise ConfigError(f"{path.name}: '{key}' must be true or false, without quotes")
    return value


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file; with no path, `reintegrate.toml` in the working directory if it exists."""
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
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{path.name}: unknown setting(s) {', '.join(sorted(unknown))}; see reintegrate.example.toml")
    base = path.parent

    def as_path(key):
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{path.name}: '{key}' must be a folder or file path in quotes")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    workers = data.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"{path.name}: 'workers' must be a whole number of at least 1")
    email = data.get("email", {})
    if not isinstance(email, dict):
        raise ConfigError(f"{path.name}: [email] must be a table of settings")
    if isinstance(email.get("ca_file"), str) and email["ca_file"].strip():  # like every path: from this file's folder
        ca_file = Path(email["ca_file"].strip()).expanduser()
        email = {**email, "ca_file": str(ca_file if ca_file.is_absolute() else base / ca_file)}
    return Config(
        outbox=as_path("outbox") or Config.outbox,
        inbox=as_path("inbox") or Config.inbox,
        templates_dir=as_path("templates_dir"),
        term_dates=as_path("term_dates"),
        ledger=as_path("ledger"),
        workers=workers,
        pdf=_boolean(data, "pdf", path),
        email=email,
        source=path,
    )
