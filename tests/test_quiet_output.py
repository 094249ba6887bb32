"""A user sees cvkit's own messages, progress bars and results: no TensorFlow, absl or kernel log lines.

TensorFlow is quieted by cvkit itself (:mod:`cvkit._console`), so the subprocesses and kernels here
start WITHOUT ``TF_CPP_MIN_LOG_LEVEL`` in their environment (the test session sets it for itself).
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Lines TensorFlow, absl, Keras' tracing and Jupyter kernels print that a cvkit user must not see.
NOISE = re.compile(r"absl::|oneDNN|cpu_feature_guard|retracing|I0000|W0000|E0000|Memory patch|fully_quantize|"
                   r"inference_type|without encryption|Unable to parse line")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def _fresh_env(tmp_path: Path, onednn: str | None) -> dict[str, str]:
    """A new user's process: empty HOME and feature cache (so TensorFlow is imported to convert), and
    ``TF_ENABLE_ONEDNN_OPTS=1`` when asked: oneDNN's custom operations on, as on Intel CPUs with AMX or
    AVX-512 BF16, where TensorFlow writes absl lines before it reads ``TF_CPP_MIN_LOG_LEVEL``."""
    (tmp_path / "home").mkdir(exist_ok=True)
    env = _env(HOME=str(tmp_path / "home"), CVKIT_CACHE_DIR=str(tmp_path / "cache"))
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    return env


def _noise(raw: bytes) -> list[str]:
    """The lines of raw process output (bytes, as the terminal gets them) that look like TensorFlow's logs."""
    return [line for line in raw.decode("utf-8", "replace").splitlines() if NOISE.search(line)]


@pytest.fixture(scope="module")
def tiny_dir(sample_dir, tmp_path_factory) -> Path:
    """Four photos per class of sample_data: enough for a fit, cheap to featurize."""
    out = tmp_path_factory.mktemp("tiny")
    for folder in sorted(p for p in sample_dir.iterdir() if p.is_dir()):
        (out / folder.name).mkdir()
        for photo in sorted(folder.glob("*.jpg"))[:4]:
            shutil.copy2(photo, out / folder.name / photo.name)
    return out


# ---------------------------------------------------------------------- cheap units
def test_importing_cvkit_sets_the_log_level_but_keeps_the_callers():
    code = "import os, cvkit, sys; print(os.environ['TF_CPP_MIN_LOG_LEVEL']); print('tensorflow' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["2", "False"]  # set, and TensorFlow still not imported
    run = subprocess.run([sys.executable, "-c", code], env={**_env(), "TF_CPP_MIN_LOG_LEVEL": "0"},
                         capture_output=True, text=True, check=True)
    assert run.stdout.split()[0] == "0"  # a level the caller chose is kept


def test_bad_image_warning_names_the_users_line(tmp_path, sample_dir):
    from cvkit import BadImageWarning, ImageDataset
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy2(next((sample_dir / "bird").glob("*.jpg")), tmp_path / name / f"{name}.jpg")
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ImageDataset.from_path(tmp_path)
    bad = [w for w in caught if issubclass(w.category, BadImageWarning)]
    assert len(bad) == 1 and bad[0].filename == __file__  # not a line inside cvkit


def test_quiet_stderr_hides_native_output_and_shows_it_on_failure(capfd):
    from cvkit._console import quiet_stderr
    with quiet_stderr():
        os.write(2, b"converter chatter\n")
    assert "converter chatter" not in capfd.readouterr().err
    with pytest.raises(RuntimeError):
        with quiet_stderr():
            os.write(2, b"why it failed\n")
            raise RuntimeError("conversion failed")
    assert "why it failed" in capfd.readouterr().err


def test_history_plot_says_how_small_the_validation_set_is():
    from cvkit.classifiers._history import phase_summary, plot_history

    class Fitted:
        history_ = {"phase": ["head", "fine_tune", "fine_tune"], "epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.4],
                    "accuracy": [0.7, 0.9, 0.9], "val_loss": [0.8, 0.6, 0.7],
                    "val_accuracy": [0.9231, 0.9231, 0.9231]}
        metrics_ = {"n_validation": 13}

    fig = plot_history(Fitted())
    assert fig._suptitle.get_text() == "validation: 13 images, one image = 7.7 points of accuracy"
    assert phase_summary("fine_tune", Fitted.history_, 2, 10).startswith(
        "  fine-tuning: 2 of 10 epochs (stopped early); best epoch 1:")


# ---------------------------------------------------------------------- processes (slow)
def test_importing_tensorflow_through_cvkit_is_silent_even_with_onednn_forced_on(tmp_path):
    """The raw stderr of a fresh process that imports TensorFlow the cvkit way holds no log line.

    The control (a plain ``import tensorflow`` in the same environment) shows that the environment
    really makes TensorFlow print on this CPU, so the check on cvkit's import could fail."""
    env = _fresh_env(tmp_path, "1")
    control = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert _noise(control.stderr), "forcing oneDNN on no longer makes TensorFlow print: the check is vacuous"
    run = subprocess.run([sys.executable, "-c", "import cvkit._console as r; r.import_keras()"], env=env,
                         capture_output=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr == b"" and run.stdout == b"", run.stderr


def test_a_failing_tensorflow_import_still_shows_its_error(tmp_path):
    """Silencing the import must not swallow a real error: a broken ``tensorflow`` shows what it wrote."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os\nos.write(2, b'native loader: libtensorflow.so missing\\n')\n"
                                      "raise ImportError('broken tensorflow')\n")
    env = _env(PYTHONPATH=str(tmp_path / "fake") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", "import cvkit._console as r; r.import_tensorflow()"], env=env,
                         capture_output=True)
    assert run.returncode != 0
    assert b"native loader: libtensorflow.so missing" in run.stderr and b"broken tensorflow" in run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("onednn", [None, "1"], ids=["cpu-default", "onednn-forced-on"])
def test_cli_train_prints_no_tensorflow_lines(tiny_dir, tmp_path, onednn):
    run = subprocess.run([sys.executable, "-m", "cvkit.cli", "train", str(tiny_dir), "-o", str(tmp_path / "model"),
                          "--test-size", "0.25"], env=_fresh_env(tmp_path, onednn), capture_output=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert b"model saved to" in run.stdout
    assert not _noise(run.stderr), run.stderr.decode(errors="replace")
    assert not _noise(run.stdout), run.stdout.decode(errors="replace")


@pytest.mark.slow
def test_two_fine_tune_fits_show_both_phases_and_no_retracing_warning(tiny_dir):
    script = f"""
import cvkit
ds = cvkit.ImageDataset.from_directory({str(tiny_dir)!r})
for seed in (0, 1):
    cvkit.FineTuneClassifier(epochs=1, batch_size=8, validation_fraction=0.25, augment=None,
                             random_state=seed, verbose=2).fit(ds)
"""
    run = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert not NOISE.search(run.stderr), run.stderr
    assert not NOISE.search(run.stdout), run.stdout
    out = run.stdout
    assert out.count("Phase 1/2: training the new head") == 2 and "validation: 4 images" in out
    assert out.count("Phase 2/2: fine-tuning the top 2 blocks of the backbone and the head on the training "
                     "images, epochs 1..1") == 2
    assert out.count("Fine-tuning epoch 1/1") == 2 and "Epoch 2/2" not in out
    assert out.count("  fine-tuning: 1 of 1 epochs; best epoch 1:") == 2


@pytest.mark.slow
def test_executed_notebook_01_has_no_stderr_and_full_progress_bars(tmp_path, monkeypatch):
    """Papermill runs 01 in a kernel started without TF_CPP_MIN_LOG_LEVEL; its saved outputs stay clean."""
    import papermill

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("CVKIT_CACHE_DIR", str(tmp_path / "cache"))  # featurize afresh: the progress bar shows
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "01_train.ipynb"), str(out), cwd=str(REPO / "notebooks"),
                               parameters={"output_dir": str(tmp_path / "run")}, kernel_name="python3",
                               progress_bar=False)
    outputs = [o for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", [])]
    stderr = ["".join(o["text"]) for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not stderr, stderr
    texts = ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs]
    assert not [t for t in texts if NOISE.search(t)]
    bars = ["".join(o["data"]["text/plain"]) for o in outputs
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert bars, "the featurizing progress bar is missing"
    assert all("100%" in bar and " 0%" not in bar for bar in bars), bars
