"""Render: a frozen issue → email HTML and plain text, once per variant (category set).

Entry points: :func:`digest.render.variants.render_issue` and
:func:`digest.render.variants.stored_variant` (render once, store, read back);
:mod:`digest.render.archive` for the public archive's pages and feed.

- ``variants`` — render an issue per variant and freeze what is sent (``issue_variants``).
- ``context`` — the template context an issue's templates see (and ``brand_context``, the
  brand the transactional mail shares).
- ``lead`` — which story opens an issue (the editor's lead, else the first).
- ``templating`` — where Jinja templates are found (override folder, then bundled) and rendering one.
- ``email_html`` — MJML → email HTML (mjml-python), then inline CSS (premailer).
- ``size_budget`` — an issue's HTML size on the wire, and what is cut first.
- ``wire`` — a part as sent: quoted-printable with whole placeholders or base64, the shorter.
- ``guard`` — content never stops an issue: leave out the articles that break the HTML.
- ``personalise`` — the placeholders render leaves and mail fills per recipient.
- ``archive`` — archive pages, previous/next links, the Atom feed, issue test links.

Imports compose, summary, ingest, subscribers and the kernel. This module defines nothing.
"""
