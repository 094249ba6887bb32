"""Keras callbacks cvkit adds during training.

:func:`epoch_scalars` writes TensorBoard scalar logs with TensorFlow alone: Keras' own
``TensorBoard`` callback needs the separate ``tensorboard`` package just to *write* scalars, which
cvkit does not depend on. The files it writes are read by any TensorBoard (``tensorboard --logdir``).
"""
from __future__ import annotations

import os
from typing import Any

from cvkit._console import import_keras, import_tensorflow

__all__ = ["epoch_scalars"]


def epoch_scalars(log_dir: str | os.PathLike) -> Any:
    """A callback writing every epoch's logs (``loss``, ``val_accuracy``...) as TensorBoard scalars.

    Tags are ``epoch_<name>`` like Keras' TensorBoard callback; the step is the epoch index.

    Example (then ``model.fit(x, y, callbacks=[callback])``):
        >>> import tempfile
        >>> callback = epoch_scalars(os.path.join(tempfile.mkdtemp(), "tb", "head"))
        >>> callback.log_dir.endswith("head")
        True
    """
    keras = import_keras()
    tf = import_tensorflow()
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

    class EpochScalars(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.log_dir = os.fspath(log_dir)
            self.writer = None

        def on_train_begin(self, logs: Any = None) -> None:
            os.makedirs(self.log_dir, exist_ok=True)
            self.writer = tf.summary.create_file_writer(self.log_dir)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.writer is None:
                return
            with self.writer.as_default():
                for name, value in (logs or {}).items():
                    tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=int(epoch), metadata=metadata)
            self.writer.flush()

        def on_train_end(self, logs: Any = None) -> None:
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    return EpochScalars()
