"""Training curves of a fitted classifier: loss and accuracy per epoch, training vs validation.

Lives beside the classifiers because :meth:`FineTuneClassifier.plot_history` draws with it
(:mod:`cvkit.evaluation.plots` re-exports :func:`plot_history` for everyone else). matplotlib is
imported only when drawing.

Example:
    >>> fig = plot_history({"phase": ["head", "fine_tune"], "loss": [1.2, 0.7], "val_loss": [1.3, 0.9]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss']
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cvkit._console import import_keras

__all__ = ["plot_history", "history_dict", "HISTORY_KEYS", "new_history", "append_epochs", "summarize_history",
           "scores_text", "phase_summary", "phase_progress", "validation_note"]


def history_dict(history) -> tuple[dict[str, np.ndarray], np.ndarray, list[str] | None]:
    """``(metric -> values, epoch numbers, phase per epoch or None)`` from any supported history.

    Example:
        >>> metrics, epochs, phases = history_dict({"loss": [1.0, 0.5]})
        >>> sorted(metrics), epochs.tolist(), phases
        (['loss'], [1.0, 2.0], None)
    """
    for attr in ("history_", "history"):
        inner = getattr(history, attr, None)
        if isinstance(inner, dict) or hasattr(inner, "columns"):
            history = inner
            break
    if hasattr(history, "to_dict") and hasattr(history, "columns"):  # a DataFrame
        history = {c: history[c].tolist() for c in history.columns}
    if not isinstance(history, dict) or not history:
        raise ValueError("history must be a Keras History, its .history dict (metric -> list per "
                         "epoch), a DataFrame, or a classifier with a history_ attribute")
    phases = history.get("phase")
    metrics: dict[str, np.ndarray] = {}
    for key, values in history.items():
        if key in ("phase", "epoch"):
            continue
        try:
            metrics[str(key)] = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            continue  # not a per-epoch number (e.g. a label): not plotted
    n = max((len(v) for v in metrics.values()), default=0)
    epochs = np.asarray(history["epoch"], dtype=np.float64) if "epoch" in history else np.arange(1, n + 1.0)
    return metrics, epochs, (list(map(str, phases)) if phases is not None else None)


def plot_history(history, ax=None, metrics: Sequence[str] | None = None, title: str | None = None):
    """Training curves from a fine-tuning history: one panel per metric, training vs validation.

    ``history`` is a Keras ``History``, its ``.history`` dict, a DataFrame, or a classifier with a
    ``history_`` attribute (cvkit's ``FineTuneClassifier``: its ``phase`` changes, e.g. from
    training the head to fine-tuning, are marked with a dotted line, and the figure's title says how
    many validation images there are: with a dozen, validation accuracy moves in steps of several
    points and often sits still for epochs, which says little about the model). ``metrics`` picks panels
    (default: every metric except the learning rate, loss first). ``ax`` is one Axes (for one
    metric) or a sequence of Axes, one per panel. Returns the Figure.

    Example:
        >>> fig = plot_history({"loss": [1.2, 0.7], "val_loss": [1.3, 0.9]})
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    hist, epochs, phases = history_dict(history)
    bases = [k for k in hist if not k.startswith("val_") and k not in ("lr", "learning_rate")]
    bases += [k[4:] for k in hist if k.startswith("val_") and k[4:] not in hist]  # val-only metrics
    if metrics is None:
        metrics = sorted(bases, key=lambda k: (k != "loss", bases.index(k)))
    else:
        metrics = [str(m) for m in metrics]
        unknown = [m for m in metrics if m not in hist and f"val_{m}" not in hist]
        if unknown:
            raise ValueError(f"metric(s) {unknown} not in the history (has: {sorted(hist)})")
    if not metrics:
        raise ValueError(f"nothing to plot in the history (keys: {sorted(hist)})")
    if ax is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
        axes = list(axes.flat)
    else:
        axes = [ax] if not isinstance(ax, (list, tuple, np.ndarray)) else list(np.ravel(ax))
        if len(axes) != len(metrics):
            raise ValueError(f"plot_history draws {len(metrics)} panel(s) ({', '.join(metrics)}); "
                             f"got {len(axes)} Axes. Pass one Axes per panel or choose metrics=")
        fig = axes[0].figure
    changes = [i for i in range(1, len(phases or [])) if phases[i] != phases[i - 1]]
    for panel, metric in zip(axes, metrics):
        for key, label, style in ((metric, "training", "-o"), (f"val_{metric}", "validation", "--s")):
            values = hist.get(key)
            if values is not None and np.isfinite(values).any():
                panel.plot(epochs[:len(values)], values, style, markersize=3, label=label)
        for i in changes:
            panel.axvline(epochs[i] - 0.5, color="gray", linestyle=":", linewidth=1)
            panel.text(epochs[i] - 0.4, 0.98, phases[i].replace("_", " "), color="gray", fontsize=8,
                       va="top", transform=panel.get_xaxis_transform())
        panel.set_xlabel("Epoch")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.set_ylabel(metric)
        panel.set_title(metric.replace("_", " "))
        panel.grid(alpha=0.3)
        panel.legend(fontsize=8)
    heading = "; ".join(t for t in (title, _validation_of(history)) if t)
    if heading:
        fig.suptitle(heading, fontsize=10)
    if ax is None:
        fig.tight_layout()
    return fig


def _validation_of(history) -> str:
    """:func:`validation_note` for a fitted classifier that counted its validation images, else ''."""
    metrics = getattr(history, "metrics_", None)
    if isinstance(metrics, dict) and "n_validation" in metrics:
        return validation_note(metrics["n_validation"])
    return ""


#: The per-epoch columns of a :class:`FineTuneClassifier`'s ``history_``.
HISTORY_KEYS = ("phase", "epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def new_history() -> dict[str, list]:
    """An empty training history: one list per column of :data:`HISTORY_KEYS`.

    Example:
        >>> sorted(new_history())
        ['accuracy', 'epoch', 'loss', 'phase', 'val_accuracy', 'val_loss']
    """
    return {key: [] for key in HISTORY_KEYS}


def append_epochs(history: dict[str, list], phase: str, logs: dict[str, Sequence[float]]) -> int:
    """Append the epochs of Keras ``History.history``-like ``logs`` as ``phase``; returns how many.

    Epoch numbers continue from those already in ``history``; a metric missing from ``logs`` is NaN.

    Example:
        >>> h = new_history()
        >>> append_epochs(h, "head", {"loss": [0.9, 0.5], "accuracy": [0.6, 0.8]})
        2
        >>> h["epoch"], h["val_loss"]
        ([1, 2], [nan, nan])
    """
    n = len(logs.get("loss", []))
    start = len(history["epoch"])
    for e in range(n):
        history["phase"].append(phase)
        history["epoch"].append(start + e + 1)
        for key in HISTORY_KEYS[2:]:
            history[key].append(float(logs[key][e]) if key in logs else float("nan"))
    return n


def summarize_history(history: dict[str, list]) -> dict[str, Any]:
    """Epochs run per phase, and each phase's best epoch (lowest validation loss, else the last).

    Example:
        >>> h = new_history()
        >>> _ = append_epochs(h, "head", {"loss": [0.9, 0.5], "val_loss": [0.7, 0.8]})
        >>> summarize_history(h)
        {'epochs_run': {'head': 2, 'fine_tune': 0}, 'head_best_loss': 0.9, 'head_best_val_loss': 0.7}
    """
    out: dict[str, Any] = {"epochs_run": {p: history["phase"].count(p) for p in ("head", "fine_tune")}}
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


def scores_text(history: dict[str, list], row: int) -> str:
    """The finite scores of one epoch (a row of ``history``) as text, for what ``fit`` prints.

    Example:
        >>> h = new_history()
        >>> _ = append_epochs(h, "head", {"loss": [0.41], "accuracy": [0.92]})
        >>> scores_text(h, -1)
        'loss 0.410, accuracy 0.920'
    """
    parts = []
    for key in HISTORY_KEYS[2:]:
        value = history[key][row]
        if np.isfinite(value):
            parts.append(f"{key.replace('val_', 'validation ')} {value:.3f}")
    return ", ".join(parts)


def phase_summary(phase: str, history: dict[str, list], run: int, maximum: int) -> str:
    """One line after a training phase: epochs run of ``maximum``, and its best epoch (as early stopping picks it).

    The best epoch has the lowest validation loss (the training loss without validation); epochs
    are counted within the phase, as the phase's progress lines count them.

    Example:
        >>> h = new_history()
        >>> _ = append_epochs(h, "head", {"loss": [0.5]})
        >>> _ = append_epochs(h, "fine_tune", {"loss": [0.4, 0.3, 0.35], "val_loss": [0.6, 0.5, 0.55]})
        >>> phase_summary("fine_tune", h, 3, 10)
        '  fine-tuning: 3 of 10 epochs (stopped early); best epoch 2: loss 0.300, validation loss 0.500'
    """
    rows = [i for i, p in enumerate(history["phase"]) if p == phase]
    if not rows:
        return ""
    val_loss = [history["val_loss"][i] for i in rows]
    watched = val_loss if np.isfinite(val_loss).any() else [history["loss"][i] for i in rows]
    best = int(np.nanargmin(watched))
    name = {"head": "head", "fine_tune": "fine-tuning"}.get(phase, phase)
    stopped = " (stopped early)" if run < maximum else ""
    return f"  {name}: {run} of {maximum} epochs{stopped}; best epoch {best + 1}: {scores_text(history, rows[best])}"


def validation_note(n_validation: int | None) -> str:
    """How small the validation set is, in words: with a dozen images, accuracy moves in big steps.

    Example:
        >>> validation_note(13)
        'validation: 13 images, one image = 7.7 points of accuracy'
        >>> validation_note(0)
        'no validation images'
    """
    if n_validation is None:
        return ""
    n = int(n_validation)
    if n <= 0:
        return "no validation images"
    return f"validation: {n} image{'s' if n != 1 else ''}, one image = {100 / n:.1f} points of accuracy"


def phase_progress(verbose, label: str, offset: int) -> list:
    """Keras' progress bar for ``fit(callbacks=...)``, its epoch lines named for a phase: "Fine-tuning epoch 1/10".

    Keras numbers a phase's epochs from ``initial_epoch`` (after the earlier phase's, so callbacks
    and TensorBoard see one sequence); these lines count the phase's own epochs from 1, as its
    ``epochs`` parameter does. ``offset`` is that ``initial_epoch``. An empty list (no output) when
    ``verbose`` is 0.

    Example:
        >>> phase_progress(0, "fine-tuning epoch", 1)
        []
        >>> type(phase_progress(1, "fine-tuning epoch", 1)[0]).__name__
        'PhaseProgbar'
    """
    if verbose == 0:
        return []
    keras = import_keras()

    class PhaseProgbar(keras.callbacks.ProgbarLogger):
        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            self._reset_progbar()
            self._maybe_init_progbar()
            if self.verbose:
                print(f"{label[0].upper()}{label[1:]} {epoch + 1 - offset}/{self.epochs - offset}", flush=True)

    return [PhaseProgbar()]
