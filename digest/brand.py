"""The publisher's brand without code: accent colours, font stacks, the logo, the greeting.

The ``[render]`` keys ``logo``, ``accent_color``, ``accent_color_dark``, ``masthead``,
``font``, ``greeting`` and ``greeting_anonymous`` are checked here when the config loads
(:func:`check_brand`): a colour under WCAG AA (4.5:1) against the card it is shown on, in
light or dark mode, is refused with its ratio and a colour that passes. The email, the
transactional mail and the web pages read the same values through :func:`accent_colors`,
:func:`font_stack` and :func:`read_logo`.

Kernel module: imports only :mod:`digest.errors` and the image-header library.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import imagesize

from digest.errors import ConfigError

MIN_CONTRAST = 4.5
"""WCAG AA for normal text."""
LIGHT_CARD = "#ffffff"
"""The background of the email's cards (and the web pages) in light mode."""
DARK_CARD = "#111827"
"""The background of the email's cards in dark mode (``prefers-color-scheme: dark``)."""

FONT_STACKS: dict[str, str] = {
    "sans": "Helvetica, Arial, sans-serif",
    "serif": "Georgia, 'Times New Roman', Times, serif",
    "system": "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
    "humanist": "'Trebuchet MS', 'Gill Sans', 'Noto Sans', Helvetica, Arial, sans-serif",
}
"""``[render] font``: a name → a font stack every mail client has a member of."""

GREETING_FIELDS = ("first_name", "name")
"""The fields ``[render] greeting`` may use (filled per reader at send time)."""

LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg", b"GIF87a": "gif", b"GIF89a": "gif"}
"""Logo formats every mail client shows, by their first bytes (no SVG: Gmail drops it)."""
LOGO_MAX_BYTES = 1_000_000
LOGO_MAX_WIDTH = 544
"""A logo is shown at its own size, scaled down to fit this width (the email's column)…"""
LOGO_MAX_HEIGHT = 96
"""…and this height."""


# --- colours ---------------------------------------------------------------------------------


def parse_color(text: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` → (r, g, b); ValueError for anything else."""
    value = text.strip().lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) != 6 or not text.strip().startswith("#"):
        raise ValueError(text)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def hex_color(rgb: tuple[float, float, float]) -> str:
    """(r, g, b) → ``#rrggbb`` (each channel rounded and clamped)."""
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance of an sRGB colour."""

    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = rgb
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """The WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((luminance(parse_color(a)), luminance(parse_color(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def passing_variant(color: str, background: str, minimum: float = MIN_CONTRAST) -> str:
    """``color`` mixed toward black (on a light background) or white (on a dark one), the
    least that reaches ``minimum`` against ``background``: same hue, enough contrast."""
    rgb = parse_color(color)
    target = 0.0 if luminance(parse_color(background)) > 0.18 else 255.0
    for step in range(101):
        t = step / 100
        candidate = hex_color(tuple(c + (target - c) * t for c in rgb))  # type: ignore[arg-type]
        if contrast_ratio(candidate, background) >= minimum:
            return candidate
    return "#000000" if target == 0 else "#ffffff"


def accent_colors(accent: str, accent_dark: str = "") -> tuple[str, str]:
    """The accent in light and dark mode: ``accent_dark`` when given, else ``accent``
    lightened for the dark card to 7:1 (comfortable on a dark screen; 4.5:1 is the floor).
    Both lower-case ``#rrggbb``."""
    light = hex_color(parse_color(accent))
    dark = hex_color(parse_color(accent_dark)) if accent_dark else passing_variant(light, DARK_CARD, 7.0)
    return light, dark


def font_stack(name: str) -> str:
    """The font stack of a ``[render] font`` name (the default stack for an unknown one)."""
    return FONT_STACKS.get(name, FONT_STACKS["sans"])


# --- the logo --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Logo:
    """A logo file read: where it is, its type, its real size and the size it is shown at."""

    path: Path
    ext: str  # png, jpg or gif
    width: int
    height: int
    shown_width: int
    shown_height: int

    @property
    def url_path(self) -> str:
        """Where the web app and the static archive publish it: ``/assets/logo.<ext>``."""
        return f"/assets/logo.{self.ext}"

    @property
    def media_type(self) -> str:
        """Its Content-Type."""
        return {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}[self.ext]


def read_logo(path: Path, *, key: str = "render.logo") -> Logo:
    """Read a logo's type and size from its first bytes; ConfigError (naming ``key`` and the
    file) for a missing, unreadable, oversized or unsupported file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise ConfigError(
            f"'{key}': {path} does not exist; put the logo file there or remove the key"
        ) from None
    except OSError as exc:
        raise ConfigError(f"'{key}': cannot read {path} ({exc.strerror or exc})") from None
    ext = next((kind for magic, kind in LOGO_TYPES.items() if head.startswith(magic)), None)
    if ext is None:
        raise ConfigError(
            f"'{key}': {path} is not a PNG, JPEG or GIF image (the formats every mail client shows)"
        )
    if size > LOGO_MAX_BYTES:
        raise ConfigError(
            f"'{key}': {path} is {size:,} bytes; keep a logo under {LOGO_MAX_BYTES:,} (every reader loads it)"
        )
    try:
        width, height = imagesize.get(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"'{key}': cannot read the size of {path} ({exc})") from None
    if width < 1 or height < 1:
        raise ConfigError(f"'{key}': cannot read the size of {path}; is the file complete?")
    scale = min(1.0, LOGO_MAX_WIDTH / width, LOGO_MAX_HEIGHT / height)
    return Logo(path, ext, width, height, max(1, round(width * scale)), max(1, round(height * scale)))


# --- the check at config load ------------------------------------------------------------------


def check_brand(
    *,
    where: str,
    base_dir: Path,
    logo: str,
    accent_color: str,
    accent_color_dark: str,
    font: str,
    greeting: str,
    greeting_anonymous: str,
) -> None:
    """Refuse a brand the email cannot show well: a colour under 4.5:1 on its card (with the
    ratio and a suggestion), an unknown font, a greeting with an unknown field, a logo that is
    missing or not an image. ``where`` names the file in each message."""
    for key, value, background, mode in (
        ("accent_color", accent_color, LIGHT_CARD, "light"),
        ("accent_color_dark", accent_color_dark, DARK_CARD, "dark"),
    ):
        if key == "accent_color_dark" and not value:
            continue  # derived from accent_color, passing by construction
        try:
            color = hex_color(parse_color(value))
        except ValueError:
            raise ConfigError(
                f"{where}: 'render.{key}' = {value!r} is not a colour; write it as #rrggbb"
            ) from None
        ratio = contrast_ratio(color, background)
        if ratio < MIN_CONTRAST:
            raise ConfigError(
                f"{where}: 'render.{key}' = {value!r} has a contrast of {ratio:.2f}:1 against the "
                f"{mode}-mode card ({background}); at least {MIN_CONTRAST}:1 is needed for text and "
                f'links; try "{passing_variant(color, background)}"'
            )
    if font not in FONT_STACKS:
        raise ConfigError(f"{where}: 'render.font' = {font!r} is not one of: {', '.join(FONT_STACKS)}")
    for key, value, allowed in (
        ("greeting", greeting, GREETING_FIELDS),
        ("greeting_anonymous", greeting_anonymous, ()),
    ):
        try:
            parsed = string.Formatter().parse(value)
            fields = [name for _text, name, _spec, _conv in parsed if name is not None]
        except ValueError as exc:
            raise ConfigError(f"{where}: 'render.{key}' = {value!r}: {exc}; write a brace as {{{{") from None
        unknown = [f for f in fields if f not in allowed]
        if unknown:
            names = ", ".join("{" + f + "}" for f in allowed)
            may = f"it may use {names}" if allowed else "it takes no fields"
            raise ConfigError(f"{where}: 'render.{key}' uses {{{unknown[0]}}}; {may}")
    if logo:
        path = Path(logo).expanduser()
        try:
            read_logo(path if path.is_absolute() else base_dir / path)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
