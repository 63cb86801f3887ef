"""The built wheel carries the top-level templates/ and works without the source tree."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{result.stderr[-2000:]}")
    (built,) = out.glob("digest-*.whl")
    return built


def test_wheel_contains_templates_and_both_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    repo_templates = sorted(str(p.relative_to(REPO)) for p in (REPO / "templates").rglob("*") if p.is_file())
    assert repo_templates, "the repo has no templates"
    for rel in repo_templates:
        assert f"digest/{rel}" in names, f"{rel} missing from the wheel"
    assert "digest/data/digest.toml" in names
    assert any(n.startswith("subscribers/") for n in names)
    # The languages' catalogues, read from .po at first use: nothing to compile after install.
    for lang in ("en", "de", "ar", "ja"):
        assert f"digest/locale/{lang}/LC_MESSAGES/digest.po" in names, f"the {lang} catalogue is missing"


def test_installed_wheel_runs_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # Dependencies come from the test environment; digest itself only from the wheel.
    site_dir = next((env_dir / "lib").glob("python*/site-packages"))
    (site_dir / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PYTHONPATH"] = ""
    code = (
        "import digest, pathlib, sys; "
        "p = pathlib.Path(digest.__file__).parent; "
        "assert str(p).startswith(sys.argv[1]), p; "
        "assert (p / 'templates').is_dir(), 'templates not installed'; "
        "from digest.i18n import translations; "
        "assert translations('de').gettext('Read more') == 'Weiterlesen'; "
        "print(p)"
    )
    result = subprocess.run(
        [str(py), "-c", code, str(site_dir)], cwd=elsewhere, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [str(py), "-m", "digest", "init", "ws"], cwd=elsewhere, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "ws" / "digest.toml").exists()
