"""What is released: the wheel, installed with the core dependencies only into a fresh virtual environment.

``python -m build`` makes the sdist and, from it, the wheel (from a copy of the package's sources).
The environment gets the core's dependencies at the lock's versions (``-c`` the lock) and nothing
of ``cvkit[train]``. There, from a working directory outside the checkout with an empty ``HOME``
and feature cache: TensorFlow cannot be imported, ``cvkit score`` and ``cvkit serve`` answer like
the full install on a model folder the full install saved, and ``cvkit train`` names its extra.
Slow lane: the install takes about a minute (from pip's cache after ``make setup``).
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

import cvkit
from cvkit.serving._server import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def folder_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "cvkit", src / "cvkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)],  # the sdist, then
                         capture_output=True, text=True, timeout=600)                    # the wheel from it
    assert run.returncode == 0, run.stderr[-3000:]
    (sdist,) = out.glob("cvkit-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "PKG-INFO", "cvkit/__init__.py", "cvkit/models/_format.py"} <= names
    (built,) = out.glob("cvkit-*.whl")
    return built


@pytest.fixture(scope="module")
def core_env(wheel, tmp_path_factory) -> dict:
    """A fresh virtual environment with the wheel and the core dependencies (the lock's versions)."""
    root = tmp_path_factory.mktemp("core")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    lock = (REPO / "requirements.txt").read_text().splitlines()
    constraints = root / "constraints.txt"  # the lock, without extras (pip takes none in constraints)
    constraints.write_text("\n".join(line.split("[")[0] + line.split("]")[1] if "[" in line else line
                                     for line in lock if line and not line.startswith("#")) + "\n")
    home = root / "home"
    home.mkdir()
    # nothing of the checkout: no PYTHONPATH (pip would see the checkout's cvkit.egg-info as installed)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    start = time.perf_counter()  # (pip keeps the user's HOME: its cache of downloaded wheels)
    run = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel), "-c", str(constraints)],
                         capture_output=True, text=True, timeout=900, env=clean, cwd=home)
    assert run.returncode == 0, run.stderr[-3000:]
    seconds = time.perf_counter() - start
    env = {**clean, "HOME": str(home), "CVKIT_CACHE_DIR": str(home / "cache"),
           "PATH": f"{python.parent}:{clean.get('PATH', '')}"}
    return {"python": python, "bin": python.parent, "cwd": home, "env": env, "seconds": seconds, "root": root}


def run_core(core_env, *args, timeout=300):
    return subprocess.run(list(map(str, args)), cwd=core_env["cwd"], env=core_env["env"], capture_output=True,
                          text=True, timeout=timeout)


def test_the_wheel_holds_the_package_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"cvkit", wheel.name.split("-py3")[0] + ".dist-info"}, tops  # no tests, runs, data
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "cvkit").rglob("*.py")}
    assert sources <= set(names), f"missing from the wheel: {sorted(sources - set(names))[:5]}"
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert f"Version: {cvkit.__version__}" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    core = [line for line in requires if "extra ==" not in line]
    assert any("ai-edge-litert" in line for line in core) and not any("tensorflow" in line for line in core)
    assert any(line.startswith("Requires-Dist: tensorflow-cpu") and 'extra == "train"' in line for line in requires)


def test_the_core_install_scores_and_serves_without_tensorflow(core_env, model_dir, model, sample_dir):
    bin_ = core_env["bin"]
    where = run_core(core_env, bin_ / "python", "-c", "import cvkit; print(cvkit.__file__)")
    assert where.stdout.strip().startswith(str(core_env["root"])), where  # the installed copy, not the checkout
    tf = run_core(core_env, bin_ / "python", "-c", "import tensorflow")
    assert tf.returncode != 0 and "No module named 'tensorflow'" in tf.stderr
    assert run_core(core_env, bin_ / "cvkit", "--version").stdout.strip() == f"cvkit {cvkit.__version__}"

    images = sample_dir / "fruit"
    scored = run_core(core_env, bin_ / "cvkit", "score", model_dir, images, "-o", "p.csv", "--quiet")
    assert scored.returncode == 0, scored.stderr[-3000:]
    with open(core_env["cwd"] / "p.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    paths = [row["path"] for row in rows]
    assert len(rows) == len(list(images.glob("*.jpg"))) and "ran on litert" in scored.stdout
    assert [row["label"] for row in rows] == model.predict(paths).tolist()  # the full install's answers

    port = free_port()
    server = subprocess.Popen([str(bin_ / "cvkit"), "serve", str(model_dir), "--port", str(port)],
                              cwd=core_env["cwd"], env=core_env["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        with open(paths[0], "rb") as image:
            answer = httpx.post(f"{url}/score", files={"image": ("a.jpg", image, "image/jpeg")}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] == rows[0]["label"]
    finally:
        server.terminate()
        server.wait(timeout=60)

    train = run_core(core_env, bin_ / "cvkit", "train", sample_dir, "-o", "m")
    assert train.returncode == 1
    assert train.stderr.strip() == ("cvkit train: error: cvkit train needs TensorFlow, which is not installed: "
                                    "pip install 'cvkit[train]'")


def test_the_core_install_is_under_a_quarter_of_the_full_one(core_env):
    core, full = folder_bytes(core_env["root"] / "venv"), folder_bytes(Path(sys.prefix))
    print(f"\ncore venv {core / 2**20:.0f} MiB (installed in {core_env['seconds']:.0f} s), "
          f"full venv {full / 2**20:.0f} MiB: {core / full:.0%}")
    assert core < full / 4


@pytest.fixture(scope="module")
def train_env(wheel, tmp_path_factory) -> dict:
    """The wheel in a fresh virtual environment whose dependencies (``cvkit[train]``'s included) are the
    tested lock's, reached by a path file to this environment's site-packages: the release's own
    code and package data, the lock's TensorFlow, without installing 600 MB a second time."""
    import sysconfig

    root = tmp_path_factory.mktemp("train")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                         capture_output=True, text=True, timeout=600, env=clean, cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, env=clean).stdout.strip())
    (site / "lock_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # appended after site
    home = root / "home"
    home.mkdir()
    env = {**clean, "HOME": str(home), "CVKIT_CACHE_DIR": str(home / "cache"),
           "PATH": f"{python.parent}:{clean.get('PATH', '')}"}
    return {"python": python, "bin": python.parent, "cwd": home, "env": env, "root": root, "site": site}


def test_a_first_run_of_the_released_wheel_trains_and_scores_outside_the_checkout(train_env, sample_dir):
    """Issue 28's first run on a fresh machine: ``cvkit train`` then ``cvkit score`` from the installed wheel,
    in a folder outside the checkout, with an empty HOME and feature cache: a missing package-data
    file, a path relative to the repository or a write into the install would fail here."""
    bin_, cwd = train_env["bin"], train_env["cwd"]
    installed = train_env["site"] / "cvkit"
    before = sorted(p.relative_to(installed).as_posix() for p in installed.rglob("*") if "__pycache__" not in p.parts)
    where = run_core(train_env, bin_ / "python", "-c", "import cvkit; print(cvkit.__file__)")
    assert where.stdout.strip().startswith(str(installed)), where  # the wheel's copy, not the checkout
    shutil.copytree(sample_dir, cwd / "photos")
    trained = run_core(train_env, bin_ / "cvkit", "train", "photos", "-o", "model", "--quiet", timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "head: " in trained.stdout and "test accuracy" in trained.stdout
    assert not any(w in trained.stderr for w in ("oneDNN", "absl::", "I0000")), trained.stderr[-2000:]
    scored = run_core(train_env, bin_ / "cvkit", "score", "model", "photos", "-o", "p.csv", "--quiet")
    assert scored.returncode == 0, scored.stderr[-3000:]
    with open(cwd / "p.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    right = sum(Path(row["path"]).parent.name == row["label"] for row in rows)
    assert len(rows) == 104 and right / len(rows) > 0.9, right
    assert any((cwd / "cache").rglob("*"))  # the features were cached in CVKIT_CACHE_DIR, under the empty HOME
    after = sorted(p.relative_to(installed).as_posix() for p in installed.rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # nothing written into the install
