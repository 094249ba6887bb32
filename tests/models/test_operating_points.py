"""Operating points travel with the model: thresholds answer "no decision" identically in every path.

One model folder with per-class thresholds (chosen so that about half of the test photos fall below
them) is answered through ``predict`` (the classifier, and the folder on LiteRT and on Keras),
``score_image``, ``batch_score``, ``cvkit score``, the service in each protocol (a real server
started here), the Azure ML entry script, and an export's sidecar; all must give the same labels.
Hostile or malformed threshold fields are refused naming the field, and folders saved before
thresholds existed answer as before.
"""
from __future__ import annotations

import base64
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cvkit.models import ModelFormatError, load_model, read_metadata, save_thresholds
from cvkit.models._decision import DecisionRule
from tests.support.models import edited_model_copy, test_split, trained_model_dir


@pytest.fixture(scope="module")
def paths():
    return [str(p) for p in test_split().paths]


@pytest.fixture(scope="module")
def proba(paths):
    return load_model(trained_model_dir()).predict_proba(paths)


@pytest.fixture(scope="module")
def thresholds(proba):
    """Per class, a threshold in the widest gap between the middle half of the top probabilities of
    the photos answered with it: about half fall below, none near enough to flip between runtimes."""
    classes = load_model(trained_model_dir()).classes_
    best, top = proba.argmax(1), proba.max(1)
    out = {}
    for i, c in enumerate(classes):
        values = np.sort(np.unique(top[best == i]))
        if len(values) < 2:
            continue
        middle = values[len(values) // 4: max(len(values) // 4 + 2, 3 * len(values) // 4 + 1)]
        gap = int(np.argmax(np.diff(middle)))
        out[c] = float((middle[gap] + middle[gap + 1]) / 2)
    return out


@pytest.fixture(scope="module")
def expected(proba, thresholds):
    """The labels the rule must give, worked out here by hand from the probabilities."""
    classes = load_model(trained_model_dir()).classes_
    out = []
    for row in proba:
        c = classes[int(row.argmax())]
        out.append(c if row.max() >= thresholds.get(c, 0.0) else "no decision")
    assert 0 < out.count("no decision") < len(out), "the thresholds should withhold some answers, not all"
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory, thresholds):
    """A copy of the session's model folder, given the thresholds with save_thresholds."""
    folder = tmp_path_factory.mktemp("operating") / "model"
    shutil.copytree(trained_model_dir(), folder)
    rule = save_thresholds(folder, thresholds)
    assert rule.thresholds == {c: thresholds.get(c, 0.0) for c in read_metadata(folder)["classes"]}
    return folder


def test_a_classifier_given_thresholds_saves_them_and_answers_alike(fitted, paths, thresholds, expected, tmp_path):
    from cvkit.classifiers import FeatureClassifier
    from tests.support.models import standard_split

    clf = FeatureClassifier(verbose=False).fit(standard_split()[0])  # the shared `fitted` stays untouched
    assert clf.predict(paths).tolist() == fitted.predict(paths).tolist(), "arg-max until thresholds are set"
    assert clf.set_thresholds(thresholds) is clf
    assert clf.predict(paths).tolist() == expected
    np.testing.assert_array_equal(clf.predict_proba(paths), fitted.predict_proba(paths))  # probabilities stay
    loaded = load_model(clf.save(tmp_path / "model"))
    assert loaded.predict(paths).tolist() == expected
    assert "answers by per-class thresholds" in repr(loaded)
    assert clf.fit(standard_split()[0]).decision_rule_.is_argmax, "a new fit starts from the arg-max again"
    with pytest.raises(ValueError, match="'cat' is not a class of this model"):
        clf.set_thresholds({"cat": 0.5})
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1\], got 1.5"):
        clf.set_thresholds(1.5)
    with pytest.raises(ValueError, match="'bird' is also a class name"):
        clf.set_thresholds(0.5, no_decision_label="bird")


@pytest.mark.parametrize("runtime", ["litert", "keras"])
def test_the_folder_answers_alike_on_each_runtime(folder, paths, expected, runtime):
    model = load_model(folder, runtime=runtime)
    assert model.predict(paths).tolist() == expected
    answers = [model.score_image(p) for p in paths]
    assert [a["label"] for a in answers] == expected
    assert {a["decision"] for a in answers} == {"label", "no_decision"}
    assert all(a["rule"].startswith("per-class thresholds") for a in answers)
    assert all(a["label"] == a["top_k"][0]["label"] or a["decision"] == "no_decision" for a in answers)


def test_batch_score_and_the_cli_write_the_same_labels(folder, paths, expected, tmp_path, capsys):
    from cvkit.cli._main import main
    from cvkit.models import batch_score

    summary = batch_score(folder, paths, tmp_path / "local.csv", verbose=False)
    assert "decision rule: per-class thresholds" in str(summary)
    with open(tmp_path / "local.csv", newline="") as handle:
        assert [r["label"] for r in csv.DictReader(handle)] == expected
    table = tmp_path / "images.tsv"
    table.write_text("path\n" + "\n".join(paths) + "\n")
    assert main(["score", str(folder), str(table), "-o", str(tmp_path / "cli.csv"), "--no-progress"]) == 0
    assert "decision rule: per-class thresholds" in capsys.readouterr().out
    with open(tmp_path / "cli.csv", newline="") as handle:
        assert [r["label"] for r in csv.DictReader(handle)] == expected


def test_the_service_answers_alike_in_every_protocol(folder, paths, expected):
    from cvkit.serving import BackgroundServer, Client

    with BackgroundServer(folder) as server, Client(server.url) as client:
        server.wait_until_ready(timeout=300)
        assert client.metadata()["decision"]["thresholds"] == read_metadata(folder)["decision"]["thresholds"]
        for protocol in ("cvkit", "cvtk", "azureml", "tfserving"):
            answers = client.score(paths, protocol=protocol)
            assert [a["label"] for a in answers] == expected, protocol
            assert {a["decision"] for a in answers} == {"label", "no_decision"}, protocol
        json_answers = client.score(paths, encoding="json")
        assert [a["label"] for a in json_answers] == expected


def test_the_azureml_entry_script_answers_alike(folder, paths, expected, monkeypatch):
    from cvkit.serving import azureml_entry

    monkeypatch.setattr(azureml_entry, "model", load_model(folder))
    body = {"images": [{"image_in_base64": base64.b64encode(Path(p).read_bytes()).decode()} for p in paths]}
    answers = azureml_entry.run(json.dumps(body))["predictions"]
    assert [a["label"] for a in answers] == expected


def test_a_folder_without_a_rule_answers_as_before(paths, proba, tmp_path):
    folder = edited_model_copy(tmp_path / "old", decision=edited_model_copy.DROP)  # as before decision rules
    model = load_model(folder)
    assert model.decision_rule_.is_argmax
    classes = np.array(model.classes_, dtype=object)
    assert model.predict(paths).tolist() == classes[proba.argmax(1)].tolist()
    answer = model.score_image(paths[0])
    assert sorted(answer) == ["label", "novelty", "score", "scores", "top_k"], "no rule fields for an arg-max model"
    assert save_thresholds(folder, None).is_argmax  # clearing thresholds gives the arg-max back


@pytest.mark.parametrize("decision, message", [
    ({"thresholds": 1.5}, r"'decision.thresholds' must be a number in \[0, 1\], got 1.5"),
    ({"thresholds": "0.5"}, r"'decision.thresholds' must be a number in \[0, 1\], got '0.5'"),
    ({"thresholds": True}, r"'decision.thresholds' must be a number in \[0, 1\], got True"),
    ({"thresholds": [0.5, 0.5]}, "'decision.thresholds' must be a number, an object"),
    ({"thresholds": {"bird": -0.1}}, r"'decision.thresholds\['bird'\]' must be a number in \[0, 1\]"),
    ({"thresholds": {"cat": 0.5}}, "'decision.thresholds' names class\\(es\\) the model does not have: 'cat'"),
    ({"thresholds": 0.5, "run": "os.system('x')"}, "'decision.run' is not a field of a decision rule"),
    ({"no_decision_label": "bird"}, "'decision.no_decision_label' 'bird' is also a class name"),
    ({"no_decision_label": "x" * 101}, "'decision.no_decision_label' must be a non-empty name of at most 100"),
    ({"unknown_cut": 0.5}, "'decision.unknown_cut' needs a novelty scorer"),
    ("arg-max", "field 'decision' must be an object, got str"),
])
def test_a_hostile_or_malformed_rule_is_refused_naming_the_field(tmp_path, decision, message):
    folder = edited_model_copy(tmp_path / "model", decision=decision, novelty=edited_model_copy.DROP)
    with pytest.raises(ModelFormatError, match=message):
        load_model(folder)
    with pytest.raises(ModelFormatError, match="metadata.json"):
        read_metadata(folder)  # every reader (Ray jobs, the service) checks it the same way


def test_save_thresholds_names_a_class_the_model_does_not_have(folder):
    before = (Path(folder) / "metadata.json").read_bytes()
    with pytest.raises(ValueError, match="'cat' is not a class of this model"):
        save_thresholds(folder, {"cat": 0.5})
    assert (Path(folder) / "metadata.json").read_bytes() == before, "a refused change writes nothing"


def test_thresholds_for_reaches_its_target_on_the_report(fitted):
    import cvkit
    from cvkit.evaluation import thresholds_for

    report = cvkit.evaluate(fitted, test_split())
    chosen = thresholds_for(report, precision=1.0)
    rule = DecisionRule(thresholds=chosen)
    labels, _ = rule.decide(report.proba, report.classes)
    truth = np.array(report.classes, dtype=object)[report.y_true]
    answered = labels != "no decision"
    assert answered.any() and (labels[answered] == truth[answered]).all(), "precision 1.0 on the answered photos"
    recall = thresholds_for(report, recall=0.5, per_class=False)
    labels, _ = DecisionRule(thresholds=recall).decide(report.proba, report.classes)
    assert np.mean(labels == truth) >= 0.5
    with pytest.raises(ValueError, match="exactly one target"):
        thresholds_for(report)
    with pytest.raises(ValueError, match=r"precision must be a number in \(0, 1\], got 1.5"):
        thresholds_for(report, precision=1.5)


def test_thresholds_for_takes_the_lowest_threshold_that_keeps_the_target_and_warns_when_none_does():
    from cvkit.evaluation import EvaluationReport, thresholds_for

    # class a answers: 0.9 right, 0.7 wrong, 0.6 right; class b answers: 0.8 right, 0.6 right
    report = EvaluationReport(["a", "a", "b", "b", "b"], [[.9, .1], [.6, .4], [.7, .3], [.2, .8], [.4, .6]], ["a", "b"])
    # halfway to the next answer below the last one kept; 0 when every answer is kept
    assert thresholds_for(report, precision=1.0) == {"a": 0.8, "b": 0.0}
    assert thresholds_for(report, precision=0.6) == {"a": 0.0, "b": 0.0}  # 2 of 3 answers of a are right
    assert thresholds_for(report, recall=0.5) == {"a": 0.8, "b": 0.0}
    with pytest.warns(UserWarning, match=r"recall 1 is not reached for b \(best 0.667\)"):
        assert thresholds_for(report, recall=1.0) == {"a": 0.0, "b": 0.0}  # one b photo is answered a


def test_the_thresholds_command_sets_chooses_shows_and_clears(tmp_path, capsys):
    from cvkit.cli._main import main
    from tests.support.models import trained_run_dir

    folder = shutil.copytree(trained_model_dir(), tmp_path / "model")
    assert main(["thresholds", str(folder)]) == 0
    assert "answers by arg-max" in capsys.readouterr().out
    assert main(["thresholds", str(folder), "--class", "bird=0.9", "--class", "fruit=0.7"]) == 0
    assert load_model(folder).decision_rule_.thresholds == {"bird": 0.9, "flower": 0.0, "fruit": 0.7,
                                                            "vegetable": 0.0}
    assert main(["thresholds", str(folder), "--precision", "1.0", "--images",
                 str(trained_run_dir() / "split.json")]) == 0
    out = capsys.readouterr().out
    assert "chosen on 36 held-out images" in out and "per-class thresholds" in out
    model = load_model(folder)
    truth = [str(v) for v in test_split().image_labels]
    answers = model.predict(test_split())
    kept = [(a, t) for a, t in zip(answers, truth) if a != "no decision"]
    assert kept and all(a == t for a, t in kept), "precision 1.0 on the photos it was chosen on"
    assert main(["thresholds", str(folder), "--clear"]) == 0
    assert load_model(folder).decision_rule_.is_argmax
    assert main(["thresholds", str(folder), "--class", "cat=0.5"]) == 2
    assert "'cat' is not a class of this model" in capsys.readouterr().err
    assert main(["thresholds", str(folder), "--class", "bird"]) == 2
    assert "expected NAME=THRESHOLD" in capsys.readouterr().err
    assert main(["thresholds", str(folder), "--precision", "0.9"]) == 2
    assert "--images goes with --precision" in capsys.readouterr().err
