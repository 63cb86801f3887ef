"""Stats: insight without tracking — click counts, issue and list figures, their charts.

- ``clicks`` — the owner of ``link_clicks`` and ``click_scanners`` (counts, never readers).
- ``counter`` — the web server's held clicks: a canary hit turns a client's clicks into a scanner's.
- ``figures`` — an issue's figures (delivered, bounced, complaints, unsubscribes, clicks) and the list's.
- ``page`` — one self-contained HTML page with SVG charts (no script, nothing fetched).

Sits below ``web`` and ``cli`` (they count and show) and above ``delivery`` and ``bounces``,
whose tables it reads only through their owners' named functions.
"""
