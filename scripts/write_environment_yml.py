"""Write environment.yml (the conda environment) from requirements.txt, the lock: the same pins, in order.

Usage (from the repository root)::

    python scripts/write_environment_yml.py           # rewrite environment.yml
    python scripts/write_environment_yml.py --check   # exit 1, naming the difference, if it is out of date

conda gets Python and pip from conda-forge; every package comes from PyPI through pip with the lock's
pins (tensorflow-cpu and several others have no conda-forge build of the same version).
``tests/test_packaging.py`` runs the check, so the two files cannot drift.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
ENVIRONMENT = ROOT / "environment.yml"

HEADER = """\
# conda environment for cvkit, GENERATED from requirements.txt by scripts/write_environment_yml.py:
# edit requirements.txt and run that script (tests/test_packaging.py fails when this file is stale).
# conda env create -f environment.yml && conda activate cvkit && pip install --no-deps -e .
name: cvkit
channels:
  - conda-forge
dependencies:
  - python={python}
  - pip
  - pip:
"""
PYTHON = "3.11"


def pins(requirements_text: str) -> list[str]:
    """The requirement lines of a requirements file, in order (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in requirements_text.splitlines())
    return [line for line in lines if line]


def environment_yml(requirements_text: str, python: str = PYTHON) -> str:
    """The text of environment.yml for a requirements file's text."""
    return HEADER.format(python=python) + "".join(f"      - {pin}\n" for pin in pins(requirements_text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that environment.yml is up to date")
    args = parser.parse_args(argv)
    wanted = environment_yml(REQUIREMENTS.read_text(encoding="utf-8"))
    if not args.check:
        ENVIRONMENT.write_text(wanted, encoding="utf-8")
        print(f"wrote {ENVIRONMENT.name} ({len(pins(REQUIREMENTS.read_text(encoding='utf-8')))} pins)")
        return 0
    current = ENVIRONMENT.read_text(encoding="utf-8") if ENVIRONMENT.exists() else ""
    if current == wanted:
        return 0
    diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), "environment.yml",
                                "environment.yml from requirements.txt", lineterm="")
    print("environment.yml is out of date with requirements.txt; run python scripts/write_environment_yml.py\n"
          + "\n".join(diff), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
