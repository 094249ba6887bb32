"""Write a small model folder with today's cvkit, as a fixture that later releases must still load.

Usage (from the repository root, once per model-format release)::

    python scripts/make_model_fixture.py tests/fixtures/model_v0_1

A real FeatureClassifier folder holds EfficientNet-Lite0 (about 27 MB): too big to keep. This one is
written by the same ``cvkit.models.save_model`` (every file, hash and metadata field as today's
folders have them) around a tiny network that a person can check: it averages each colour channel
and answers the strongest, so a red image is "red". Inputs are 16x16 RGB.

Never regenerate an existing fixture: it stands for the folders users already have. Add a new one
(``model_v0_2`` ...) when the format changes, and keep loading the old ones in the tests.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

CLASSES = ("blue", "green", "red")  # sorted, as a fitted classifier's classes_
SIZE = (16, 16)  # (width, height)


class MeanColour:
    """A fitted classifier in the shape save_model expects: the strongest mean colour channel wins."""

    backbone = "mean_rgb"
    _method = "features"

    def __init__(self) -> None:
        self.classes_ = np.array(CLASSES, dtype=object)
        self.input_size_ = SIZE

    def get_params(self, deep: bool = False) -> dict:
        return {"backbone": self.backbone, "size": list(SIZE)}

    def _export(self) -> dict:
        from cvkit._console import import_keras

        keras = import_keras()
        width, height = SIZE
        inputs = keras.Input((height, width, 3), name="pixels")
        mean = keras.layers.GlobalAveragePooling2D(name="mean_rgb")(inputs)
        dense = keras.layers.Dense(len(CLASSES), activation="softmax", name="head")
        outputs = dense(mean)
        # logits = mean RGB (0..255) / 10 routed to the class of each channel: R -> red, G -> green, B -> blue
        kernel = np.zeros((3, len(CLASSES)), dtype="float32")
        for channel, name in enumerate(("red", "green", "blue")):
            kernel[channel, CLASSES.index(name)] = 0.1
        dense.set_weights([kernel, np.zeros(len(CLASSES), dtype="float32")])
        return {"keras_model": keras.Model(inputs, outputs, name="mean_colour"), "head": None,
                "backbone": self.backbone, "metrics": {"note": "hand-set weights, not trained"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the folder to write (must not exist)")
    args = parser.parse_args(argv)
    from cvkit.models import save_model

    path = save_model(MeanColour(), args.output, model_version="fixture")
    print(f"wrote {path}: {', '.join(sorted(p.name for p in Path(path).iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
