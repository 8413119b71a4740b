"""The two ways a review tracker cannot be applied to a run, each an `InputError` (exit code 2, nothing written)."""

from __future__ import annotations

from pipeline.core.errors import InputError

__all__ = ["TrackerMismatchError", "UnknownRunError"]


class TrackerMismatchError(InputError):
    """The tracker's rows do not fit its run (a Referral ID or a review number the run never had)."""


class UnknownRunError(InputError):
    """The tracker's run cannot be found (no run id, or no such run folder)."""
