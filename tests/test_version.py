"""One version: pyproject.toml's, as installed (``cvkit.__version__``, ``cvkit --version``, model folders)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata

import cvkit
from cvkit import _version


def test_the_version_is_the_installed_one_and_pyprojects(repo_dir):
    declared = tomllib.loads((repo_dir / "pyproject.toml").read_text())["project"]["version"]
    assert cvkit.__version__ == metadata.version("cvkit") == declared


def test_cvkit_version_prints_it():
    run = subprocess.run([sys.executable, "-m", "cvkit.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"cvkit {cvkit.__version__}"


def test_not_installed_it_falls_back_to_the_checkout_then_unknown(monkeypatch, tmp_path, repo_dir):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_version.metadata, "version", not_installed)
    assert _version.installed_version() == cvkit.__version__  # read from the checkout's pyproject.toml
    other = tmp_path / "other.toml"
    other.write_text('[project]\nname = "someone-else"\nversion = "7.0"\n')
    assert _version._checkout_version(other) is None  # another project's file is not cvkit's version
    ours = tmp_path / "ours.toml"
    ours.write_text('[project]\nname = "cvkit"\nversion = "3.2.1"\n')
    assert _version._checkout_version(ours) == "3.2.1"
    monkeypatch.setattr(_version, "_PYPROJECT", tmp_path / "missing.toml")  # installed nowhere, no checkout
    assert _version.installed_version() == _version.UNKNOWN == "0+unknown"


def test_the_changelog_has_an_unreleased_section_and_this_version(repo_dir):
    text = (repo_dir / "CHANGELOG.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert "## [Unreleased]" in headings and "## Deprecation rule" in headings
    assert f"## [{cvkit.__version__}]" in headings, f"CHANGELOG.md: add a section for {cvkit.__version__}"
    assert "one minor version" in text.lower()
