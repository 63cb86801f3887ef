"""The ``llm`` library behind one small seam: find the configured model, ask it one prompt.

``llm`` is an optional dependency (``pip install 'digest-newsletter[llm]'``); it is imported only when
``engine = "llm"`` is used, and its absence is a one-line error saying what to install.
"""

from __future__ import annotations

from typing import Any

from digest.errors import ConfigError

INSTALL_HINT = "pip install 'digest-newsletter[llm]'"


def load_model(model_id: str, setting: str = "summary.model") -> Any:
    """The ``llm`` model named ``model_id`` (an id or alias), ready to prompt; ``setting``
    names the configuration key it came from, for the messages.

    Raises ConfigError when ``llm`` is not installed, the model is unknown, or it needs a
    key that is not set: those are the configuration's faults, not one article's."""
    try:
        import llm  # lazy: start-up
    except ImportError:
        raise ConfigError(
            f'summary.engine = "llm" needs the llm library, which is not installed; run: {INSTALL_HINT}'
        ) from None
    try:
        model = llm.get_model(model_id)
    except llm.UnknownModelError:
        raise ConfigError(
            f"{setting} = {model_id!r} is not a model llm knows; see `llm models`, "
            "or install the plugin that provides it (`llm install PLUGIN`)"
        ) from None
    try:
        model.get_key()
    except llm.errors.NeedsKeyException as exc:
        raise ConfigError(f"{setting} = {model_id!r}: {exc}") from None
    return model


def ask(model: Any, prompt: str) -> str:
    """The model's whole answer to ``prompt`` as text (not streamed)."""
    return model.prompt(prompt, stream=False).text()
