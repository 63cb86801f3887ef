"""Helpers for the summary tests: a workspace with [summary] settings, and a small ``llm``
model registered through llm's own plugin hooks that answers as each test tells it. (No tests.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import llm
from conftest import new_workspace
from test_render_support import CONFIG_TOML, add_fixture_articles

MODEL_ID = "digest-canned"


VERIFY_ID = "digest-canned-verifier"


class CannedModel(llm.Model):
    """Answers from ``script``: the first key found in the prompt picks the answer.

    An answer is text, or ``FAIL`` (raises), ``HANG`` (blocks until released). Every call is
    counted, and the most calls in flight at once is recorded."""

    model_id = MODEL_ID
    can_stream = False

    def __init__(self, model_id: str = MODEL_ID) -> None:
        self.model_id = model_id
        self.script: dict[str, str] = {}
        self.default = "A plain two-sentence summary. It says what happened."
        self.calls: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay = 0.0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def execute(self, prompt, stream, response, conversation=None):
        text = prompt.prompt
        with self._lock:
            self.calls.append(text)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            answer = next((a for k, a in self.script.items() if k in text), self.default)
            if answer == "FAIL":
                raise RuntimeError("model server said 503")
            if answer == "HANG":
                self.release.wait(10)
                answer = "Too late to matter."
            yield answer
        finally:
            with self._lock:
                self.in_flight -= 1


class _Plugin:
    def __init__(self, model: CannedModel) -> None:
        self.model = model

    @llm.hookimpl
    def register_models(self, register):
        register(self.model)


@contextmanager
def canned_model(model_id: str = MODEL_ID) -> Iterator[CannedModel]:
    """Register a fresh :class:`CannedModel` (named ``model_id``) with llm for the block."""
    model = CannedModel(model_id)
    plugin = _Plugin(model)
    llm.plugins.pm.register(plugin, name=f"digest-test-canned-{model_id}")
    try:
        yield model
    finally:
        model.release.set()
        llm.plugins.pm.unregister(plugin)


def summary_workspace(folder: Path, summary_toml: str, *, extra: str = "") -> Path:
    """A workspace (config + database) with the fixture articles and ``[summary]`` settings."""
    ws = new_workspace(folder, config=CONFIG_TOML + "\n[summary]\n" + summary_toml + "\n" + extra)
    db = ws.db()
    add_fixture_articles(db)
    db.conn.close()
    return ws.config_file
