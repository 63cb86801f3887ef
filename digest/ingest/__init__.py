"""Ingest: sources (feeds, article files) → rows of the ``articles`` table.

Entry point: :func:`digest.ingest.sources.ingest_sources` (``digest ingest``, and the
ingest step of ``digest run``); ``feeds`` manages the stored sources.

- ``sources`` — read every given source (or every stored feed) into ``articles``.
- ``source_read`` — one source: fetch it, sniff what it is, parse and normalise it.
- ``fetch`` — the bytes of a source: HTTP(S) with limits and conditional GET, or a file.
- ``feed_entries`` — feed bytes → article inputs (RSS, Atom, RDF through feedparser).
- ``article_files`` — article files (JSON, JSON Lines, CSV) → article inputs.
- ``sanitize`` — untrusted feed HTML → a small email-safe fragment, text and summary.
- ``images`` — an entry's lead image, chosen at ingest and kept as JSON on the article.
- ``urls`` — article links: tracking parameters and redirect wrappers removed, identity form.
- ``image_sizes`` — a lead image without a stated size, measured from its first bytes.
- ``bylines`` — a feed's author field → a name, never an address.
- ``feeds`` — the ``feeds`` table: the stored sources.
- ``articles`` — the ``articles`` table: identity, normalisation, the one writer.
- ``categories`` — the categories a workspace knows (what a subscriber may follow).
- ``category_names`` — a category as stored: cleaned, mapped through the aliases, spelled as configured.

Imports only the kernel. This module defines nothing.
"""
