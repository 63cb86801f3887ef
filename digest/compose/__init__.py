"""Compose: an edition's articles for a period → a numbered, frozen issue.

Entry point: :func:`digest.compose.build.compose_issue` (``digest issues build``, and
the build step of ``digest run``); :mod:`digest.compose.issues` names and reads issues.

- ``build`` — pick an edition's articles for a period and freeze them as an issue.
- ``issues`` — the ``issues`` and ``issue_articles`` tables: names (``daily/3``), reads, writes.
- ``periods`` — an edition's scheduled times, where each period starts, how dates read.
- ``stories`` — one card per story: group the articles that report the same story.
- ``memory`` — stories an earlier issue of the edition sent: held back, or marked "Update:".
- ``stories_eval`` — measure the story rule on labelled article pairs (``bench/stories.py``).
- ``subject`` — the subject line and inbox preheader.
- ``notes`` — the editor's note at the top of one issue.

Imports summary, ingest and the kernel. This module defines nothing.
"""
