"""The service's settings, declared once (ServiceConfig): keywords, the CVKIT_* environment and the
command line agree, and a default never hides a variable. Nothing here loads a model or starts uvicorn."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

import pytest

from cvkit._validation import InvalidParameterError
from cvkit.options import ENVIRONMENT, RunOptions
from cvkit.serving import BackgroundServer, ServiceConfig, create_app, serve
from cvkit.serving._config import environment_variable


@pytest.fixture
def environ(monkeypatch):
    """os.environ without CVKIT_* settings; put back exactly as it was afterwards."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("CVKIT_") and n != "CVKIT_CACHE_DIR"]:
        monkeypatch.delenv(name)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"  # only serve()'s folder check looks at it: uvicorn never starts
    folder.mkdir()
    (folder / "metadata.json").write_text(json.dumps({}))
    return folder


@pytest.fixture
def uvicorn_calls(monkeypatch):
    import uvicorn
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def test_every_field_has_one_variable_and_the_run_options_use_the_shared_names():
    names = {f.name: environment_variable(f.name) for f in dataclasses.fields(ServiceConfig)}
    assert names["max_batch_size"] == "CVKIT_MAX_BATCH_SIZE" and names["api_key"] == "CVKIT_API_KEY"
    for option, variable in ENVIRONMENT.items():
        assert names[option] == variable
    assert len(set(names.values())) == len(names)


def test_to_env_and_from_env_round_trip_every_field():
    config = ServiceConfig(api_key="k", max_request_bytes=123, max_images=5, max_pixels=1000,
                           max_request_pixels=2000, max_batch_size=4, max_wait_ms=2.5, default_top_k=2,
                           body_timeout=7.0, docs=False, warmup=False, model_name="flowers",
                           runtime="keras", precision="float32", num_threads=3)
    env = config.to_env()
    assert env["CVKIT_DOCS"] == "0" and env["CVKIT_NUM_THREADS"] == "3"
    assert ServiceConfig.from_env(env) == config
    assert "CVKIT_API_KEY" not in ServiceConfig().to_env()  # None fields are left out


def test_given_beats_the_environment_which_beats_the_default():
    env = {"CVKIT_MAX_BATCH_SIZE": "4", "CVKIT_RUNTIME": "keras", "CVKIT_DOCS": "off"}
    config = ServiceConfig.from_env(env, max_batch_size=8, runtime=None)
    assert (config.max_batch_size, config.runtime, config.docs, config.max_images) == (8, "keras", False,
                                                                                       ServiceConfig().max_images)
    assert config.run_options == RunOptions(runtime="keras")


@pytest.mark.parametrize("env, message", [
    ({"CVKIT_MAX_IMAGES": "many"}, "CVKIT_MAX_IMAGES must be a positive int, got 'many'"),
    ({"CVKIT_MAX_WAIT_MS": "-1"}, "CVKIT_MAX_WAIT_MS must be a number >= 0, got -1.0"),
    ({"CVKIT_RUNTIME": "gpu"}, "CVKIT_RUNTIME must be one of 'auto', 'litert', 'keras', got 'gpu'"),
    ({"CVKIT_NUM_THREADS": "0"}, "CVKIT_NUM_THREADS must be a positive int or None, got 0"),
    ({"CVKIT_MODEL_NAME": "a b"}, "CVKIT_MODEL_NAME must be a name of letters"),
])
def test_a_bad_variable_is_an_error_naming_it(env, message):
    with pytest.raises(InvalidParameterError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        ServiceConfig.from_env(env)


@pytest.mark.parametrize("field, value, message", [
    ("max_request_pixels", 0, "max_request_pixels must be a positive int, got 0"),
    ("max_batch_size", True, "max_batch_size must be a positive int, got True"),
    ("body_timeout", 0, "body_timeout must be a number > 0, got 0"),
    ("api_key", " ", "api_key must be a non-empty string or None, got ' '"),
    ("precision", "int4", "precision must be one of 'float32', 'int8', got 'int4'"),
    ("num_threads", -2, "num_threads must be a positive int or None, got -2"),
])
def test_bad_fields_are_refused_in_one_wording(field, value, message):
    with pytest.raises(InvalidParameterError) as caught:
        ServiceConfig(**{field: value})
    assert str(caught.value) == message


def test_the_run_options_rules_hold_in_the_config():
    with pytest.raises(ValueError, match="int8.*LiteRT"):
        ServiceConfig(runtime="keras", precision="int8")
    assert ServiceConfig(num_threads=2).run_options == RunOptions(num_threads=2)


def test_create_app_takes_a_config_or_its_fields_and_names_an_unknown_keyword(tmp_path):
    app = create_app(tmp_path, max_batch_size=4)
    assert app.state.config == ServiceConfig(max_batch_size=4)
    both = create_app(tmp_path, ServiceConfig(max_images=2, runtime="keras"), max_images=3)
    assert (both.state.config.max_images, both.state.config.runtime) == (3, "keras")
    with pytest.raises(TypeError, match="create_app got unknown service option.*max_batch"):
        create_app(tmp_path, max_batch=4)
    with pytest.raises(InvalidParameterError, match="max_batch_size must be a positive int, got 0"):
        create_app(tmp_path, max_batch_size=0)


def test_create_app_from_env_reads_the_model_folder_and_every_setting(tmp_path):
    from cvkit.serving._app import create_app_from_env
    app = create_app_from_env({"CVKIT_MODEL_DIR": str(tmp_path), "CVKIT_MAX_BATCH_SIZE": "4",
                               "CVKIT_WARMUP": "0", "CVKIT_RUNTIME": "keras"})
    assert app.state.config == ServiceConfig(max_batch_size=4, warmup=False, runtime="keras")
    with pytest.raises(RuntimeError, match="CVKIT_MODEL_DIR"):
        create_app_from_env({})


def test_serve_hands_its_settings_to_the_workers_through_the_environment(environ, model_folder, uvicorn_calls):
    environ["CVKIT_RUNTIME"] = "keras"
    environ["CVKIT_MAX_IMAGES"] = "7"
    serve(model_folder, api_key="secret", workers=2, max_batch_size=4, max_images=None)
    assert uvicorn_calls and uvicorn_calls[0][1]["workers"] == 2
    config = ServiceConfig.from_env(environ)  # what each worker's create_app_from_env reads
    assert (config.api_key, config.max_batch_size, config.max_images, config.runtime) == ("secret", 4, 7, "keras")
    assert config.num_threads >= 1  # two workers: each an even share of the cores
    assert environ["CVKIT_MODEL_DIR"] == os.path.abspath(model_folder)
    with pytest.raises(TypeError, match="serve got unknown service option.*max_batch"):
        serve(model_folder, max_batch=4)


def test_cvkit_serve_leaves_unset_options_to_the_environment(environ, model_folder, uvicorn_calls):
    from cvkit.cli import main
    environ.update({"CVKIT_RUNTIME": "keras", "CVKIT_MAX_REQUEST_BYTES": "1234", "CVKIT_API_KEY": "from-env"})
    assert main(["serve", str(model_folder)]) == 0
    config = ServiceConfig.from_env(environ)
    assert (config.runtime, config.max_request_bytes, config.api_key) == ("keras", 1234, "from-env")
    assert main(["serve", str(model_folder), "--runtime", "litert", "--max-request-mb", "2"]) == 0
    config = ServiceConfig.from_env(environ)
    assert (config.runtime, config.max_request_bytes) == ("litert", 2 * 2**20)


def test_workers_is_one_constraint_for_the_function_and_the_flag(model_folder, uvicorn_calls):
    from cvkit.cli._serve import add_arguments
    parser = add_arguments(argparse.ArgumentParser())
    assert parser.parse_args(["m", "--workers", "3"]).workers == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidParameterError, match="workers must be a positive int"):
            serve(model_folder, workers=bad)
    assert not uvicorn_calls


class _FakeProcess:
    """What subprocess.Popen returns, for a process that has already exited (stop() kills nothing)."""

    pid, returncode = -1, 0

    def poll(self):
        return 0


def test_background_server_passes_settings_by_environment_and_checks_them_first(environ, model_folder,
                                                                              monkeypatch):
    import cvkit.serving._server as server_module
    started = []
    monkeypatch.setattr(server_module.subprocess, "Popen",
                        lambda cmd, **kwargs: started.append((cmd, kwargs["env"])) or _FakeProcess())
    environ["CVKIT_API_KEY"] = "the-parents-key"  # never handed on: only a key given here guards the server
    server = BackgroundServer(model_folder, max_batch_size=4, runtime="keras", docs=False)
    server.start()
    server.stop()
    cmd, env = started[0]
    assert cmd[1:4] == ["-m", "cvkit.cli", "serve"] and "--runtime" not in cmd
    assert ServiceConfig.from_env(env) == ServiceConfig(max_batch_size=4, runtime="keras", docs=False)
    with pytest.raises(InvalidParameterError, match="max_batch_size must be a positive int, got 0"):
        BackgroundServer(model_folder, max_batch_size=0)
    with pytest.raises(TypeError, match="BackgroundServer got unknown service option.*batch"):
        BackgroundServer(model_folder, batch=4)
    assert len(started) == 1
