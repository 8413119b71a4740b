"""What happened to one input (processed, failed, duplicate or put back in the inbox): its exit code and the
one log line the watcher prints for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.core.errors import ExitCode
from pipeline.watch.layout import DUPLICATES


@dataclass(frozen=True)
class Outcome:
    """What happened to one input. `status`: processed, failed, duplicate, or returned (put back in the inbox)."""
    name: str
    status: str
    dest: Path | None = None
    run_id: str | None = None
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    reason: str | None = None  # failed: the note's sentence; duplicate: the earlier run
    summary: str | None = None  # for the log: never the file's content
    recovered: bool = False
    run_dir: str | None = None  # processed: the run folder, whose validation report lists the rejected rows

    @property
    def exit_code(self) -> ExitCode | None:
        """The code `reintegrate run` would exit with for this file (0 all accepted, 1 rows rejected, 2 unreadable);
        None for a file put back in the inbox (it was not taken)."""
        return {"processed": ExitCode.ACT if self.rejected else ExitCode.OK, "failed": ExitCode.UNREADABLE,
                "duplicate": ExitCode.OK}.get(self.status)

    def line(self) -> str:
        """The log line: time, file, run id, counts; no pupil's name (a file's content never gets here)."""
        at = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        dest = self.dest.name if self.dest else ""
        if self.status == "processed":
            text = (f"run {self.run_id}: {self.rows} rows, {self.accepted} accepted, {self.rejected} rejected"
                    f" -> processed/{self.run_id}/")
            if self.rejected:  # processed, but not done with: say where the rows to fix are listed
                report = f"{self.run_dir}/validation-report.xlsx" if self.run_dir else "its validation-report.xlsx"
                text += (f"; {self.rejected} row{'s' if self.rejected != 1 else ''} REJECTED: fix the cells listed in "
                         f"{report} and save the workbook into the inbox again")
        elif self.status == "failed":
            text = f"failed -> failed/{dest}: {self.summary or self.reason}"
        elif self.status == "duplicate":
            text = f"duplicate of run {self.run_id}, not processed again -> processed/{DUPLICATES}/{dest}"
        else:
            text = f"{self.summary or 'interrupted'}; back in the inbox as {dest}"
        return f"{at} {self.name}: {text}{' (recovered after an interruption)' if self.recovered else ''}"
