"""One self-contained HTML page of the figures, with SVG charts drawn here.

No script, no external request (no font, no image, no stylesheet link): the page can be
mailed, archived or opened offline. Every text that came from the database is escaped.
The charts scale with the page (``viewBox``), from a phone to a desktop.
"""

from __future__ import annotations

from html import escape
from typing import Any

from digest.stats.figures import GMAIL_LIMIT, GMAIL_WARN
from digest.stats.report import percent

WIDTH, HEIGHT, PAD = 640, 220, 56
STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f4f5f7;color:#1f2937}
main{max-width:960px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:0 0 .5rem}
section{background:#fff;border-radius:8px;padding:16px;margin:0 0 16px;box-shadow:0 1px 2px #0001}
svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{padding:4px 6px;border-bottom:1px solid #e5e7eb;text-align:right}
td:first-child,th:first-child{text-align:left}
.wrap{overflow-x:auto}.ok{color:#047857}.warn{color:#b45309}.bad{color:#b91c1c}
.legend{font-size:.85rem;color:#4b5563}
"""


def stats_page(title: str, issues: list[dict[str, Any]], figures: dict[str, Any], *, back: str = "") -> str:
    """The whole page: the list's size and movements, each issue's rates and clicks (with a
    link to ``back`` above them when given: the desk's home)."""
    days = figures["days"]
    parts = [
        _section("List size", _line_chart([(d["day"], d["size"]) for d in days])),
        _section(
            "Sign-ups and unsubscribes per day",
            _bar_chart([(d["day"], d["signups"], d["unsubscribes"] + d["bounces"]) for d in days])
            + '<p class="legend"><span class="ok">■</span> sign-ups '
            '<span class="bad">■</span> unsubscribes and bounces</p>',
        ),
        _section("Complaint and bounce rates per issue", _rates_chart(issues)),
        _section("Issues", _issue_table(issues)),
    ]
    for f in issues[:3]:
        if f["clicks"]:
            parts.append(_section(f"Clicks per story: {f['issue']}", _clicks_chart(f["clicks"])))
    choices = " · ".join(
        f"{label}: " + (", ".join(f"{escape(str(k))} {v}" for k, v in figures[key].items()) or "none")
        for label, key in (("Sources", "sources"), ("Editions", "editions"), ("Categories", "categories"))
    )
    parts.append(_section("Readers", f"<p>{choices}</p>"))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} — stats</title><style>{STYLE}</style></head>"
        f"<body><main>{_back(back)}<h1>{escape(title)} — stats</h1>{''.join(parts)}</main></body></html>\n"
    )


def _back(url: str) -> str:
    return f'<p><a href="{escape(url)}">← The desk</a></p>' if url else ""


def _section(title: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{body}</section>"


def _svg(body: str, height: int = HEIGHT, label: str = "") -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="17">{body}</svg>'
    )


def _axis(top: float, points: list[str]) -> str:
    """The frame: the y axis's top value, and the first and last day under the x axis."""
    base = HEIGHT - PAD
    out = f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - 8}" y2="{base}" stroke="#9ca3af"/>'
    out += f'<text x="{PAD - 4}" y="{PAD}" text-anchor="end" fill="#4b5563">{top:g}</text>'
    out += f'<text x="{PAD - 4}" y="{base}" text-anchor="end" fill="#4b5563">0</text>'
    if points:
        out += f'<text x="{PAD}" y="{HEIGHT - 12}" fill="#4b5563">{escape(points[0])}</text>'
        end = escape(points[-1])
        out += f'<text x="{WIDTH - 8}" y="{HEIGHT - 12}" text-anchor="end" fill="#4b5563">{end}</text>'
    return out


def _line_chart(series: list[tuple[str, int]]) -> str:
    if not series:
        return "<p>No days.</p>"
    top = max(1, max(v for _, v in series))
    span = max(1, len(series) - 1)
    xs = [PAD + (WIDTH - 8 - PAD) * i / span for i in range(len(series))]
    ys = [HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top for _, v in series]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    area = f"{xs[0]:.1f},{HEIGHT - PAD} {path} {xs[-1]:.1f},{HEIGHT - PAD}"
    body = _axis(top, [series[0][0], series[-1][0]])
    body += f'<polygon points="{area}" fill="#dbeafe"/>'
    body += f'<polyline points="{path}" fill="none" stroke="#1d4ed8" stroke-width="2"/>'
    last_y = max(14, ys[-1] - 6)
    body += f'<text x="{WIDTH - 8}" y="{last_y:.1f}" text-anchor="end" fill="#1d4ed8">{series[-1][1]}</text>'
    return _svg(body, label=f"list size, now {series[-1][1]}")


def _bar_chart(series: list[tuple[str, int, int]]) -> str:
    if not series:
        return "<p>No days.</p>"
    top = max(1, max(max(a, b) for _, a, b in series))
    slot = (WIDTH - 8 - PAD) / len(series)
    bar = max(1.0, slot * 0.4)
    body = _axis(top, [series[0][0], series[-1][0]])
    for i, (_, up, down) in enumerate(series):
        x = PAD + i * slot
        for offset, value, colour in ((0, up, "#059669"), (bar, down, "#dc2626")):
            h = (HEIGHT - 2 * PAD) * value / top
            if value:
                y, left = HEIGHT - PAD - h, x + offset
                size = f'width="{bar:.1f}" height="{h:.1f}"'
                body += f'<rect x="{left:.1f}" y="{y:.1f}" {size} fill="{colour}"/>'
    return _svg(body, label="sign-ups and unsubscribes per day")


def _rates_chart(issues: list[dict[str, Any]]) -> str:
    if not issues:
        return "<p>No issue sent in this period.</p>"
    shown = issues[:12]
    row, label_w = 34, 150
    height = 40 + row * len(shown)
    scale = (WIDTH - label_w - 16) / (GMAIL_LIMIT * 1.5)
    body = ""
    for line, colour in ((GMAIL_WARN, "#b45309"), (GMAIL_LIMIT, "#b91c1c")):
        x = label_w + min(line, GMAIL_LIMIT * 1.5) * scale
        dash = f'stroke="{colour}" stroke-dasharray="4 3"'
        body += f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 8}" {dash}/>'
        body += f'<text x="{x:.1f}" y="16" text-anchor="middle" fill="{colour}">{percent(line)}</text>'
    for i, f in enumerate(shown):
        y = 28 + i * row
        body += f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(f["issue"])}</text>'
        for offset, rate, colour in ((0, f["complaint_rate"], "#7c3aed"), (12, f["bounce_rate"], "#0891b2")):
            w = max(1.0, min(rate, GMAIL_LIMIT * 1.5) * scale)
            body += f'<rect x="{label_w}" y="{y + offset}" width="{w:.1f}" height="10" fill="{colour}"/>'
    legend = (
        '<p class="legend"><span style="color:#7c3aed">■</span> complaints '
        '<span style="color:#0891b2">■</span> bounces; dashed: Gmail\'s 0.1 % and 0.3 % lines</p>'
    )
    return _svg(body, height, "complaint and bounce rates per issue") + legend


def _clicks_chart(clicks: list[dict[str, Any]]) -> str:
    """One bar per story, its title above it (long titles cut), the shown count beside it."""
    row = 50
    height = 8 + row * len(clicks)
    top = max([c["clicks"] for c in clicks if isinstance(c["clicks"], int)] + [5])
    body = ""
    for i, c in enumerate(clicks):
        y = 4 + i * row
        title = c["story"] if len(c["story"]) <= 60 else c["story"][:59] + "…"
        value = c["clicks"]
        w = max(2.0, (WIDTH - 70) * (value if isinstance(value, int) else 0) / top)
        body += f'<text x="0" y="{y + 16}">{escape(title)}</text>'
        body += f'<rect x="0" y="{y + 24}" width="{w:.1f}" height="16" fill="#2563eb"/>'
        body += f'<text x="{w + 6:.1f}" y="{y + 38}">{escape(str(value))}</text>'
    return _svg(body, height, "clicks per story")


def _issue_table(issues: list[dict[str, Any]]) -> str:
    if not issues:
        return "<p>No issue sent in this period.</p>"
    names = (
        "Issue",
        "Delivered",
        "Failed",
        "Hard",
        "Soft",
        "Complaints",
        "Unsubs (7 d)",
        "Complaint rate",
        "Bounce rate",
    )
    head = "<tr>" + "".join(f"<th>{name}</th>" for name in names) + "</tr>"
    rows = "".join(
        f"<tr><td>{escape(f['issue'])}</td><td>{f['delivered']}</td><td>{f['failed']}</td>"
        f"<td>{f['bounced']['hard']}</td><td>{f['bounced']['soft']}</td><td>{f['complaints']}</td>"
        f"<td>{f['unsubscribes_7_days']}</td>{_rate_cell(f['complaint_rate'], f['complaint_flag'])}"
        f"{_rate_cell(f['bounce_rate'], f['bounce_flag'])}</tr>"
        for f in issues
    )
    return f'<div class="wrap"><table>{head}{rows}</table></div>'


def _rate_cell(rate: float, mark: str) -> str:
    kind = {"✘": "bad", "⚠": "warn"}.get(mark, "ok")
    return f'<td class="{kind}">{percent(rate)} {mark or "✓"}</td>'
