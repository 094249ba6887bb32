"""The core install answers; what needs an extra says which, in one line.

Each test runs a fresh process in which TensorFlow, Keras, imgaug and cleanlab cannot be imported
(tests/support/extras.py), as in ``pip install cvkit`` without ``[train]``.
"""
from __future__ import annotations

import csv

import pytest

from tests.support.extras import REPO, run_without_training

pytestmark = pytest.mark.slow

TRAIN_HINT = "which is not installed: pip install 'cvkit[train]'"

SCORE = """
import json, sys, time
import cvkit
from cvkit.cli import main
from cvkit.serving import create_app
from fastapi.testclient import TestClient

model_dir, out, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
model = cvkit.load_model(model_dir)
predicted = model.predict(paths).tolist()
rc = main(["score", model_dir, paths[0].rsplit("/", 1)[0], "-o", out, "--quiet"])
with open(paths[0], "rb") as image, TestClient(create_app(model)) as client:  # with: the app's start-up runs
    for _ in range(1200):  # the model warms up in the background: /health says when it is ready
        if client.get("/health").status_code == 200:
            break
        time.sleep(0.05)
    served = client.post("/score", files={"image": ("a.jpg", image, "image/jpeg")})
report = cvkit.evaluate(model, cvkit.ImageDataset.from_paths(paths, predicted))
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ("tensorflow", "keras", "imgaug", "cleanlab"))
print(json.dumps({"runtime": model.runtime_, "predicted": predicted, "rc": rc, "status": served.status_code,
                  "served": served.json(), "accuracy": report.accuracy, "loaded": loaded}))
"""


def test_a_saved_model_answers_without_the_training_extra(model_dir, model, sample_dir, tmp_path):
    paths = sorted(str(p) for p in (sample_dir / "fruit").glob("*.jpg"))[:6]
    args = repr((str(model_dir), str(tmp_path / "p.csv"), paths))
    code = SCORE.replace("sys.argv[1], sys.argv[2], sys.argv[3:]", args)
    run, result = run_without_training(code, cwd=tmp_path)
    assert run.returncode == 0 and result is not None, run.stderr[-3000:]
    assert result["loaded"] == [], f"the core paths imported {result['loaded']}"
    assert result["runtime"] == "litert"
    assert result["predicted"] == model.predict(paths).tolist()  # the same answers as the full install
    assert result["rc"] == 0
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = {row["path"]: row["label"] for row in csv.DictReader(fh)}
    assert [rows[p] for p in paths] == result["predicted"]
    assert result["status"] == 200 and result["served"]["predictions"][0]["label"] == result["predicted"][0]
    assert result["accuracy"] == 1.0  # scored against its own answers: evaluate ran end to end


TRAIN = """
import json, sys
import cvkit
from cvkit.cli import main

try:
    import tensorflow
    blocked = False
except ModuleNotFoundError:
    blocked = True
data = cvkit.ImageDataset.from_directory(sys.argv[1])
messages = {}
calls = {"fit": lambda: cvkit.FeatureClassifier(verbose=False).fit(data),
         "finetune": lambda: cvkit.FineTuneClassifier(epochs=1, verbose=False).fit(data),
         "audit": lambda: cvkit.find_label_issues(data),
         "augment": lambda: cvkit.augment.default_pipeline()}
for name, call in calls.items():
    try:
        call()
        messages[name] = None
    except ImportError as exc:
        messages[name] = [type(exc).__name__, str(exc)]
rc = main(["train", sys.argv[1], "-o", sys.argv[2], "--quiet"])
print(json.dumps({"blocked": blocked, "messages": messages, "rc": rc}))
"""


def test_training_without_the_extra_fails_in_one_line_naming_it(sample_dir, tmp_path):
    code = TRAIN.replace("sys.argv[1]", repr(str(sample_dir))).replace("sys.argv[2]", repr(str(tmp_path / "m")))
    # an empty feature cache: nothing converted before, so featurizing needs TensorFlow too
    run, result = run_without_training(code, cwd=tmp_path, env={"CVKIT_CACHE_DIR": str(tmp_path / "cache")})
    assert run.returncode == 0 and result is not None, run.stderr[-3000:]
    assert result["blocked"], "the test's finder must make `import tensorflow` fail"
    messages = result["messages"]
    missing = "MissingExtraError"
    assert messages["fit"] == [missing, f"cvkit.classifiers.FeatureClassifier.fit needs TensorFlow, {TRAIN_HINT}"]
    assert messages["finetune"][1].startswith("cvkit.classifiers.FineTuneClassifier.fit needs ")
    assert messages["audit"] == [missing, f"cvkit.evaluation.find_label_issues needs cleanlab, {TRAIN_HINT}"]
    assert messages["augment"] == [missing, f"cvkit.data.augment.default_pipeline needs imgaug, {TRAIN_HINT}"]
    # the command fails before any work, in one line, with exit status 1
    assert result["rc"] == 1
    assert run.stderr.strip().splitlines() == [f"cvkit train: error: cvkit train needs TensorFlow, {TRAIN_HINT}"]
    assert not (tmp_path / "m").exists()


def test_a_broken_package_is_not_reported_as_a_missing_extra(tmp_path):
    """Only the package's own absence becomes the one-line hint; a dependency it lacks is shown as it is."""
    fake = tmp_path / "cleanlab"
    fake.mkdir()
    (fake / "__init__.py").write_text("import no_such_dependency_of_cleanlab\n")
    code = ("import json\nfrom cvkit._console import import_extra\n"
            "try:\n    import_extra('cleanlab.filter')\nexcept ImportError as exc:\n"
            "    print(json.dumps([type(exc).__name__, exc.name]))\n")
    run, result = run_without_training(code.replace("import json", "import json, sys; sys.meta_path.pop(0)"),
                                       cwd=tmp_path, env={"PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert result == ["ModuleNotFoundError", "no_such_dependency_of_cleanlab"], run.stderr[-2000:]


def test_widgets_without_the_notebooks_extra_name_it(tmp_path):
    code = ("_NotInstalled.names.add('ipywidgets')\nimport json, cvkit\n"
            "try:\n    cvkit.AnnotationWidget\nexcept ImportError as exc:\n    print(json.dumps(str(exc)))\n")
    run, result = run_without_training(code, cwd=tmp_path)
    assert result == ("cvkit.widgets.AnnotationWidget needs ipywidgets, which is not installed: "
                      "pip install 'cvkit[notebooks]'"), run.stderr[-2000:]
