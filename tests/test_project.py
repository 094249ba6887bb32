"""The project's own promises: pins agree everywhere, notebooks are clean, `import cvkit` is light."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)")


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = PIN.match(line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_requirements_environment_and_pyproject_pin_the_same_versions(repo_dir):
    req = _pins((repo_dir / "requirements.txt").read_text().splitlines())
    env = _pins((repo_dir / "environment.yml").read_text().splitlines())
    assert req == env, "environment.yml must mirror requirements.txt"
    assert req["numpy"] == "1.26.4", "imgaug breaks on NumPy 2"
    meta = tomllib.loads((repo_dir / "pyproject.toml").read_text())["project"]
    declared = list(meta["dependencies"]) + [d for extra in meta["optional-dependencies"].values() for d in extra]
    pyproject = _pins(declared)
    for name, version in pyproject.items():
        if name in req:
            assert req[name] == version, f"{name}: pyproject {version} != requirements {req[name]}"
    assert all("==" in d for d in declared), "every dependency is pinned exactly"
    assert "opencv-python" not in req, "only the headless OpenCV build"


def test_import_cvkit_does_not_import_tensorflow():
    code = "import sys, cvkit; cvkit.ImageDataset; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_committed_notebooks_have_parameters_and_no_absolute_paths_or_secrets(repo_dir):
    notebooks = sorted((repo_dir / "notebooks").glob("*.ipynb"))
    assert notebooks, "notebooks/ holds the tutorial notebooks"
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb_path.name}: exactly one cell tagged 'parameters'"
        text = nb_path.read_text()
        for bad in ("/work/", "/root/", "/home/", "/tmp/", "C:\\\\"):
            assert bad not in text, f"{nb_path.name} contains an absolute path ({bad})"
        assert not re.search(r"(api[_-]?key|token)\s*=\s*['\"][A-Za-z0-9]{16,}", text, re.I), \
            f"{nb_path.name} seems to contain a secret"


def test_every_public_name_resolves():
    import cvkit
    missing = [name for name in cvkit.__all__ if getattr(cvkit, name, None) is None]
    assert not missing
    assert "ImageDataset" in dir(cvkit) and "backbones" in dir(cvkit)
