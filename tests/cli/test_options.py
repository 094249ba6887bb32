"""What runs a model in every command: --runtime/--precision/--num-threads, else the CVKIT_*
environment, else the defaults (cvkit.options.RunOptions). A command-line default must never hide
CVKIT_RUNTIME: that bug would run a service's model on the wrong runtime without a word."""
from __future__ import annotations

import shutil

import pytest

from cvkit.cli import main
from cvkit.cli._main import COMMANDS, build_parser
from tests.support.models import SAMPLE_DATA, trained_model_dir


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos" / "bird"
    folder.mkdir(parents=True)
    for name in ("owl.jpg", "crow.jpg"):
        shutil.copy(SAMPLE_DATA / "bird" / name, folder / name)
    return tmp_path / "photos"


@pytest.mark.slow
def test_cvkit_runtime_chooses_the_runtime_and_a_flag_beats_it(photos, tmp_path, monkeypatch, capsys):
    model = str(trained_model_dir())
    monkeypatch.setenv("CVKIT_RUNTIME", "keras")
    assert main(["score", model, str(photos), "-o", str(tmp_path / "a.csv"), "--quiet"]) == 0
    assert "(ran on keras float32)" in capsys.readouterr().out
    assert main(["evaluate", model, str(photos), "--top-losses", "0"]) == 0
    assert "(ran on keras float32)" in capsys.readouterr().out
    assert main(["score", model, str(photos), "-o", str(tmp_path / "b.csv"), "--quiet", "--runtime", "litert"]) == 0
    assert "(ran on litert float32)" in capsys.readouterr().out


def test_a_bad_variable_is_reported_in_one_line_naming_it(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CVKIT_RUNTIME", "gpu")
    assert main(["score", str(trained_model_dir()), str(photos), "-o", str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err
    assert "cvkit score: error: CVKIT_RUNTIME must be one of 'auto', 'litert', 'keras', got 'gpu'" in err


@pytest.mark.parametrize("command", ["serve", "score", "evaluate", "audit"])
def test_model_running_commands_leave_the_run_options_to_the_environment(command):
    assert command in {c.name for c in COMMANDS}
    words = {"serve": ["m"], "score": ["m", "d"], "evaluate": ["m"], "audit": ["d", "-o", "x.csv"]}[command]
    args = build_parser(command).parse_args([command, *words])
    assert (args.runtime, args.precision) == (None, None)  # None: $CVKIT_RUNTIME / $CVKIT_PRECISION decide
    args = build_parser(command).parse_args([command, *words, "--runtime", "keras"])
    assert args.runtime == "keras"


def test_progress_switches_are_verbose_everywhere():
    for command, words in (("train", ["d"]), ("score", ["m", "d"]), ("featurize", ["b", "d", "-o", "f"])):
        assert build_parser(command).parse_args([command, *words]).verbose is True
        for flag in ("--quiet", "--no-progress"):
            assert build_parser(command).parse_args([command, *words, flag]).verbose is False
