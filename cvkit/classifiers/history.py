"""Training curves for :class:`~cvkit.classifiers.FineTuneClassifier` (a matplotlib Figure)."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_history"]


def plot_history(history: dict[str, list], ax: Any = None) -> Any:
    """Loss and accuracy per epoch (training solid, validation dashed); phase changes marked.

    ``history`` is ``clf.history_``: lists ``phase``, ``epoch``, ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``. ``ax`` may be a pair of Axes to draw into. Returns the Figure.

    Example:
        >>> fig = plot_history(clf.history_)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError("ax must be two matplotlib Axes (loss, accuracy)")
        fig = axes[0].figure
    epochs = np.asarray(history.get("epoch", []), dtype=float)
    phases = list(history.get("phase", []))
    for axis, key, title in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        train = np.asarray(history.get(key, []), dtype=float)
        val = np.asarray(history.get(f"val_{key}", []), dtype=float)
        axis.plot(epochs, train, marker="o", ms=3, label="training")
        if np.isfinite(val).any():
            axis.plot(epochs, val, marker="o", ms=3, ls="--", label="validation")
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                axis.axvline(epochs[i] - 0.5, color="grey", lw=1, ls=":")
                axis.text(epochs[i] - 0.4, 0.98, "fine-tune", transform=axis.get_xaxis_transform(),
                          va="top", fontsize=8, color="grey")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
