"""The built wheel: its name on the package index, what it carries (the top-level templates/,
the sample config and the tour's sample files), and that it works without the source tree."""

from __future__ import annotations

import re
import subprocess
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from wheel_support import DISTRIBUTION, REPO, user_environment

from digest.init import EXAMPLE_FILES


def metadata(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        message = HeaderParser().parsestr(zf.read(name).decode("utf-8"))
    return {key: message.get_all(key) or [] for key in ("Name", "Provides-Extra")}


def test_the_distribution_is_named_digest_newsletter_with_its_extras(built_wheel: Path) -> None:
    # `digest` on the package index is an unrelated project: `pip install 'digest[llm]'` got that.
    found = metadata(built_wheel)
    assert found["Name"] == [DISTRIBUTION]
    assert {"llm", "fetch", "test"} <= set(found["Provides-Extra"])
    with zipfile.ZipFile(built_wheel) as zf:
        scripts = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "digest = digest.cli:main" in zf.read(scripts).decode()


def test_every_pip_install_line_of_the_readme_names_the_distribution() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"`(pip install [^`]*)`", text)  # inline, and lines of code blocks:
    commands += re.findall(r"^(pip install .*)$", text, re.M)
    targets = []
    for command in commands:
        command = command.split("#")[0].split("&&")[0]
        targets += [t.strip("'\"") for t in command.split()[2:] if not t.startswith("-")]
    assert targets, "the README has no pip install line"
    for target in targets:
        assert target.startswith((DISTRIBUTION, ".")), f"pip install {target}: not {DISTRIBUTION}"
    assert f"pip install '{DISTRIBUTION}[llm]'" in text
    assert "pip install -e '.[test]' && pytest" in text  # the test command .ci/run runs


def test_every_install_hint_names_the_distribution_and_an_extra_it_has() -> None:
    # Error messages and config comments tell users what to install: `digest[fetch]` would get
    # the unrelated `digest` project, and an extra the project does not define installs nothing.
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    files = [REPO / "README.md", *(REPO / "digest").rglob("*.py"), *(REPO / "digest").rglob("*.toml")]
    hints = []
    for path in files:
        for name, extra in re.findall(r"pip install '?([\w.-]+)\[(\w+)\]", path.read_text(encoding="utf-8")):
            hints.append((path.name, name, extra))
    assert {extra for _, _, extra in hints} >= {"llm", "fetch"}, hints
    for where, name, extra in hints:
        assert name in (DISTRIBUTION, "."), f"{where}: pip install {name}[{extra}] is not {DISTRIBUTION}"
        assert extra in extras, f"{where}: [{extra}] is not an extra of pyproject.toml"


def test_wheel_contains_templates_samples_and_both_packages(built_wheel: Path) -> None:
    names = zipfile.ZipFile(built_wheel).namelist()
    repo_templates = sorted(str(p.relative_to(REPO)) for p in (REPO / "templates").rglob("*") if p.is_file())
    assert repo_templates, "the repo has no templates"
    for rel in repo_templates:
        assert f"digest/{rel}" in names, f"{rel} missing from the wheel"
    assert "digest/data/digest.toml" in names
    for name in EXAMPLE_FILES:
        assert f"digest/data/examples/{name}" in names, f"{name} missing from the wheel"
    assert any(n.startswith("subscribers/") for n in names)
    # The languages' catalogues, read from .po at first use: nothing to compile after install.
    for lang in ("en", "de", "ar", "ja"):
        assert f"digest/locale/{lang}/LC_MESSAGES/digest.po" in names, f"the {lang} catalogue is missing"


def test_the_sdist_carries_the_package_folder_with_its_samples() -> None:
    sdist = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"]
    included = sdist["targets"]["sdist"]["include"]
    assert "digest" in included and "templates" in included and "docs" in included
    assert all((REPO / "digest" / "data" / "examples" / name).is_file() for name in EXAMPLE_FILES)


def test_installed_wheel_runs_outside_the_source_tree(installed_digest: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = user_environment(installed_digest, tmp_path)
    code = (
        "import digest, pathlib, sys; "
        "p = pathlib.Path(digest.__file__).parent; "
        "assert str(p).startswith(sys.argv[1]), p; "
        "assert (p / 'templates').is_dir(), 'templates not installed'; "
        "from digest.i18n import translations; "
        "assert translations('de').gettext('Read more') == 'Weiterlesen'; "
        "print(p)"
    )
    venv_dir = str(installed_digest.parent)
    result = subprocess.run(
        [str(installed_digest / "python"), "-c", code, venv_dir],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        ["digest", "init", "ws", "--example"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "ws" / "digest.toml").exists()
    for name in EXAMPLE_FILES:
        assert (elsewhere / "ws" / name).read_bytes() == (REPO / "digest/data/examples" / name).read_bytes()
