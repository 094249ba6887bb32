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

Example:
    >>> clf = FineTuneClassifier(epochs=8).fit(train)   # doctest: +SKIP
    >>> clf.score(test)                                  # doctest: +SKIP
    0.91...
    >>> clf.plot_history()                               # doctest: +SKIP
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from cvkit.classifiers.base import ImageClassifier
from cvkit.models.predictor import run_graph
from cvkit.data.inputs import encode_labels, labels_for, load_pixels, n_images, warn_unreadable

__all__ = ["FineTuneClassifier"]


def _subset(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a dataset, a list of paths or an array."""
    if isinstance(X, np.ndarray):
        return X[idx]
    if hasattr(X, "subset") and hasattr(X, "paths"):
        return X.subset(idx)
    items = list(X)
    return [items[i] for i in idx]


def _make_sequence(pixels: np.ndarray, targets: np.ndarray, weights: np.ndarray, batch_size: int,
                   pipeline: Any, seed: int):
    """A Keras ``PyDataset`` of shuffled, augmented batches, repeatable for a given seed."""
    import keras

    from cvkit.data.augment import _quiet

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
                with _quiet():
                    pipeline.seed_(int((seed * 1_000_003 + self.epoch * 10_007 + index) % (2 ** 31)))
                    batch = np.asarray(pipeline(images=batch))
            return batch.astype(np.float32), targets[rows], weights[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.RandomState(seed + self.epoch).permutation(len(pixels))

    return AugmentedImages()


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
        an imgaug augmenter, or a list of them. Seeded from ``random_state``.
    dropout : dropout rate before the new ``Dense`` layer.
    validation_fraction : share of the training images held out (stratified) to pick the best
        epoch, when ``fit`` gets no ``validation_data``; 0 disables validation.
    early_stopping : stop a phase when validation loss has not improved for ``patience`` epochs and
        restore the best weights.
    patience : see ``early_stopping``.
    class_weight : None, ``"balanced"``, or ``{class name: weight}``.
    callbacks : extra Keras callbacks, used in both phases.
    tensorboard_dir : write per-epoch TensorBoard scalars here (``head/`` and ``fine_tune/``
        sub-folders), with TensorFlow alone. For Keras' full ``TensorBoard`` callback (graphs,
        histograms; needs the ``tensorboard`` package) pass it in ``callbacks``.
    verbose : Keras' progress output: ``"auto"``/1 (progress bar), 2 (a line per epoch), 0 (silent).
    cache : cache phase-1 features on disk (see :class:`cvkit.features.featurizer.ImageFeaturizer`).
    random_state : seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``), the
        validation split, shuffling and augmentation. Results repeat on CPU as far as TensorFlow allows.

    Attributes
    ----------
    classes_, input_size_ ``(width, height)``, model_ (the Keras model: pixels to probabilities),
    history_ (dict of per-epoch lists: ``phase``, ``epoch``, ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``), metrics_ (best validation scores, epochs run), skipped_ (unreadable images).
    """

    _method = "finetune"

    def __init__(self, backbone: str = "efficientnet_lite0", epochs: int = 10, head: str = "logistic",
                 head_epochs: int = 100,
                 batch_size: int = 16, learning_rate: float = 1e-3, fine_tune_learning_rate: float = 1e-4,
                 unfreeze: int | float = 2, augment: Any = "default", dropout: float = 0.2,
                 validation_fraction: float = 0.15, early_stopping: bool = True, patience: int = 5,
                 class_weight: str | dict | None = None, callbacks: Sequence[Any] | None = None,
                 tensorboard_dir: str | os.PathLike | None = None, verbose: int | str = "auto",
                 cache: bool = True, random_state: int | None = 0):
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
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        for name in ("epochs", "head_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.head not in ("logistic", "keras"):
            raise ValueError(f"head must be 'logistic' or 'keras', got {self.head!r}")
        if self.head == "keras" and self.epochs + self.head_epochs == 0:
            raise ValueError("epochs and head_epochs are both 0: nothing would be trained")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        for name in ("learning_rate", "fine_tune_learning_rate"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if self.verbose not in (0, 1, 2, "auto"):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {self.verbose!r}")
        if self.class_weight is not None and self.class_weight != "balanced" and not isinstance(self.class_weight, dict):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict of class name -> weight, "
                             f"got {self.class_weight!r}")

    def _sample_weights(self, targets: np.ndarray, classes: list[str]) -> np.ndarray:
        if self.class_weight is None:
            return np.ones(len(targets), np.float32)
        if self.class_weight == "balanced":
            from sklearn.utils.class_weight import compute_class_weight
            per_class = compute_class_weight("balanced", classes=np.arange(len(classes)), y=targets)
        else:
            unknown = sorted(set(map(str, self.class_weight)) - set(classes))
            if unknown:
                raise ValueError(f"class_weight names unknown class(es) {', '.join(map(repr, unknown))}; "
                                 f"classes are {', '.join(map(repr, classes))}")
            per_class = np.array([float(self.class_weight.get(c, 1.0)) for c in classes])
        return per_class[targets].astype(np.float32)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Sequence[str] | None = None, validation_data: Any = None) -> "FineTuneClassifier":
        """Train the head, then fine-tune the top of the backbone; returns ``self``.

        ``X``: a labelled :class:`~cvkit.data.ImageDataset`, or paths / a uint8 array with ``y``.
        ``validation_data``: a labelled dataset (or ``(images, labels)``) to choose the best epoch;
        without it ``validation_fraction`` of ``X`` is held out.

        Example:
            >>> clf = FineTuneClassifier(epochs=5, augment="default").fit(train)  # doctest: +SKIP
        """
        import keras

        from cvkit import backbones
        from cvkit.data.augment import as_pipeline, seeded

        self._check_params()
        labels = labels_for(X, y, what="fit")
        pipeline = as_pipeline(self.augment)
        if self.random_state is not None:
            keras.utils.set_random_seed(int(self.random_state))
        seed = int(self.random_state) if self.random_state is not None else int(np.random.randint(2 ** 31 - 1))

        # --- training / validation images
        val_X, val_labels = None, None
        if validation_data is not None:
            if isinstance(validation_data, tuple) and len(validation_data) == 2:
                val_X, val_y = validation_data
                val_labels = labels_for(val_X, val_y, what="validation_data")
            else:
                val_X, val_labels = validation_data, labels_for(validation_data, None, what="validation_data")
            train_X, train_labels = X, labels
        elif self.validation_fraction > 0:
            from cvkit.data.split import stratified_split_indices
            names = sorted(set(labels))
            codes = np.array([names.index(v) for v in labels])
            try:
                tr, va = stratified_split_indices(codes, names, test_size=float(self.validation_fraction),
                                                  random_state=seed)
            except ValueError as exc:
                warnings.warn(f"FineTuneClassifier: no validation split ({exc}); training without "
                              "validation, early stopping watches the training loss", UserWarning, stacklevel=2)
                train_X, train_labels = X, labels
            else:
                train_X, train_labels = _subset(X, tr), [labels[i] for i in tr]
                val_X, val_labels = _subset(X, va), [labels[i] for i in va]
        else:
            train_X, train_labels = X, labels

        spec = backbones.info(self.backbone)
        size = int(spec.input_size)
        progress = self.verbose != 0
        pixels, ok, skipped = load_pixels(train_X, (size, size), progress=progress and n_images(train_X) >= 200)
        warn_unreadable(skipped, len(ok), "fit", stacklevel=2)
        train_labels = [lab for lab, good in zip(train_labels, ok) if good]
        pixels = pixels[ok]
        classes, targets = encode_labels(train_labels)
        weights = self._sample_weights(targets, classes)
        val = None
        if val_X is not None:
            unknown = sorted(set(val_labels) - set(classes))
            if unknown:
                raise ValueError(f"validation_data has class(es) not in the training images: "
                                 f"{', '.join(map(repr, unknown))}")
            vpix, vok, vskipped = load_pixels(val_X, (size, size))
            warn_unreadable(vskipped, len(vok), "fit (validation images)", stacklevel=2)
            skipped += vskipped
            index = {c: i for i, c in enumerate(classes)}
            vtargets = np.array([index[v] for v, good in zip(val_labels, vok) if good], dtype=np.int64)
            val = (vpix[vok], vtargets) if len(vtargets) else None
        monitor = "val_loss" if val is not None else "loss"

        # --- the model: pixels -> frozen backbone (BatchNorm in inference mode) -> dropout -> dense
        backbone = backbones.get(spec.name, input_shape=(size, size, 3))
        backbone.trainable = False
        inputs = keras.Input((size, size, 3), dtype="float32", name="image")
        dropout = keras.layers.Dropout(float(self.dropout), name="head_dropout")
        dense = keras.layers.Dense(len(classes), activation="softmax", name="classifier")
        outputs = dense(dropout(backbone(inputs, training=False)))
        model = keras.Model(inputs, outputs, name=f"{spec.name}_finetuned")

        history: dict[str, list] = {k: [] for k in ("phase", "epoch", "loss", "accuracy", "val_loss", "val_accuracy")}

        def record(phase: str, hist: Any) -> int:
            h = hist.history
            n = len(h.get("loss", []))
            start = len(history["epoch"])
            for e in range(n):
                history["phase"].append(phase)
                history["epoch"].append(start + e + 1)
                for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                    history[key].append(float(h[key][e]) if key in h else float("nan"))
            return n

        def callbacks(phase: str) -> list:
            out = []
            if self.early_stopping:
                out.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=int(self.patience),
                                                         restore_best_weights=True))
            if self.tensorboard_dir is not None:
                from cvkit.classifiers.callbacks import epoch_scalars
                out.append(epoch_scalars(os.path.join(os.fspath(self.tensorboard_dir), phase)))
            return out + list(self.callbacks or [])

        head_run = 0
        # --- phase 1: the head on features of the frozen backbone, computed once
        if self.head == "logistic" or self.head_epochs > 0:
            from cvkit.features.featurizer import ImageFeaturizer
            featurizer = ImageFeaturizer(backbone=backbone, cache=self.cache, progress=progress,
                                         batch_size=32)
            if isinstance(train_X, np.ndarray):
                feats = featurizer.transform(pixels)
            else:  # file paths: features come from (and go to) the on-disk cache
                paths = train_X.paths if hasattr(train_X, "paths") else [os.fspath(p) for p in train_X]
                feats = featurizer.transform([p for p, good in zip(paths, ok) if good])
            vfeats = featurizer.transform(val[0]) if val is not None else None
            if self.head == "logistic":
                head_run = self._fit_logistic_head(dense, feats, targets, weights, vfeats,
                                                   None if val is None else val[1], seed, history)
            else:
                head_in = keras.Input((feats.shape[1],), dtype="float32", name="features")
                head = keras.Model(head_in, dense(dropout(head_in)), name="head")
                head.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)),
                             loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                hist = head.fit(feats, targets, sample_weight=weights, batch_size=int(self.batch_size),
                                epochs=int(self.head_epochs), shuffle=True, callbacks=callbacks("head"),
                                validation_data=(vfeats, val[1]) if val is not None else None,
                                verbose=self.verbose)
                head_run = record("head", hist)

        # --- phase 2: unfreeze the top blocks (not BatchNorm) and train end to end, augmented
        if self.epochs > 0:
            backbone.trainable = True
            for layer in backbone.layers:
                layer.trainable = False
            for layer in backbones.top_layers(backbone, self.unfreeze):
                layer.trainable = True
            model.compile(optimizer=keras.optimizers.Adam(float(self.fine_tune_learning_rate)),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            data = _make_sequence(pixels, targets, weights, int(self.batch_size),
                                  seeded(pipeline, seed) if pipeline is not None else None, seed)
            hist = model.fit(data, epochs=head_run + int(self.epochs), initial_epoch=head_run,
                             callbacks=callbacks("fine_tune"),
                             validation_data=(val[0].astype(np.float32), val[1]) if val is not None else None,
                             validation_batch_size=32, verbose=self.verbose)
            record("fine_tune", hist)
            backbone.trainable = False

        self.model_ = model
        self.classes_ = classes
        self.input_size_ = (size, size)
        self.history_ = history
        self.skipped_ = skipped
        self.metrics_ = self._summary(history, len(targets), 0 if val is None else len(val[1]), classes, targets)
        return self

    @staticmethod
    def _fit_logistic_head(dense: Any, feats: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                           vfeats: np.ndarray | None, vtargets: np.ndarray | None, seed: int,
                           history: dict[str, list]) -> int:
        """Phase 1 as a linear probe: CV-tuned logistic regression, copied into the ``Dense`` layer."""
        from cvkit.classifiers.heads import default_estimator, fold_linear_head

        estimator = default_estimator(int(np.bincount(targets).min()), random_state=seed)
        estimator.fit(feats, targets, sample_weight=weights)
        folded = fold_linear_head(estimator, feats[:64])
        if folded is None:  # pragma: no cover - a multinomial logistic regression always folds
            raise RuntimeError("the logistic-regression head could not be copied into the Dense layer")
        dense.set_weights(list(folded))

        def loss_accuracy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
            p = np.clip(estimator.predict_proba(x)[np.arange(len(y)), y], 1e-7, 1.0)
            return float(-np.mean(np.log(p))), float(np.mean(estimator.predict(x) == y))

        loss, accuracy = loss_accuracy(feats, targets)
        val_loss, val_accuracy = loss_accuracy(vfeats, vtargets) if vfeats is not None else (np.nan, np.nan)
        for key, value in (("phase", "head"), ("epoch", len(history["epoch"]) + 1), ("loss", loss),
                           ("accuracy", accuracy), ("val_loss", float(val_loss)),
                           ("val_accuracy", float(val_accuracy))):
            history[key].append(value)
        return 1

    @staticmethod
    def _summary(history: dict, n_train: int, n_val: int, classes: list[str], targets: np.ndarray) -> dict:
        out: dict[str, Any] = {"n_train": n_train, "n_validation": n_val,
                               "class_counts": {c: int(n) for c, n in zip(classes, np.bincount(targets, minlength=len(classes)))},
                               "epochs_run": {p: history["phase"].count(p) for p in ("head", "fine_tune")}}
        for phase in ("head", "fine_tune"):
            rows = [i for i, p in enumerate(history["phase"]) if p == phase]
            if not rows:
                continue
            val_loss = [history["val_loss"][i] for i in rows]
            best = rows[int(np.nanargmin(val_loss))] if np.isfinite(val_loss).any() else rows[-1]
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                value = history[key][best]
                if np.isfinite(value):
                    out[f"{phase}_best_{key}"] = round(float(value), 6)
        return out

    # ------------------------------------------------------------------ predicting and saving
    def _predict_proba(self, X: Any) -> np.ndarray:
        out, _ = run_graph(self.model_, X, batch_size=32, progress=self.verbose != 0 and n_images(X) >= 200)
        return out

    def _export(self) -> dict[str, Any]:
        return {"keras_model": self.model_, "head": None, "metrics": dict(self.metrics_)}

    def plot_history(self, ax: Any = None) -> Any:
        """Training curves: loss and accuracy per epoch, training and validation, phases marked.

        Draws with :func:`cvkit.evaluation.plots.plot_history`; returns the matplotlib Figure.
        Example: ``clf.plot_history()``.
        """
        self._check_is_fitted()
        from cvkit.evaluation.plots import plot_history
        return plot_history(self, ax=ax)
