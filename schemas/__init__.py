"""Marshmallow schemas: what a referral row and a tracker row look like. Nothing here knows the calendar or
the ledger; rules that need them live in `pipeline.check.rules`."""
