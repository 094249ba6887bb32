"""The project's own promises: notebooks are clean, `import cvkit` is light, public names resolve."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

# The dependency files (pyproject's ranges, the lock, environment.yml) are checked in tests/test_packaging.py.


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
    # the old module names still reach their new homes
    assert cvkit.plots.__name__ == "cvkit.evaluation.plots" and cvkit.augment.__name__ == "cvkit.data.augment"
    assert cvkit.featurize.ImageFeaturizer is cvkit.ImageFeaturizer and cvkit.export.export_model is cvkit.export_model


# ------------------------------------------------------------------ the package's shape
CVKIT = Path(__file__).resolve().parent.parent / "cvkit"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    """A console script of the environment running the tests (lint-imports, ruff)."""
    path = BIN / name
    assert path.is_file(), f"{name} is not installed in {BIN}: pip install -r requirements.txt"
    return str(path)


def test_layers_point_one_way_and_packages_have_no_cycles(repo_dir):
    """import-linter's contracts in pyproject.toml: data -> ... -> cli, and no cycles."""
    out = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=repo_dir, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout and "KEPT" in out.stdout


def test_ruff_finds_nothing(repo_dir):
    out = subprocess.run([_tool("ruff"), "check", "--no-cache", "cvkit", "tests", "scripts", "bench", "conftest.py"],
                         cwd=repo_dir, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_every_module_is_under_500_lines():
    long = {str(p.relative_to(CVKIT)): n for p in CVKIT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) >= 500}
    assert not long, f"modules of 500 lines or more: {long}"


def _private_imports(path: Path) -> list[str]:
    """``from cvkit.x import _name`` imports of a private *name* (a helper of one module) in one file.

    As in scikit-learn, private *modules* (``cvkit.data._images``) are the package's internals and
    may import one another; a name with a leading underscore belongs to its own module only.
    ``from cvkit.x import _module as module`` (a private module) is allowed."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cvkit"):
            names = [a.name for a in node.names]
            private = [n for n in names if n.startswith("_") and not n.startswith("__")
                       and not _is_module(f"{node.module}.{n}")]
            if private:
                found.append(f"{path.name}:{node.lineno} from {node.module} import {', '.join(names)}")
    return found


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    return (CVKIT.parent / relative).with_suffix(".py").is_file() or (CVKIT.parent / relative / "__init__.py").is_file()


def test_nothing_private_is_imported_across_modules():
    found = [hit for p in sorted(CVKIT.rglob("*.py")) for hit in _private_imports(p)]
    assert not found, "private names imported from another module:\n" + "\n".join(found)


def test_the_private_import_check_catches_one(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("from cvkit.data._dataset import _warn\nfrom cvkit.data import read_image\n")
    assert _private_imports(sample) == ["m.py:1 from cvkit.data._dataset import _warn"]
