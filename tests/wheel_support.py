"""digest as a user gets it: the wheel built from this checkout, installed into a virtualenv
of its own, far from the source tree (tests/test_packaging.py, tests/test_readme_tour.py).

The virtualenv takes digest only from the wheel; its dependencies come from the test
environment through a ``.pth`` file, so no package index is needed."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTION = "digest-newsletter"
"""The name on the Python package index (``digest`` there is another project)."""


def build_wheel(out: Path) -> Path:
    """Build the wheel of this checkout into ``out`` with pip (as ``pip wheel .`` does)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip wheel failed:\n{result.stderr[-2000:]}")
    (built,) = out.glob(DISTRIBUTION.replace("-", "_") + "-*.whl")
    return built


def install_wheel(wheel: Path, env_dir: Path) -> Path:
    """A virtualenv at ``env_dir`` with ``wheel`` installed by pip (console script included);
    returns its ``bin`` folder, which holds the ``digest`` command."""
    venv.create(env_dir, with_pip=False)
    bin_dir = env_dir / "bin"
    site_dir = next((env_dir / "lib").glob("python*/site-packages"))
    (site_dir / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(bin_dir / "python")]
    result = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip install failed:\n{result.stderr[-2000:]}")
    return bin_dir


def user_environment(bin_dir: Path, home: Path) -> dict[str, str]:
    """The environment of a user who installed digest into ``bin_dir``: no DIGEST_* setting,
    no PYTHONPATH into this checkout, that virtualenv first on PATH, ``home`` as HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_") and k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    env["HOME"] = str(home)
    return env
