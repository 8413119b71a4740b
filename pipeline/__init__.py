"""reintegrate: referral spreadsheets in, validated reintegration plans, letters and a review tracker out.

The library doubles as the example of using the tool from Python::

    from pipeline.run import run_file
    result = run_file("referrals.xlsx", outbox="outbox")
"""

__version__ = "0.1.0"
