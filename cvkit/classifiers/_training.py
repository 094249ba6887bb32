"""The pieces :class:`~cvkit.classifiers._finetune.FineTuneClassifier` trains with.

Why a module of its own: ``finetune.py`` reads as the two phases of training (head, then fine-tune);
the data it trains on, the network it builds and the batches it feeds are here.

- :func:`read_pixels`: the training images as one pixel array, decoded by :meth:`cvkit.ImageSource.read_all`.
- :func:`augmented_batches`: shuffled, augmented pixel batches for phase 2, repeatable for a seed.
- :func:`feature_batches`: shuffled feature batches for phase 1 with a Keras head.
- :class:`TrainingData`, :class:`Network`: what ``fit`` prepared, and the model being trained.
- :func:`build_network`: pixels -> frozen backbone -> dropout -> softmax ``Dense``.
- :func:`fit_logistic_head`: phase 1 as a linear probe copied into the ``Dense`` layer.

Example:
    >>> batches = augmented_batches(np.zeros((5, 8, 8, 3), np.uint8), np.arange(5), np.ones(5),
    ...                             batch_size=2, pipeline=None, seed=0)
    >>> len(batches), batches[0][0].shape
    (3, (2, 8, 8, 3))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cvkit._console import import_keras, import_tensorflow
from cvkit.classifiers._heads import default_estimator
from cvkit.classifiers._history import append_epochs
from cvkit.models._head import LinearHead

__all__ = ["read_pixels", "augmented_batches", "feature_batches", "TrainingData", "Network", "build_network",
           "fit_logistic_head"]


def read_pixels(source: Any, size: tuple[int, int], verbose: bool = False
                ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """``(pixels, ok, skipped)``: every image of an :class:`~cvkit.ImageSource` at ``size`` = ``(width, height)``.

    Decoded by the one decode loop (:meth:`cvkit.ImageSource.read_all`; with ``verbose``, its
    batches under a "Reading images" progress bar). Rows of unreadable images are zeros with
    ``ok`` False; ``skipped`` lists ``(name, reason)``.

    Example:
        >>> from cvkit.data import ImageSource
        >>> pixels, ok, skipped = read_pixels(ImageSource.resolve(["sample_data/bird/owl.jpg", "gone.jpg"]), (32, 24))
        >>> pixels.shape, ok.tolist(), skipped
        ((2, 24, 32, 3), [True, False], [('gone.jpg', 'file not found')])
    """
    if not verbose:
        return source.read_all(size)
    from cvkit._console import progress_bar  # tqdm.auto, ending at 100% in saved notebooks

    width, height = size
    pixels = np.zeros((len(source), height, width, 3), np.uint8)
    ok = np.zeros(len(source), bool)
    skipped: list[tuple[str, str]] = []
    with progress_bar(total=len(source), desc="Reading images", unit="img") as bar:
        for batch in source.batches((width, height), batch_size=64):
            pixels[batch.index], ok[batch.index] = batch.pixels, batch.ok
            skipped += [(source.name(int(i)), r) for i, r in zip(batch.index, batch.reasons) if r is not None]
            bar.update(len(batch))
    return pixels, ok, skipped


def augmented_batches(pixels: np.ndarray, targets: np.ndarray, weights: np.ndarray, batch_size: int,
                   pipeline: Any, seed: int):
    """A Keras ``PyDataset`` of shuffled, augmented batches, repeatable for a given seed."""
    keras = import_keras()

    from cvkit.data.augment import quiet_imgaug

    class AugmentedImages(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0
            self.order = np.random.RandomState(seed).permutation(len(pixels))

        def __len__(self) -> int:
            return int(np.ceil(len(pixels) / batch_size))

        def __getitem__(self, index: int):
            rows = self.order[index * batch_size:(index + 1) * batch_size]
            batch = pixels[rows]
            if pipeline is not None:
                # seeded per (epoch, batch): the same augmentations whatever order batches are fetched in
                with quiet_imgaug():
                    pipeline.seed_(int((seed * 1_000_003 + self.epoch * 10_007 + index) % (2 ** 31)))
                    batch = np.asarray(pipeline(images=batch))
            return batch.astype(np.float32), targets[rows], weights[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.RandomState(seed + self.epoch).permutation(len(pixels))

    return AugmentedImages()


def feature_batches(feats: np.ndarray, targets: np.ndarray, weights: np.ndarray, batch_size: int, seed: int) -> Any:
    """Batches of ``(features, target, weight)``, reshuffled every epoch by a seeded ``tf.data`` shuffle.

    The shuffle has its own seed, so the order repeats for a ``random_state`` without setting
    TensorFlow's global seed.
    """
    tf = import_tensorflow()

    data = tf.data.Dataset.from_tensor_slices((feats.astype(np.float32), targets, weights))
    return data.shuffle(len(feats), seed=seed, reshuffle_each_iteration=True).batch(batch_size)


@dataclass
class TrainingData:
    """What :meth:`FineTuneClassifier.fit` trains on, after reading and checking the images."""

    pixels: np.ndarray  # uint8 (n, height, width, 3): the readable training images
    targets: np.ndarray  # class index per image
    weights: np.ndarray  # sample weight per image (class_weight)
    classes: list[str]
    feature_source: Any  # what phase 1 featurizes: the readable paths (cached) or the pixels
    val: tuple[np.ndarray, np.ndarray] | None  # (pixels, class indices) or None
    skipped: list[tuple[str, str]]
    size: tuple[int, int]  # (width, height)
    seed: int

    @property
    def monitor(self) -> str:
        return "val_loss" if self.val is not None else "loss"



@dataclass
class Network:
    """The model being trained and the parts each phase touches."""

    model: Any
    backbone: Any
    dropout: Any
    dense: Any


def build_network(backbone_name: str, size: tuple[int, int], n_classes: int, dropout: float, seed: int) -> Network:
    """Pixels -> frozen backbone (BatchNorm in inference mode) -> dropout -> softmax Dense, seeded."""
    keras = import_keras()

    from cvkit import backbones

    width, height = size
    backbone = backbones.get(backbone_name, input_shape=(height, width, 3))
    backbone.trainable = False
    inputs = keras.Input((height, width, 3), dtype="float32", name="image")
    drop = keras.layers.Dropout(dropout, seed=seed, name="head_dropout")
    dense = keras.layers.Dense(n_classes, activation="softmax", name="classifier",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    outputs = dense(drop(backbone(inputs, training=False)))
    return Network(keras.Model(inputs, outputs, name=f"{backbone_name}_finetuned"), backbone, drop, dense)


def fit_logistic_head(dense: Any, feats: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                       vfeats: np.ndarray | None, vtargets: np.ndarray | None, seed: int,
                       history: dict[str, list]) -> int:
    """Phase 1 as a linear probe: CV-tuned logistic regression, copied into the ``Dense`` layer."""
    estimator = default_estimator(int(np.bincount(targets).min()), random_state=seed)
    estimator.fit(feats, targets, sample_weight=weights)
    folded = LinearHead.from_estimator(estimator, feats[:64])
    if folded is None or folded.normalize:  # pragma: no cover - a multinomial logistic regression always folds
        raise RuntimeError("the logistic-regression head could not be copied into the Dense layer")
    dense.set_weights([folded.weights, folded.bias])

    def loss_accuracy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        p = np.clip(estimator.predict_proba(x)[np.arange(len(y)), y], 1e-7, 1.0)
        return float(-np.mean(np.log(p))), float(np.mean(estimator.predict(x) == y))

    loss, accuracy = loss_accuracy(feats, targets)
    val_loss, val_accuracy = loss_accuracy(vfeats, vtargets) if vfeats is not None else (np.nan, np.nan)
    return append_epochs(history, "head", {"loss": [loss], "accuracy": [accuracy], "val_loss": [val_loss],
                                           "val_accuracy": [val_accuracy]})
