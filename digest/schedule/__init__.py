"""Schedule: do what is due at a moment (bounces, ingest, build, deliver) and record it.

Entry points: :func:`digest.schedule.run.run_due` (``digest run``) and
:func:`digest.schedule.scheduler.serve` (``digest schedule run``, the long-running
scheduler).

- ``run`` — one scheduled run: read bounces, ingest, build what is due, deliver, upkeep.
- ``scheduler`` — the long-running scheduler and the listing of next fire times.
- ``overdue`` — the issues that should have gone out and have not.
- ``run_records`` — the ``runs`` table: a run's row opened at its start, closed at its end.
- ``run_report`` — what one run did (:class:`~digest.schedule.run_report.RunReport`).

Imports delivery, bounces, signup and the layers below. This module defines nothing.
"""
