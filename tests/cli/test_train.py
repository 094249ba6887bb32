"""``cvkit train``: the real console script on sample photos, and clear errors for bad input."""
from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cvkit.cli._main import COMMANDS, build_parser, main

pytestmark = pytest.mark.slow


def _cvkit() -> list[str]:
    script = Path(sys.executable).parent / "cvkit"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cvkit.cli"]


def _small_tree(sample_dir: Path, dest: Path, per_class: int) -> Path:
    for folder in sorted(p for p in sample_dir.iterdir() if p.is_dir()):
        (dest / folder.name).mkdir(parents=True)
        for p in sorted(folder.glob("*.jpg"))[:per_class]:
            shutil.copy2(p, dest / folder.name / p.name)
    return dest


def test_train_features_from_the_shell(sample_dir, tmp_path):
    out = tmp_path / "models" / "sample"
    run = subprocess.run([*_cvkit(), "train", str(sample_dir), "--output", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "split: 68 training, 36 test images" in run.stdout
    assert "test accuracy: 0.9722 (35/36)" in run.stdout
    assert f"model saved to {out}" in run.stdout
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["method"] == "features" and meta["metrics"]["test_accuracy"] == pytest.approx(35 / 36)
    split = json.loads((out / "split.json").read_text())
    assert len(split["train"]) == 68 and len(split["test"]) == 36
    import cvkit
    from cvkit.data import load_split
    _, test = load_split(out / "split.json")
    assert cvkit.load_model(out).score(test) == pytest.approx(35 / 36)


def test_train_finetune_from_the_shell_shows_both_phases(sample_dir, tmp_path):
    data = _small_tree(sample_dir, tmp_path / "data", per_class=3)
    out = tmp_path / "ft"
    run = subprocess.run([*_cvkit(), "train", str(data), "-o", str(out), "--method", "finetune", "--epochs", "1"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    # both phases named, the fine-tuning epochs numbered on their own (Keras' "Epoch 2/2" is gone)
    assert "Phase 1/2: training the new head" in run.stdout and "Phase 2/2: fine-tuning" in run.stdout
    assert "Fine-tuning epoch 1/1" in run.stdout and "Epoch 2/2" not in run.stdout
    assert "trained FineTuneClassifier (finetune, efficientnet_lite0)" in run.stdout
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["method"] == "finetune" and meta["metrics"]["epochs_run"] == {"head": 1, "fine_tune": 1}
    assert meta["params"]["epochs"] == 1 and meta["params"]["augment"] == "default"


def test_missing_data_and_bad_options_exit_2_with_a_message(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m")]) == 2
    assert "cvkit train: error:" in capsys.readouterr().err and not (tmp_path / "m").exists()
    assert main(["train", str(tmp_path), "-o", str(tmp_path / "m"), "--test-size", "1.5"]) == 2
    assert "--test-size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", str(tmp_path), "-o", str(tmp_path / "m"), "--method", "magic"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_never_writes_over_a_folder_that_is_not_a_model(sample_dir, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "keep.jpg").write_bytes(b"mine")
    assert main(["train", str(sample_dir), "-o", str(photos), "--overwrite"]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert [p.name for p in photos.iterdir()] == ["keep.jpg"]


def test_every_registered_command_has_a_parser_and_runner():
    parser = build_parser()
    names = [c.name for c in COMMANDS]
    assert names[:1] == ["train"] and len(set(names)) == len(names)
    for name in names:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([name, "--help"])
        assert info.value.code == 0
    args = build_parser("train").parse_args(["train", "d", "-o", "m", "--method", "finetune", "--epochs", "3"])
    assert (args.method, args.epochs, args._run) == ("finetune", 3, "cvkit.cli._train:run")
    for cmd in COMMANDS:  # one convention: every command module has add_arguments(parser) and run(args)
        module = importlib.import_module(cmd.module)
        assert callable(module.add_arguments) and callable(module.run), cmd.module
        assert cmd.runner == f"{cmd.module}:run"


def test_only_the_chosen_command_is_imported():
    """`cvkit --help` imports no command module; `cvkit train` never imports the web server."""
    code = ("import sys\n"
            "from cvkit.cli import main\n"
            "try:\n"
            "    main(sys.argv[1:])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('cvkit.cli.', 'cvkit.serving', 'fastapi'))))\n")
    def imported(*argv):
        run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip().splitlines()[-1]
    assert imported("--help") == "['cvkit.cli._main']"
    assert imported("train", "--help") == "['cvkit.cli._main', 'cvkit.cli._train']"


def test_library_modules_never_import_argparse():
    package = Path(__file__).resolve().parents[2] / "cvkit"
    offenders = [str(p.relative_to(package)) for p in sorted(package.rglob("*.py"))
                 if p.parent.name != "cli" and re.search(r"^\s*(import|from) argparse\b", p.read_text(), re.M)]
    assert offenders == []
