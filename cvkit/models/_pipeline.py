"""Images through a pixel graph: decode on threads while the graph computes, a few batches ahead.

What :func:`cvkit.models._predictor.run_graph` (so ``predict_proba`` of loaded and fine-tuned
models) runs on. The graph is anything with ``predict(pixels, batch_size)`` and ``input_shape``
(:class:`cvkit._litert.LiteRTModel`, :class:`cvkit.models._graphs.KerasGraph`). Memory stays
bounded: at most three batches of decoded images wait for the graph. An image that cannot be read
gets a NaN row and its reason; it never stops the run.

Example:
    >>> graph = cvkit.load_model(model_dir).graph_
    >>> out, ok, skipped = run_pixels(graph, [photo, "missing.jpg"])
    >>> out.shape, ok.tolist(), skipped
    ((2, 4), [True, False], [('missing.jpg', 'file not found')])
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from cvkit.data._images import ImageReadError, read_image, resize
from cvkit.data._inputs import image_items

__all__ = ["run_pixels"]


def _decode(item: Any, size: tuple[int, int]) -> tuple[np.ndarray | None, str | None]:
    """``(pixels, None)`` at ``size`` = (width, height), or ``(None, reason)``; never raises."""
    try:
        if isinstance(item, str):
            return read_image(item, size=size), None
        if item.shape[:2] == (size[1], size[0]):
            return item, None
        return resize(item, size), None
    except ImageReadError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - a reader bug must not stop the run either
        return None, f"cannot read image ({type(exc).__name__}: {exc})"


def run_pixels(graph: Any, X: Any, batch_size: int = 32, progress: bool = False, desc: str = "Predicting",
               n_workers: int | None = None) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Run ``graph`` over the images of ``X``; returns ``(out float32 (n, d), ok, skipped)``.

    Rows of unreadable images are NaN with ``ok`` False; ``skipped`` lists ``(image, reason)``.
    Decoding runs on ``n_workers`` threads (default: the CPU count) while the graph computes.
    """
    items = image_items(X)
    height, width = (int(v) for v in graph.input_shape[1:3])
    size, batch_size = (width, height), max(1, int(batch_size))
    out = np.full((len(items), int(graph.n_outputs)), np.nan, np.float32)
    ok = np.zeros(len(items), bool)
    skipped: list[tuple[str, str]] = []
    from cvkit._console import progress_bar

    bar = progress_bar(total=len(items), desc=desc, unit="img", disable=not progress, smoothing=0.1)
    buffer = np.empty((batch_size, height, width, 3), np.uint8)
    rows: list[int] = []

    def flush() -> None:
        out[rows] = graph.predict(buffer[:len(rows)], batch_size=batch_size)
        ok[rows] = True
        bar.update(len(rows))
        rows.clear()

    try:
        with ThreadPoolExecutor(max_workers=int(n_workers or os.cpu_count() or 2),
                                thread_name_prefix="cvkit-decode") as pool:
            pending: deque = deque()
            order = iter(range(len(items)))
            for i in order:
                pending.append((i, pool.submit(_decode, items[i], size)))
                if len(pending) >= 3 * batch_size:
                    break
            while pending:
                i, future = pending.popleft()
                following = next(order, None)
                if following is not None:
                    pending.append((following, pool.submit(_decode, items[following], size)))
                pixels, reason = future.result()
                if pixels is None:
                    skipped.append((items[i] if isinstance(items[i], str) else f"<array #{i}>", reason))
                    bar.update(1)
                    continue
                buffer[len(rows)] = pixels
                rows.append(i)
                if len(rows) == batch_size:
                    flush()
            if rows:
                flush()
    finally:
        bar.close()
    return out, ok, skipped
