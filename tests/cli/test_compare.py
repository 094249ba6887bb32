"""``cvkit compare``: two classifiers written as "METHOD name=value ...", the verdict printed."""
from __future__ import annotations

import pytest

from cvkit.cli import main
from cvkit.cli._compare import classifier_spec
from cvkit.cli._main import build_parser


@pytest.mark.slow
def test_compare_prints_both_cross_validations_and_the_verdict(sample_dir, capsys):
    code = main(["compare", str(sample_dir), "--b", "features class_weight=balanced", "--cv", "3", "--repeats", "1",
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "A = features\nB = features class_weight=balanced" in out
    assert "over 3 folds × 1 repeat, 104 images" in out
    assert "accuracy, B minus A, paired over 3 folds: " in out
    assert ("no evidence" in out) or ("beats" in out) or ("worse" in out)


def test_a_classifier_is_a_method_and_settings():
    assert classifier_spec("features") == ("features", {})
    assert classifier_spec("finetune epochs=5 augment=none learning_rate=1e-4") == (
        "finetune", {"epochs": 5, "augment": None, "learning_rate": 1e-4})
    assert classifier_spec("features class_weight=balanced") == ("features", {"class_weight": "balanced"})
    args = build_parser("compare").parse_args(["compare", "d", "--b", "finetune"])
    assert (args.a, args.b, args.cv, args.repeats, args.metric) == ("features", "finetune", 5, 3, "accuracy")


@pytest.mark.parametrize("spec, message", [("features epochs", "expected name=value settings"),
                                           ("svm", "method must be one of 'features', 'finetune'"),
                                           ("features colour=red", "colour")])
def test_a_bad_classifier_is_one_line_naming_it(sample_dir, capsys, spec, message):
    assert main(["compare", str(sample_dir), "--b", spec, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cvkit compare: error:") and message in err, err
