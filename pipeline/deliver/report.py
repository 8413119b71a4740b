"""What a send did: `SendResult` for one referral, `SendReport` for a run folder (its lines, summary and exit
code). Nothing in either names a pupil: Referral IDs, addresses and run-folder file names only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pipeline.core.errors import ExitCode


@dataclass(frozen=True)
class SendResult:
    """What happened to one referral's message (no pupil data: referral id, addresses, file names)."""

    referral_id: str
    reason: str
    to: str = ""
    cc: str = ""
    attachments: tuple[str, ...] = ()


@dataclass
class SendReport:
    """One run folder's send: each referral's result, filed under what happened to it."""

    run_id: str
    transport: str
    dry_run: bool = False
    sent: list[SendResult] = field(default_factory=list)
    drafted: list[SendResult] = field(default_factory=list)
    skipped: list[SendResult] = field(default_factory=list)
    blocked: list[SendResult] = field(default_factory=list)
    failed: list[SendResult] = field(default_factory=list)
    planned: list[SendResult] = field(default_factory=list)  # dry run: what would be sent or drafted
    uncertain: list[SendResult] = field(default_factory=list)  # this send: the server may have accepted it

    PROBLEMS = ("blocked", "failed", "uncertain")  # what the officer must act on

    @property
    def exit_code(self) -> ExitCode:
        """ACT when any message was not (surely) sent: blocked, failed or maybe sent; OK when all were sent or
        nothing was left."""
        return ExitCode.ACT if any(getattr(self, name) for name in self.PROBLEMS) else ExitCode.OK

    def summary(self) -> str:
        maybe = f", {len(self.uncertain)} may have been sent" if self.uncertain else ""
        if self.dry_run:
            verb = "would be drafted" if self.transport == "files" else "would be sent"
            done = "already drafted or sent" if self.transport == "files" else "already sent"
            return (f"Dry run: {len(self.planned)} {verb}, {len(self.skipped)} {done}, "
                    f"{len(self.blocked)} blocked, {len(self.failed)} failed; nothing was sent.")
        return (f"{len(self.sent)} sent, {len(self.drafted)} drafted, {len(self.skipped)} skipped, "
                f"{len(self.blocked)} blocked, {len(self.failed)} failed{maybe}.")

    def entries(self) -> list[tuple[str, SendResult]]:
        """(what happened, result) for each referral, in report order; what happened is one of "planned",
        "sent", "drafted", "skipped", or a problem in `PROBLEMS`."""
        return [(name, r) for name in ("planned", "sent", "drafted", "skipped", "blocked", "failed", "uncertain")
                for r in getattr(self, name)]

    _LABELS = {"sent": "sent", "drafted": "drafted", "skipped": "skipped", "blocked": "BLOCKED",
               "failed": "FAILED", "uncertain": "MAY HAVE BEEN SENT"}

    def line(self, what: str, result: SendResult) -> str:
        label = ("would send" if self.transport == "smtp" else "would draft") if what == "planned" \
            else self._LABELS[what]
        return f"{result.referral_id}: {label}: {result.reason}"

    def lines(self) -> list[str]:
        """One line per referral, then the summary: what the CLI prints."""
        return [self.line(what, r) for what, r in self.entries()] + [self.summary()]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data
