"""The embedded SQLite ledger: runs, input hashes, accepted referrals (for clause 3.9) and sends.

Each run is written in one transaction, so a crash leaves either the whole run or none of it. The ledger
is a record, not a store: every document lives in its run folder, so losing the ledger loses no documents
(only 3.9's memory of earlier returns and the record of what was already emailed).
UPNs are stored as SHA-256 digests: the ledger can match a returning pupil without holding the UPN.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from pipeline.core.errors import ConfigError
from pipeline.core.files import make_dir, tighten_outbox
from schemas.model import referral_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,            -- 'run' or 'validate'
    started_at  TEXT NOT NULL,
    input_name  TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    as_of       TEXT NOT NULL,
    run_dir     TEXT NOT NULL,
    rows        INTEGER NOT NULL,
    accepted    INTEGER NOT NULL,
    rejected    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_sha256 ON runs (sha256);
CREATE TABLE IF NOT EXISTS referrals (
    run_id        TEXT NOT NULL REFERENCES runs (run_id),
    referral_id   TEXT NOT NULL,
    upn_sha256    TEXT NOT NULL,
    planned_return TEXT NOT NULL,
    plan          TEXT,
    letter        TEXT,
    PRIMARY KEY (run_id, referral_id)
);
CREATE INDEX IF NOT EXISTS referrals_upn ON referrals (upn_sha256);
CREATE TABLE IF NOT EXISTS sends (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT NOT NULL,
    referral_id   TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    transport     TEXT NOT NULL,
    recipients    TEXT NOT NULL,
    status        TEXT NOT NULL,          -- 'sent', 'uncertain' (may have been sent), 'failed', 'blocked', 'drafted'
    detail        TEXT,
    at            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sends_referral ON sends (referral_id, content_sha256);

CREATE TABLE IF NOT EXISTS rejections (   -- rows a run or validate rejected: the term register's "waiting for a fix"
    run_id        TEXT NOT NULL REFERENCES runs (run_id),
    row           INTEGER,
    referral_id   TEXT,
    referral_key  TEXT,
    rules         TEXT NOT NULL           -- the rule ids that rejected it, e.g. "3.8, ME"
);
CREATE TABLE IF NOT EXISTS review_records (   -- what the latest `reviews` read for each pupil of a run
    run_id        TEXT NOT NULL,
    referral_key  TEXT NOT NULL,
    number        INTEGER,                -- NULL: an extra review the officer added
    scheduled     TEXT,
    date          TEXT NOT NULL,
    status        TEXT NOT NULL,          -- Scheduled, Held, Missed, Cancelled
    recorded_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_records_referral ON review_records (run_id, referral_key);
"""


def upn_digest(upn: str) -> str:
    return hashlib.sha256(upn.strip().upper().encode()).hexdigest()


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# columns added after the first release: (table, column, definition, how existing rows are filled)
MIGRATIONS = (
    ("sends", "referral_key", "TEXT", "lower(referral_id)"),  # Referral IDs compare case-insensitively
    ("sends", "substance", "TEXT", None),  # what the documents say, apart from run id and preparation date
    ("sends", "plan", "TEXT", None),  # the plan attached, relative to the run folder: which version went
    # for the term register (older rows have them NULL: the register reads that run's manifest instead)
    ("referrals", "referral_key", "TEXT", "lower(referral_id)"),
    ("referrals", "pupil", "TEXT", None),
    ("referrals", "receiving_school", "TEXT", None),
    ("referrals", "route", "TEXT", None),
    ("referrals", "reviews", "TEXT", None),  # the scheduled review dates, ISO, comma-separated
    ("referrals", "settling_in_end", "TEXT", None),
    ("referrals", "protected_until", "TEXT", None),  # clause 3.9: the end of the first full term back
    ("referrals", "substance", "TEXT", None),  # as `send` computes it: is the school's copy this version?
)

#: send statuses that mean the school has (or may have) the referral: never sent again unless --resend
DELIVERED = ("sent", "uncertain")


@dataclass(frozen=True)
class Delivery:
    """One earlier send (or draft) of a referral, newest first from `Ledger.deliveries`."""

    run_id: str
    status: str
    at: str
    substance: str | None
    content_sha256: str

    @property
    def day(self) -> str:
        return self.at[:10]


@dataclass(frozen=True)
class EarlierReturn:
    run_id: str
    referral_id: str
    planned_return: date


class Ledger:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        make_dir(self.path.parent)  # owner-only when we create it: run folders and the ledger live here
        tighten_outbox(self.path.parent)
        if self.path.is_symlink():  # a planted link would have us write pupils' records wherever it points
            raise ConfigError(f"the ledger {self.path} is a symbolic link, which reintegrate never makes; remove it "
                              "(or point `ledger` in reintegrate.toml at the real file) and run again")
        if not self.path.exists():
            # created owner-only before SQLite writes a byte into it
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a ledger made by an earlier version lacks (its rows kept)."""
        with self.transaction() as db:
            for table, column, kind, fill in MIGRATIONS:
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                    if fill:
                        db.execute(f"UPDATE {table} SET {column} = {fill}")
            db.execute("CREATE INDEX IF NOT EXISTS sends_key ON sends (referral_key)")
            db.execute("CREATE INDEX IF NOT EXISTS referrals_key ON referrals (referral_key)")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        with self.db:  # commits on success, rolls back on any exception
            yield self.db

    def record_run(self, run: dict, referrals: list[dict], rejections: list[dict] = ()) -> None:
        """One run, its accepted referrals and its rejected rows, in one transaction.

        `run` has the runs columns; each referral has referral_id, upn, planned_return (date), plan, letter and,
        for the term register, pupil, receiving_school, route, reviews (dates), settling_in_end and
        protected_until (dates or None); each rejection has row, referral_id (or None) and rules (rule ids).
        """
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs VALUES (:run_id, :kind, :started_at, :input_name, :sha256, :as_of, :run_dir,"
                " :rows, :accepted, :rejected)",
                run,
            )
            db.executemany(
                "INSERT INTO referrals (run_id, referral_id, upn_sha256, planned_return, plan, letter, referral_key,"
                " pupil, receiving_school, route, reviews, settling_in_end, protected_until, substance)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (run["run_id"], r["referral_id"], upn_digest(r["upn"]), r["planned_return"].isoformat(),
                     r.get("plan"), r.get("letter"), referral_key(r["referral_id"]), r.get("pupil"),
                     r.get("receiving_school"), r.get("route"), ",".join(d.isoformat() for d in r.get("reviews", ())),
                     _iso(r.get("settling_in_end")), _iso(r.get("protected_until")), r.get("substance"))
                    for r in referrals
                ],
            )
            db.executemany(
                "INSERT INTO rejections (run_id, row, referral_id, referral_key, rules) VALUES (?, ?, ?, ?, ?)",
                [(run["run_id"], r.get("row"), r.get("referral_id"),
                  referral_key(r["referral_id"]) if r.get("referral_id") else None, ", ".join(r["rules"]))
                 for r in rejections],
            )

    def record_reviews(self, run_id: str, pupils: dict[str, list[tuple]]) -> None:
        """What `reviews` read from a run's tracker: for each Referral ID, its reviews as (number, scheduled date,
        date, status). Replaces what an earlier `reviews` of the same run recorded for those pupils."""
        at = now_iso()
        with self.transaction() as db:
            for referral_id, reviews in pupils.items():
                key = referral_key(referral_id)
                db.execute("DELETE FROM review_records WHERE run_id = ? AND referral_key = ?", (run_id, key))
                db.executemany(
                    "INSERT INTO review_records VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, key, number, _iso(scheduled), _iso(when), status, at)
                     for number, scheduled, when, status in reviews],
                )

    def earlier_returns(self, upn: str, other_than_referral: str) -> list[EarlierReturn]:
        """Planned returns recorded by earlier runs for this pupil under another Referral ID (clause 3.9)."""
        rows = self.db.execute(
            "SELECT referrals.run_id, referral_id, planned_return FROM referrals JOIN runs USING (run_id)"
            " WHERE upn_sha256 = ? AND runs.kind = 'run' ORDER BY planned_return",
            (upn_digest(upn),),
        ).fetchall()
        own = referral_key(other_than_referral)  # `l4` is `L4`: its own earlier run, not another referral
        return [EarlierReturn(r[0], r[1], date.fromisoformat(r[2])) for r in rows if referral_key(r[1]) != own]

    def run_for_input(self, sha256: str, kind: str = "run") -> str | None:
        """The earliest run that processed an input with this hash, if any."""
        row = self.db.execute(
            "SELECT run_id FROM runs WHERE sha256 = ? AND kind = ? ORDER BY run_id LIMIT 1", (sha256, kind)
        ).fetchone()
        return row[0] if row else None

    def run_info(self, run_id: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row)) if row else None

    # --- sends (section 6) ---
    def was_sent(self, referral_id: str, content_sha256: str) -> bool:
        """Whether exactly these attachments went to the school for this referral (any run)."""
        return any(d.status == "sent" and d.content_sha256 == content_sha256 for d in self.deliveries(referral_id))

    def deliveries(self, referral_id: str, statuses=DELIVERED + ("drafted",)) -> list[Delivery]:
        """Every earlier send of this referral, across all runs, newest first (Referral ID case-insensitive)."""
        marks = ", ".join("?" for _ in statuses)
        rows = self.db.execute(
            f"SELECT run_id, status, at, substance, content_sha256 FROM sends WHERE referral_key = ?"
            f" AND status IN ({marks}) ORDER BY id DESC",
            (referral_key(referral_id), *statuses),
        ).fetchall()
        return [Delivery(*row) for row in rows]

    def record_send(self, *, run_id: str, referral_id: str, content_sha256: str, transport: str,
                    recipients: list[str], status: str, detail: str | None = None,
                    substance: str | None = None, plan: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sends (run_id, referral_id, content_sha256, transport, recipients, status, detail, at,"
                " referral_key, substance, plan) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, referral_id, content_sha256, transport, ", ".join(recipients), status, detail, now_iso(),
                 referral_key(referral_id), substance, plan),
            )
