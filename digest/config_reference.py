"""``digest config reference``: every key of ``digest.toml`` with its type, default,
environment variable and meaning.

Keys, types and defaults are read from the config's own dataclasses (:mod:`digest.config`),
so the reference lists exactly what the loader accepts; only the meanings are written here,
in :data:`MEANINGS`, and a test fails when a key has none (or a meaning names no key).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from digest.config import CONFIG_SECTIONS, ENV_SHORTCUTS, FILE_SPELLINGS, Edition

EDITION_SECTION = "editions.NAME"
"""How the reference names an edition's table: ``[editions.daily]``, ``[editions.weekly]``…"""

MEANINGS: dict[str, str] = {
    "publication.editors": (
        "Addresses that get an issue's review link when its edition needs approval (each must also be "
        "added with `digest editors add` to sign in to the desk)."
    ),
    "render.logo": (
        "A PNG, JPEG or GIF in the workspace (under 1 MB), shown at its real size above the issue and "
        "published at <base_url>/assets/logo.<ext>; its alt text is the publication's name."
    ),
    "render.accent_color": (
        "The brand colour of links and headings (#rrggbb); refused when under 4.5:1 against the card."
    ),
    "render.accent_color_dark": "The accent in dark mode; empty: the accent, lightened to 7:1.",
    "render.masthead": "A line under the logo (a motto, the edition's promise).",
    "render.font": "The typeface: sans, serif, system or humanist (safe stacks, no web fonts).",
    "render.greeting": 'The greeting of a reader with a name, e.g. "Good morning, {first_name}!".',
    "render.greeting_anonymous": 'The greeting of a reader without a name, e.g. "Good morning!".',
    "editions.NAME.approval": (
        '"required": an issue goes only once an editor approved it; "none": as built.'
    ),
    "editions.NAME.review_before": (
        "How long before the send time the draft is built and its review link mailed (e.g. 2h)."
    ),
    "editions.NAME.on_timeout": (
        '"hold": an unapproved issue waits (every run says so, exit 1); "send": it goes as built.'
    ),
    "bounces.complaint_rate": (
        "Per-send guard: the send pauses when complaints pass this percent of the readers delivered "
        "(0.3, Gmail's line); `digest send ISSUE --resume` sends on."
    ),
    "bounces.bounce_rate": (
        "Per-send guard: the send pauses when hard bounces pass this percent of the readers tried (5)."
    ),
    "bounces.min_sample": "Readers tried before either per-send guard judges (a small list never pauses).",
    "summary.verify_model": (
        "A second llm model asked, sentence by sentence, whether a summary is supported by its source; "
        "a summary with one unsupported sentence is not used. Empty: the lexical check alone decides."
    ),
    "summary.fetch_article": (
        "Fetch each article's page (ingest's limits, robots.txt, one request per site) and summarise its "
        "main text instead of the feed's (engine llm only); it also gives the real reading time."
    ),
    "compose.repeat_stories": (
        '"update": a story an earlier issue of the edition sent (14 days) comes back only with news, '
        'marked "Update:"; "drop": never; "allow": no memory.'
    ),
    "publication.name": (
        "The publication's name: in every email's header and footer, the web pages and the feed."
    ),
    "publication.from": 'The From of every email, "Name <address>".',
    "publication.reply_to": "A Reply-To address for every email; empty: none.",
    "publication.base_url": (
        "The public https address of `digest web serve`: confirm, unsubscribe, preferences and archive "
        "links. An SMTP send refuses an http or localhost one."
    ),
    "publication.postal_address": "The postal address in every footer (anti-spam laws ask for one).",
    "publication.timezone": "IANA time zone of dates in issues, and of editions that name none.",
    "publication.language": "BCP 47 language of the email and web pages (the lang attribute).",
    "storage.db": "The SQLite database file, relative to digest.toml (used when 'url' is empty).",
    "storage.url": (
        "A PostgreSQL server instead of the SQLite file: postgresql://user@host:5432/dbname "
        "(?sslmode=… honoured). Never put the password here: set DIGEST_DB_PASSWORD or use ~/.pgpass. "
        "Empty: the SQLite file in 'db'. Move a workspace with `digest db copy`."
    ),
    "delivery.transport": (
        "Where messages go: maildir:PATH, mbox:PATH, smtp://[user@]host:port[?starttls=true], "
        "smtps://user@host:465 (password in DIGEST_SMTP_PASSWORD), or memory:NAME for tests."
    ),
    "delivery.concurrency": "Connections (or workers) sending at once.",
    "delivery.rate": "Messages per second across all connections; 0: as fast as the relay takes them.",
    "delivery.max_per_connection": "Messages sent over one SMTP connection before it is renewed.",
    "delivery.timeout": "Seconds to wait for the relay's answer to one command.",
    "delivery.retries": "Times a temporary refusal (4xx) of one reader is retried within a send.",
    "delivery.throttle_patience": (
        "Seconds a send goes on while the relay throttles it (421, 451 4.7.x) and its pace has not"
        " grown back; then it stops with the unsent rows queued."
    ),
    "delivery.lease_seconds": (
        "PostgreSQL store: seconds a sender holds the rows it claimed, renewed while it works; the rows"
        " of a sender that stopped renewing (killed, its host gone) go to another sender after this."
    ),
    "delivery.smtp_user": "The SMTP login when the transport URL names no user.",
    "delivery.unsubscribe_mailto": (
        "A List-Unsubscribe mailto address besides the link; `digest bounces process` reads what arrives "
        "there as unsubscribes."
    ),
    "delivery.list_id": (
        'The List-Id header, "Name <label.example.org>"; empty: made from the edition and sender.'
    ),
    "delivery.bounce_address": (
        "Return path of every issue, sent as bounces+<signed token>@…, so a bounce names its delivery; "
        "empty: the From address."
    ),
    "ingest.default_category": "The category of an article whose source gives none.",
    "ingest.summary_words": (
        "Longest feed summary kept, in words; a longer one is cut to its leading sentences."
    ),
    "ingest.timeout": "Seconds for each source's whole fetch, headers included.",
    "ingest.max_bytes": "Largest source read, in bytes; a bigger one fails.",
    "ingest.concurrency": "Sources fetched at once.",
    "ingest.user_agent": "The User-Agent header feeds are fetched with.",
    "ingest.category_aliases": (
        'A table mapping feed categories to yours, "tech" = "Technology" (keys ignore case); `digest '
        "ingest --recategorize` applies a changed table to stored articles."
    ),
    "render.templates": "A folder whose templates override the bundled ones (same file names).",
    "render.max_html_bytes": (
        "Largest HTML part as sent, in bytes (Gmail clips past ~102 KB); over it, stories are left to the"
        " web version."
    ),
    "render.subject": "The subject: {title}, {number}, {date}, {publication}, {edition}, {headline}.",
    "render.images": (
        "Show each article's lead image (it loads from the feed's server when a reader opens it)."
    ),
    "render.count_clicks": (
        "Story links go through the web app's signed /r/ links, the same for every reader: clicks "
        "are counted per story for `digest stats`, never per reader."
    ),
    "schedule.catch_up": "How old a missed scheduled run may be and still be made up (30m, 6h, 1d…).",
    "dkim.domain": "The d= domain of the DKIM signature; signing needs domain, selector and key_file.",
    "dkim.selector": "The s= selector: the key's DNS record is at SELECTOR._domainkey.DOMAIN.",
    "dkim.key_file": "The RSA private key (PEM), relative to digest.toml.",
    "summary.engine": (
        '"feed" (the feed\'s description, else the leading sentences), "lead" (always the leading '
        'sentences) or "llm" (a model through the llm library).'
    ),
    "summary.model": 'The model id for engine = "llm", any that `llm models` lists.',
    "summary.prompt": "The prompt; $title, $source, $text and $max_words are filled in ($$ for a dollar).",
    "summary.max_words": "Words a summary may have.",
    "summary.concurrency": "Model calls at once.",
    "summary.timeout": "Seconds one model call may take.",
    "summary.label": "The line shown above a generated summary.",
    "compose.merge_stories": 'One card per story that several sources carry ("Also covered by: …").',
    "compose.merge_threshold": (
        "How alike (0–1, title and summary words) two articles must be to be one story."
    ),
    "compose.preferred_sources": "Sources whose card leads a story; else the earliest article's.",
    "bounces.source": (
        "The mailbox of bounces, complaints and mailed unsubscribes: maildir:PATH, mbox:PATH or "
        "imaps://user@host/FOLDER (password in DIGEST_IMAP_PASSWORD); read by `digest run`."
    ),
    "bounces.hard_limit": "Hard bounces that mark a subscriber bounced.",
    "bounces.soft_limit": "Soft bounces, on that many different issues with no delivery between, that do.",
    "bounces.deadline": "Seconds one read of an IMAP mailbox may take in all.",
    "dmarc.source": (
        "The mailbox DMARC aggregate reports (rua) arrive in, read by `digest dmarc process` and "
        "`digest run`: maildir:PATH, mbox:PATH or imaps://user@host/FOLDER, as [bounces] source."
    ),
    "dmarc.our_ips": (
        "Our relays' addresses as CIDRs; `digest dmarc report` and doctor flag any other IP "
        "that sends as the domain."
    ),
    "subscribers.pending_days": "Days a sign-up may stay unconfirmed before `digest run` removes it.",
    "web.signup_posts_per_hour": "Sign-up POSTs one client address may make per hour (then 429).",
    "web.form_version": "Recorded with each sign-up's consent; bump it when the form's wording changes.",
    "web.click_hold_seconds": (
        "How long a counted click waits in the server's memory for its client's canary hit (a scanner)."
    ),
    f"{EDITION_SECTION}.title": "The edition's title; empty: its NAME, capitalised.",
    f"{EDITION_SECTION}.schedule": 'When an issue is due, cron in the edition\'s zone: "0 7 * * *".',
    f"{EDITION_SECTION}.timezone": "The edition's IANA time zone; empty: publication.timezone.",
    f"{EDITION_SECTION}.window": "The span an issue covers up to its scheduled time: 1d, 12h, 7d…",
    f"{EDITION_SECTION}.max_articles": "Most stories in one issue.",
    f"{EDITION_SECTION}.order": (
        "Categories whose sections come first, the rest A-Z after; it does not filter. Its old name "
        "`categories` is read the same."
    ),
    f"{EDITION_SECTION}.delivery": (
        '"edition": everyone at the scheduled time; "local": each reader at send_at in their own zone.'
    ),
    f"{EDITION_SECTION}.send_at": 'The readers\' local time for delivery = "local", "HH:MM".',
    f"{EDITION_SECTION}.subject": "This edition's subject (as render.subject); empty: render.subject.",
}


@dataclass(frozen=True)
class Key:
    """One key of ``digest.toml`` as the reference shows it."""

    section: str
    name: str
    type: str
    default: Any
    env: str
    meaning: str

    @property
    def dotted(self) -> str:
        """``section.name``, as errors and :data:`MEANINGS` spell it."""
        return f"{self.section}.{self.name}"


def config_keys() -> list[Key]:
    """Every key the loader accepts, section by section in the file's order, editions last."""
    tables: list[tuple[str, type]] = [*CONFIG_SECTIONS.items(), (EDITION_SECTION, Edition)]
    keys: list[Key] = []
    for section, kind in tables:
        hints = get_type_hints(kind)
        defaults = kind()
        for f in dataclasses.fields(kind):
            if section == EDITION_SECTION and f.name == "key":
                continue  # the table's own NAME, not a key
            name = FILE_SPELLINGS.get(f.name, f.name)
            scalar = hints[f.name] in (str, int, float, bool)
            env = f"DIGEST_{section}_{f.name}".upper() if scalar and section != EDITION_SECTION else ""
            shortcuts = [var for var, target in ENV_SHORTCUTS.items() if target == (section, f.name)]
            env = ", ".join([env, *shortcuts]) if env else ""
            meaning = MEANINGS.get(f"{section}.{name}", "")
            keys.append(
                Key(section, name, _type_name(hints[f.name]), getattr(defaults, f.name), env, meaning)
            )
    return keys


def _type_name(hint: Any) -> str:
    if get_origin(hint) is list:
        return f"list of {_type_name(get_args(hint)[0])}s"
    if get_origin(hint) is dict:
        return "table of strings"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}[hint]


def toml_value(value: Any, *, limit: int | None = None) -> str:
    """``value`` as TOML writes it; with ``limit``, a longer one is cut with "…"."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items()) + " }"
        text = "{}" if not value else text
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if limit is None or len(text) <= limit else text[: limit - 2] + "…" + text[-1]


def reference_text(keys: list[Key]) -> str:
    """The reference as plain text: one block per key, grouped under its ``[section]``."""
    lines = ["digest.toml: every key, its type and default (see `digest init`'s commented sample)."]
    section = None
    for key in keys:
        if key.section != section:
            section = key.section
            lines += ["", f"[{section}]"]
        env = f", env {key.env}" if key.env else ""
        lines.append(f"  {key.name} = {toml_value(key.default, limit=60)}    ({key.type}{env})")
        lines += textwrap.wrap(key.meaning, 92, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines) + "\n"


def reference_markdown(keys: list[Key]) -> str:
    """The reference as Markdown (``docs/configuration.md`` is this, for the README to link)."""
    lines = [
        "# Configuration reference",
        "",
        "Every key of `digest.toml`, generated by `digest config reference --format markdown` from",
        "the config's own definition. Any scalar key can be overridden by the environment variable",
        "named; secrets (`DIGEST_SMTP_PASSWORD`, `DIGEST_SECRET`, `DIGEST_IMAP_PASSWORD`) come only",
        "from the environment.",
    ]
    section = None
    for key in keys:
        if key.section != section:
            section = key.section
            lines += ["", f"## `[{section}]`", "", "| key | type | default | environment | meaning |"]
            lines.append("| --- | --- | --- | --- | --- |")
        default = toml_value(key.default, limit=60).replace("|", "\\|")
        env = f"`{key.env}`" if key.env else ""
        meaning = key.meaning.replace("|", "\\|")
        lines.append(f"| `{key.name}` | {key.type} | `{default}` | {env} | {meaning} |")
    return "\n".join(lines) + "\n"
