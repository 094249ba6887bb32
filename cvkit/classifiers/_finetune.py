"""``FineTuneClassifier``: train a new head on a frozen backbone, then fine-tune the top of the backbone.

cvtk's "DNN refinement", done the way Keras' transfer-learning guide describes:

1. **Head.** The backbone is frozen; a new ``Dropout`` + ``Dense`` softmax head is trained. The
   frozen backbone (BatchNorm in inference mode) maps each image to the same features every epoch,
   so this phase runs on features computed once (and cached on disk), which takes seconds. By
   default the head is a linear probe (logistic regression with cross-validated regularisation,
   copied into the ``Dense`` layer); ``head="keras"`` trains it with Adam for ``head_epochs``.
2. **Fine-tune.** The top ``unfreeze`` blocks of the backbone are unfrozen (BatchNorm layers stay
   frozen and in inference mode) and the whole model trains end to end at a lower learning rate on
   augmented images. Starting phase 2 from a trained head rather than a random one keeps large
   early gradients from wrecking the pretrained features ("linear probing, then fine-tuning").

Both phases watch a validation set (``validation_data`` or a stratified ``validation_fraction``
of the training images), stop early and restore the best weights.

When it pays: with a few dozen photos per class, fine-tuning has little to add to the linear probe
(:class:`FeatureClassifier`). On ``sample_data`` (68 training photos) it averaged 91.7% against the
probe's 93.5% over six random splits (``bench/splits.py``), at about 20x the fit time. It is the
tool for hundreds of photos per class, or photos unlike ImageNet's.

Example (skipped in doctests: fine-tuning trains for minutes on CPU):
    >>> ft = FineTuneClassifier(epochs=8).fit(train)   # doctest: +SKIP
    >>> ft.score(test)                                  # doctest: +SKIP
    0.91...
    >>> ft.plot_history()                               # doctest: +SKIP
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from cvkit._console import import_keras
from cvkit._validation import Custom, Interval, Options
from cvkit.classifiers._base import BACKBONE, CACHE_DIR, CLASS_WEIGHT, RANDOM_STATE, VERBOSE, ImageClassifier
from cvkit.classifiers._heads import class_weights
from cvkit.classifiers._history import (
    append_epochs,
    new_history,
    phase_progress,
    phase_summary,
    plot_history,
    scores_text,
    summarize_history,
    validation_note,
)
from cvkit.classifiers._inputs import image_source, labelled_source, size_wh
from cvkit.classifiers._training import (
    Network,
    TrainingData,
    augmented_batches,
    build_network,
    feature_batches,
    fit_logistic_head,
    read_pixels,
)
from cvkit.data._inputs import encode_labels, warn_unreadable
from cvkit.data._source import ImageSource
from cvkit.data._split import stratified_split_indices
from cvkit.models._decision import DecisionRule
from cvkit.models._predictor import run_graph

__all__ = ["FineTuneClassifier", "augmented_batches"]


def _is_augment(value: Any) -> bool:
    """True for what :func:`cvkit.data.augment.as_pipeline` takes (a name, an augmenter, a list of them)."""
    from cvkit.data.augment import as_pipeline

    try:
        as_pipeline(value)
    except (TypeError, ValueError):
        return False
    return True


_POSITIVE_RATE = [Interval(float, 0, None, closed="neither")]
_SHARE = [Interval(float, 0, 1, closed="left")]


class FineTuneClassifier(ImageClassifier):
    """A pretrained backbone with a new head, trained in two phases (see the module notes).

    Parameters
    ----------
    backbone : backbone name (see :func:`cvkit.backbones.available`).
    epochs : maximum epochs of phase 2 (fine-tuning the top of the backbone); 0 trains the head only.
    head : how phase 1 trains the new head on the frozen backbone's features. ``"logistic"``
        (default): a linear probe, multinomial logistic regression with its L2 strength chosen by
        cross-validation (as :class:`FeatureClassifier`), copied into the ``Dense`` layer: the
        "linear probing, then fine-tuning" recipe, which keeps fine-tuning from distorting good
        features. ``"keras"``: Keras' guide as written, ``head_epochs`` of Adam at ``learning_rate``.
    head_epochs : maximum epochs of phase 1 with ``head="keras"`` (fast: it runs on features).
    batch_size : images per training step.
    learning_rate : Adam learning rate of phase 1 with ``head="keras"``; phase 2 uses
        ``fine_tune_learning_rate``.
    fine_tune_learning_rate : Adam learning rate of phase 2 (about 10x lower, as in Keras' guide).
    unfreeze : how much of the backbone phase 2 trains: a number of top blocks, or a fraction of
        them (see :func:`cvkit.backbones.top_layers`). BatchNorm layers always stay frozen.
    augment : on-the-fly augmentation in phase 2: None, ``"default"`` (:func:`cvkit.data.augment.default_pipeline`),
        ``"default-no-flip"`` (the same without mirroring: text, signs, digits, left/right classes),
        an imgaug augmenter, or a list of them. Seeded from ``random_state``.
    dropout : dropout rate before the new ``Dense`` layer.
    validation_fraction : share of the training images held out (stratified) to pick the best
        epoch, when ``fit`` gets no ``validation_data``; 0 disables validation.
    early_stopping : stop a phase when validation loss has not improved for ``patience`` epochs and
        restore the best weights.
    patience : see ``early_stopping``.
    class_weight : ``"auto"`` (default: ``"balanced"`` when classes differ more than 3x in size, else
        None), None, ``"balanced"``, or ``{class name: weight}`` (see :class:`FeatureClassifier`).
    callbacks : extra Keras callbacks, used in both phases.
    tensorboard_dir : write per-epoch TensorBoard scalars here (``head/`` and ``fine_tune/``
        sub-folders), with TensorFlow alone. For Keras' full ``TensorBoard`` callback (graphs,
        histograms; needs the ``tensorboard`` package) pass it in ``callbacks``.
    verbose : Keras' progress output: ``"auto"``/1/``True`` (progress bar), 2 (a line per epoch), 0/``False`` (silent).
        Any but 0 also shows progress bars while featurizing (and reading 200+ images).
    cache : cache phase-1 features on disk (see :class:`cvkit.features._featurizer.ImageFeaturizer`).
    cache_dir : cache folder; default ``$CVKIT_CACHE_DIR`` or ``~/.cache/cvkit``.
    random_state : seeds what the fit creates, and nothing global: the validation split, the new
        layer's initial weights and dropout, the order of batches and the augmentation. Results
        repeat on CPU as far as TensorFlow allows.
    calibration : ``"temperature"`` (default): after training, the probabilities are made honest on
        the validation images (the temperature that minimises their log-loss divides the last layer's
        logits; answers and accuracy unchanged; ``metrics_["calibration"]`` gives it and the ECE
        there before and after), or None. Without validation images the model stays uncalibrated.
        The validation images also chose the best epoch, so this calibration is slightly optimistic.

    Attributes
    ----------
    classes_, backbone_ (the canonical backbone name), backbone_info_ (its
    :class:`cvkit.backbones.BackboneInfo`), input_size_ ``(width, height)``, model_ (the Keras model:
    pixels to probabilities),
    history_ (dict of per-epoch lists: ``phase``, ``epoch``, ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``), metrics_ (best validation scores, epochs run, calibration), skipped_ (unreadable
    images), temperature_ (1.0: uncalibrated).

    Example (construction only: fitting trains for minutes, see the module example):
        >>> ft = FineTuneClassifier(backbone="EfficientNet-Lite0", epochs=3, batch_size=8)
        >>> ft.get_params()["epochs"], ft.get_params()["head"], hasattr(ft, "model_")
        (3, 'logistic', False)
    """

    _method = "finetune"
    _parameter_constraints = {
        "backbone": BACKBONE, "epochs": [Interval(int, 0, None)], "head": [Options(["logistic", "keras"])],
        "head_epochs": [Interval(int, 0, None)], "batch_size": [Interval(int, 1, None)],
        "learning_rate": _POSITIVE_RATE, "fine_tune_learning_rate": _POSITIVE_RATE,
        "unfreeze": [Interval(int, 1, None), Interval(float, 0, 1, closed="right")],
        "augment": [Custom(_is_augment, "None, 'default', 'default-no-flip', an imgaug augmenter or a list of them")],
        "dropout": _SHARE, "validation_fraction": _SHARE, "early_stopping": ["boolean"],
        "patience": [Interval(int, 0, None)], "class_weight": CLASS_WEIGHT,
        "callbacks": [Custom(lambda v: isinstance(v, (list, tuple)), "a list of Keras callbacks"), None],
        "tensorboard_dir": ["path", None], "verbose": VERBOSE, "cache": ["boolean"], "cache_dir": CACHE_DIR,
        "random_state": RANDOM_STATE, "calibration": [Options(["temperature"]), None],
    }

    def __init__(self, backbone: str = "efficientnet_lite0", epochs: int = 10, head: str = "logistic",
                 head_epochs: int = 100,
                 batch_size: int = 16, learning_rate: float = 1e-3, fine_tune_learning_rate: float = 1e-4,
                 unfreeze: int | float = 2, augment: Any = "default", dropout: float = 0.2,
                 validation_fraction: float = 0.15, early_stopping: bool = True, patience: int = 5,
                 class_weight: str | dict | None = "auto", callbacks: Sequence[Any] | None = None,
                 tensorboard_dir: str | os.PathLike | None = None, verbose: int | str = "auto",
                 cache: bool = True, cache_dir: str | os.PathLike | None = None, random_state: int | None = 0,
                 calibration: str | None = "temperature"):
        self.backbone = backbone
        self.epochs = epochs
        self.head = head
        self.head_epochs = head_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.unfreeze = unfreeze
        self.augment = augment
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.class_weight = class_weight
        self.callbacks = callbacks
        self.tensorboard_dir = tensorboard_dir
        self.verbose = verbose
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.calibration = calibration

    # ------------------------------------------------------------------ checks
    def _checked_params(self) -> Any:
        """Check every parameter (errors name it); returns ``verbose`` as Keras takes it."""
        self._validate_params()
        if self.head == "keras" and self.epochs + self.head_epochs == 0:
            raise ValueError("epochs and head_epochs are both 0: nothing would be trained")
        return int(self.verbose) if isinstance(self.verbose, (bool, np.bool_)) else self.verbose

    def _sample_weights(self, targets: np.ndarray, classes: list[str]) -> np.ndarray:
        weights = class_weights(self.class_weight, targets, classes)
        if weights is None:
            return np.ones(len(targets), np.float32)
        return np.array([weights[int(t)] for t in targets], dtype=np.float32)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Sequence[str] | None = None, validation_data: Any = None) -> FineTuneClassifier:
        """Train the head, then fine-tune the top of the backbone; returns ``self``.

        ``X``: any labelled input of :meth:`cvkit.ImageSource.resolve` (a labelled dataset, a folder of
        class folders, a ``path,label`` table, a split manifest's train side, or paths / a uint8 array
        with ``y``). ``validation_data``: labelled images alike (or ``(images, labels)``) to choose the
        best epoch; without it ``validation_fraction`` of ``X`` is held out.

        Example (skipped: trains for minutes):
            >>> ft = FineTuneClassifier(epochs=5, augment="default").fit("sample_data")  # doctest: +SKIP
        """
        from cvkit import backbones
        from cvkit.data.augment import as_pipeline

        verbose = self._checked_params()
        spec = backbones.info(self.backbone)
        pipeline = as_pipeline(self.augment)
        seed = int(self.random_state) if self.random_state is not None else int(np.random.randint(2 ** 31 - 1))
        data = self._prepare(X, y, validation_data, size_wh(spec.input_size), seed, verbose != 0)
        net = build_network(spec.name, data.size, len(data.classes), float(self.dropout), seed)
        history, head_run = new_history(), 0
        train_head = self.head == "logistic" or self.head_epochs > 0
        phases = int(train_head) + int(self.epochs > 0)
        head_text, fine_tune_text = self._phase_texts(data, pipeline)
        if train_head:
            _say(verbose, f"Phase 1/{phases}: {head_text}")
            head_run = self._train_head(net, data, history, verbose)
        if self.epochs > 0:
            _say(verbose, f"Phase {phases}/{phases}: {fine_tune_text}")
            self._fine_tune(net, data, history, head_run, pipeline, verbose)

        self.model_ = net.model
        self.backbone_ = spec.name
        self.backbone_info_ = spec
        self.classes_ = data.classes
        self.input_size_ = data.size
        self.history_ = history
        self.skipped_ = data.skipped
        self.metrics_ = {"n_train": len(data.targets), "n_validation": 0 if data.val is None else len(data.val[1]),
                         "class_counts": {c: int(n) for c, n in zip(data.classes, np.bincount(
                             data.targets, minlength=len(data.classes)))},
                         **summarize_history(history)}
        self.metrics_["calibration"] = self._calibrate(net, data)
        self.temperature_ = float(self.metrics_["calibration"].get("temperature", 1.0))
        self.decision_rule_ = DecisionRule()  # a new fit answers by arg-max until set_thresholds
        return self

    def _calibrate(self, net: Network, data: TrainingData) -> dict[str, Any]:
        """Temperature scaling on the validation images, folded into the softmax layer (none without them)."""
        if self.calibration is None:
            return {"method": None}
        if data.val is None or len(np.unique(data.val[1])) < 2:
            return {"method": "temperature", "temperature": 1.0,
                    "note": "not calibrated: no validation images (validation_fraction=0 and no validation_data)"}
        from cvkit.classifiers._calibrate import fold_temperature

        return fold_temperature(net.model, net.dense, data.val[0], data.val[1])

    def _split_validation(self, source: ImageSource, validation_data: Any, seed: int
                          ) -> tuple[ImageSource, ImageSource | None]:
        """``(train, validation)`` labelled sources: the validation images given, held out, or none."""
        if validation_data is not None:
            if isinstance(validation_data, tuple) and len(validation_data) == 2:
                val_X, val_y = validation_data
            else:
                val_X, val_y = validation_data, None
            return source, labelled_source(val_X, val_y, what="validation_data", side="test")
        if self.validation_fraction > 0:
            names, codes = encode_labels(source.labels)
            try:
                tr, va = stratified_split_indices(codes, names, test_size=float(self.validation_fraction),
                                                  random_state=seed)
            except ValueError as exc:
                warnings.warn(f"FineTuneClassifier: no validation split ({exc}); training without "
                              "validation, early stopping watches the training loss", UserWarning, stacklevel=4)
            else:
                return source.subset(tr), source.subset(va)
        return source, None

    def _prepare(self, X: Any, y: Any, validation_data: Any, size: tuple[int, int], seed: int,
                 verbose: bool) -> TrainingData:
        """Phase 0: labels, the validation split, and the readable images as pixels at ``size`` (width, height)."""
        train, val_source = self._split_validation(labelled_source(X, y, what="fit", side="train"),
                                                   validation_data, seed)
        pixels, ok, skipped = read_pixels(train, size, verbose=verbose and len(train) >= 200)
        warn_unreadable(skipped, len(ok), "fit", stacklevel=3)
        classes, targets = encode_labels([lab for lab, good in zip(train.labels, ok) if good])
        if all(isinstance(item, str) for item in train.items):  # files: phase-1 features use the on-disk cache
            feature_source: Any = [p for p, good in zip(train.items, ok) if good]
        else:
            feature_source = pixels[ok]
        val = None
        if val_source is not None:
            unknown = sorted(set(val_source.labels) - set(classes))
            if unknown:
                raise ValueError(f"validation_data has class(es) not in the training images: "
                                 f"{', '.join(map(repr, unknown))}")
            vpix, vok, vskipped = read_pixels(val_source, size)
            warn_unreadable(vskipped, len(vok), "fit (validation images)", stacklevel=3)
            skipped = skipped + vskipped
            index = {c: i for i, c in enumerate(classes)}
            vtargets = np.array([index[v] for v, good in zip(val_source.labels, vok) if good], dtype=np.int64)
            val = (vpix[vok], vtargets) if len(vtargets) else None
        return TrainingData(pixels[ok], targets, self._sample_weights(targets, classes), classes, feature_source,
                            val, skipped, size, seed)

    def _callbacks(self, phase: str, monitor: str) -> list:
        keras = import_keras()

        out = []
        if self.early_stopping:
            out.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=int(self.patience),
                                                     restore_best_weights=True))
        if self.tensorboard_dir is not None:
            from cvkit.classifiers._callbacks import epoch_scalars
            out.append(epoch_scalars(os.path.join(os.fspath(self.tensorboard_dir), phase)))
        return out + list(self.callbacks or [])

    # ------------------------------------------------------------------ what fit prints
    def _phase_texts(self, data: TrainingData, pipeline: Any) -> tuple[str, str]:
        """What each phase does, in one line each (printed before it runs, unless ``verbose`` is 0)."""
        note = validation_note(0 if data.val is None else len(data.val[1]))
        how = ("a logistic regression, its regularisation chosen by cross-validation" if self.head == "logistic"
               else f"Adam, up to {int(self.head_epochs)} epochs")
        if isinstance(self.unfreeze, float) and not float(self.unfreeze).is_integer():
            part = f"{self.unfreeze:.0%} of the blocks"
        else:
            part = f"{int(self.unfreeze)} block{'s' if int(self.unfreeze) != 1 else ''}"
        images = "augmented images" if pipeline is not None else "the training images"
        return (f"training the new head on the frozen backbone's features ({how}); {note}",
                f"fine-tuning the top {part} of the backbone and the head on {images}, epochs 1..{int(self.epochs)}")

    def _train_head(self, net: Network, data: TrainingData, history: dict, verbose: Any) -> int:
        """Phase 1: the new head on features of the frozen backbone, computed once; returns epochs run."""
        keras = import_keras()

        from cvkit.features._featurizer import ImageFeaturizer

        featurizer = ImageFeaturizer(backbone=net.backbone, cache=self.cache, cache_dir=self.cache_dir,
                                     batch_size=int(self.batch_size), verbose=verbose != 0).fit()
        feats = featurizer.transform(data.feature_source)
        vfeats = featurizer.transform(data.val[0]) if data.val is not None else None
        vtargets = data.val[1] if data.val is not None else None
        if self.head == "logistic":
            run = fit_logistic_head(net.dense, feats, data.targets, data.weights, vfeats, vtargets, data.seed, history)
            _say(verbose, "  head trained: " + scores_text(history, -1))
            return run
        head_in = keras.Input((feats.shape[1],), dtype="float32", name="features")
        head = keras.Model(head_in, net.dense(net.dropout(head_in)), name="head")
        head.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)),
                     loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        batches = feature_batches(feats, data.targets, data.weights, int(self.batch_size), data.seed)
        callbacks = self._callbacks("head", data.monitor) + phase_progress(verbose, "head epoch", 0)
        hist = head.fit(batches, epochs=int(self.head_epochs), shuffle=False, callbacks=callbacks,
                        validation_data=(vfeats, vtargets) if vfeats is not None else None, verbose=verbose)
        run = append_epochs(history, "head", hist.history)
        _say(verbose, phase_summary("head", history, run, int(self.head_epochs)))
        return run

    def _fine_tune(self, net: Network, data: TrainingData, history: dict, head_run: int, pipeline: Any,
                   verbose: Any) -> None:
        """Phase 2: unfreeze the top blocks (not BatchNorm) and train end to end on augmented images."""
        keras = import_keras()

        from cvkit import backbones
        from cvkit.data.augment import seeded

        backbone = net.backbone
        backbone.trainable = True
        for layer in backbone.layers:
            layer.trainable = False
        for layer in backbones.top_layers(backbone, self.unfreeze):
            layer.trainable = True
        net.model.compile(optimizer=keras.optimizers.Adam(float(self.fine_tune_learning_rate)),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        batches = augmented_batches(data.pixels, data.targets, data.weights, int(self.batch_size),
                                 seeded(pipeline, data.seed) if pipeline is not None else None, data.seed)
        val = (data.val[0].astype(np.float32), data.val[1]) if data.val is not None else None
        # Keras (and TensorBoard) count on from head_run; the progress lines count this phase from 1
        callbacks = self._callbacks("fine_tune", data.monitor) + phase_progress(verbose, "fine-tuning epoch", head_run)
        hist = net.model.fit(batches, epochs=head_run + int(self.epochs), initial_epoch=head_run,
                             callbacks=callbacks, validation_data=val, validation_batch_size=32, verbose=verbose)
        run = append_epochs(history, "fine_tune", hist.history)
        _say(verbose, phase_summary("fine_tune", history, run, int(self.epochs)))
        backbone.trainable = False

    # ------------------------------------------------------------------ predicting and saving
    def _predict_proba(self, X: Any) -> np.ndarray:
        items = image_source(X, classes=self.classes_).items
        out, _ = run_graph(self.model_, items, batch_size=32, verbose=self.verbose != 0 and len(items) >= 200)
        return out

    def _export(self) -> dict[str, Any]:
        calibration = {"method": self.metrics_.get("calibration", {}).get("method"),
                       "temperature": float(getattr(self, "temperature_", 1.0)), "in_graph": True}
        return {"keras_model": self.model_, "head": None, "backbone": self.backbone_, "metrics": dict(self.metrics_),
                "calibration": calibration}

    def plot_history(self, ax: Any = None) -> Any:
        """Training curves: loss and accuracy per epoch, training and validation, phases marked.

        Draws with :func:`cvkit.classifiers._history.plot_history`; returns the matplotlib Figure.
        Example: ``ft.plot_history()``.
        """
        self._check_is_fitted()
        return plot_history(self, ax=ax)


def _say(verbose: Any, text: str) -> None:
    """Print one line of what ``fit`` reports, unless ``verbose`` is 0."""
    if text and verbose != 0:
        print(text, flush=True)
