"""Images through a pixel graph: the one decode loop feeds it, a few batches ahead.

What :func:`cvkit.models._predictor.run_graph` (so ``predict_proba`` of loaded and fine-tuned
models) runs on. The graph is anything with ``predict(pixels, batch_size)``, ``input_shape`` and
``n_outputs`` (:class:`cvkit._litert.LiteRTModel`, :class:`cvkit.models._graphs.KerasGraph`). The
images are any input :meth:`cvkit.data.ImageSource.resolve` takes, decoded by
:meth:`cvkit.data.ImageSource.batches` while the graph computes, so memory stays bounded. An image
that cannot be read gets a NaN row and its reason; it never stops the run.

Example:
    >>> import numpy as np
    >>> class MeanColour:   # a pixel graph: (n, 8, 8, 3) uint8 -> (n, 3)
    ...     input_shape, n_outputs = (-1, 8, 8, 3), 3
    ...     def predict(self, pixels, batch_size=32):
    ...         return pixels.mean(axis=(1, 2)).astype(np.float32)
    >>> out, ok, skipped = run_pixels(MeanColour(), ["sample_data/bird/owl.jpg", "missing.jpg"])
    >>> out.shape, ok.tolist(), skipped
    ((2, 3), [True, False], [('missing.jpg', 'file not found')])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cvkit.data._source import ImageSource

__all__ = ["run_pixels"]


def run_pixels(graph: Any, X: Any, batch_size: int = 32, verbose: bool = False, desc: str = "Predicting",
               decode_threads: int | None = None) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Run ``graph`` over the images of ``X``; returns ``(out float32 (n, d), ok, skipped)``.

    Rows of unreadable images are NaN with ``ok`` False; ``skipped`` lists ``(image, reason)``.
    Decoding runs on ``decode_threads`` threads (default :func:`cvkit.options.decode_threads`) while
    the graph computes; ``verbose`` shows a progress bar named ``desc``.
    """
    source = ImageSource.resolve(X)
    height, width = (int(v) for v in graph.input_shape[1:3])
    out = np.full((len(source), int(graph.n_outputs)), np.nan, np.float32)
    ok = np.zeros(len(source), bool)
    skipped: list[tuple[str, str]] = []
    from cvkit._console import progress_bar

    bar = progress_bar(total=len(source), desc=desc, unit="img", disable=not verbose, smoothing=0.1)
    try:
        for batch in source.batches((width, height), max(1, int(batch_size)), threads=decode_threads):
            good = batch.index[batch.ok]
            if len(good):
                out[good] = graph.predict(batch.pixels[batch.ok], batch_size=batch_size)
                ok[good] = True
            skipped += [(source.name(int(i)), reason) for i, reason in zip(batch.index, batch.reasons)
                        if reason is not None]
            bar.update(len(batch))
    finally:
        bar.close()
    return out, ok, skipped
