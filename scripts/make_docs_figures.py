"""Regenerate docs/evaluation.png: the sample_data evaluation figure shown in the README.

Trains the default model (``FeatureClassifier()``, EfficientNet-Lite0 features + logistic
regression) on the standard split of ``sample_data/`` (test_size=0.34, random_state=0), evaluates
it on the 36 held-out photos and saves the confusion matrix, ROC and precision-recall curves side by
side. Also prints the report, so the README's numbers can be checked against it.

Usage:  python scripts/make_docs_figures.py [--output docs/evaluation.png]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

import cvkit

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(REPO / "docs" / "evaluation.png"))
    parser.add_argument("--data", default=str(REPO / "sample_data"))
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args(argv)

    matplotlib.use("Agg")
    dataset = cvkit.ImageDataset.from_directory(args.data)
    train, test = dataset.split(test_size=0.34, random_state=0)
    model = cvkit.FeatureClassifier().fit(train)
    report = cvkit.evaluate(model, test)
    print(report)
    fig = report.plot_summary(
        suptitle=f"cvkit on sample_data ({len(test)} held-out photos, EfficientNet-Lite0 features "
                 f"+ logistic regression): accuracy {report.accuracy:.3f}, log-loss "
                 f"{report.log_loss:.3f}, macro AUC {report.auc['macro']:.3f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    # no timestamp in the PNG metadata, so an unchanged figure gives an unchanged file
    fig.savefig(out, dpi=args.dpi, bbox_inches="tight", metadata={"Software": None})
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
