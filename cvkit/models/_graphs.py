"""Pixel graphs: what a loaded model runs on pixels, on either runtime, and how save builds the LiteRT one.

A *pixel graph* maps RGB pixels ``(n, H, W, 3)`` in 0..255 to vectors ``(n, d)`` (class
probabilities for a Keras head, features for a scikit-learn head). cvkit runs two kinds with the
same small API (``predict(images, batch_size)``, ``input_shape``, ``output_shape``, ``n_outputs``,
``precision``), so everything that scores pixels is runtime-neutral:

- :class:`cvkit._litert.LiteRTModel`: the ``model.tflite`` graph on LiteRT with XNNPACK (the
  default: about 1.6x faster on a CPU, no TensorFlow import);
- :class:`KerasGraph`: the ``model.keras`` graph on TensorFlow (``runtime="keras"``).

:func:`append_softmax` is how saving a feature classifier gets its whole LiteRT graph in a tenth of
a second instead of a ten-second conversion: the backbone is converted once per backbone (the
featurizer caches it), and the fitted linear head is appended to it as two LiteRT operations
(``FULLY_CONNECTED`` + ``SOFTMAX``). Saving checks the result against Keras either way.

Example:
    >>> import os, tempfile
    >>> import cvkit
    >>> from cvkit._litert import LiteRTModel
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> model_dir = clf.save(os.path.join(tempfile.mkdtemp(), "model"))
    >>> graph = pixel_graph(cvkit.load_model(model_dir))
    >>> runtime_of(graph), graph.output_shape, pixel_graph(clf) is None
    ('litert', (-1, 1280), True)
    >>> keras_graph = as_graph(cvkit.load_model(model_dir, runtime="keras").keras_model_)
    >>> type(keras_graph).__name__, runtime_of(keras_graph), keras_graph.precision
    ('KerasGraph', 'keras', 'float32')
    >>> keras_graph.predict(np.zeros((2, 224, 224, 3), np.uint8)).shape   # features: the head runs after
    (2, 1280)
    >>> kernel, bias = np.zeros((1280, 2), np.float32), np.array([0.0, np.log(3)], np.float32)
    >>> LiteRTModel(append_softmax(clf.featurizer_.graph_, kernel, bias)).predict(np.zeros((1, 224, 224, 3))).round(2)
    array([[0.25, 0.75]], dtype=float32)
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["KerasGraph", "pixel_graph", "runtime_of", "append_softmax", "as_graph"]


class KerasGraph:
    """A Keras model from pixels to vectors, with :class:`cvkit._litert.LiteRTModel`'s ``predict`` API.

    Calls ``predict_on_batch`` per batch: no per-call set-up, unlike ``model.predict`` (tens of
    milliseconds: more than the model itself for the small batches a web service sees). (Example:
    see the module.)
    """

    runtime = "keras"
    precision = "float32"

    def __init__(self, model: Any):
        self.model = model
        self.input_shape = (-1, *(int(v) for v in tuple(model.input_shape)[1:]))
        self.output_shape = (-1, int(tuple(model.output_shape)[-1]))
        self.n_outputs = self.output_shape[1]

    def predict(self, images: Any, batch_size: int = 32) -> np.ndarray:
        """Outputs float32 ``(n, d)`` for pixels ``(n, H, W, 3)`` in 0..255."""
        images = np.asarray(images)
        out = np.empty((len(images), self.n_outputs), np.float32)
        for start in range(0, len(images), int(batch_size)):
            chunk = images[start:start + int(batch_size)].astype(np.float32, copy=False)
            out[start:start + len(chunk)] = np.asarray(self.model.predict_on_batch(chunk))
        return out

    def __repr__(self) -> str:
        return f"KerasGraph({getattr(self.model, 'name', 'model')!r}, {self.input_shape} -> {self.output_shape})"


def as_graph(graph: Any) -> Any:
    """``graph`` as a pixel graph: a Keras model is wrapped in :class:`KerasGraph`, others pass through.

    Example:
        >>> class Graph:   # anything without Keras' predict_on_batch is already a pixel graph
        ...     pass
        >>> graph = Graph()
        >>> as_graph(graph) is graph
        True
    """
    if hasattr(graph, "predict_on_batch") and not isinstance(graph, KerasGraph):
        return KerasGraph(graph)
    return graph


def runtime_of(graph: Any) -> str:
    """``"keras"`` for a Keras graph, ``"litert"`` for a LiteRT one (examples: see the module)."""
    return "keras" if isinstance(graph, KerasGraph) or hasattr(graph, "predict_on_batch") else "litert"


def pixel_graph(model: Any) -> Any:
    """The pixel graph a loaded model runs (``graph_``), or None for a model without one.

    Example:
        >>> pixel_graph(object()) is None
        True
    """
    return getattr(model, "graph_", None)


# ---------------------------------------------------------------------- building the LiteRT graph
def append_softmax(tflite: bytes, kernel: np.ndarray, bias: np.ndarray) -> bytes:
    """A ``.tflite`` graph of pixels -> features with a softmax dense layer appended: pixels -> probabilities.

    ``kernel`` is ``(d, n_classes)`` and ``bias`` ``(n_classes,)`` (a Keras ``Dense`` layer's
    weights); the graph's one output must be ``(batch, d)``. The new graph computes
    ``softmax(features @ kernel + bias)`` with LiteRT's own ``FULLY_CONNECTED`` and ``SOFTMAX``
    operations, exactly what the Keras model does, so the two agree to float32 rounding. (Example:
    see the module.)
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    kernel = np.asarray(kernel, np.float32)
    bias = np.asarray(bias, np.float32)
    model = schema.ModelT.InitFromPackedBuf(bytes(tflite), 0)
    graph = model.subgraphs[0]
    if len(graph.outputs) != 1:
        raise ValueError(f"append_softmax needs a graph with one output, this one has {len(graph.outputs)}")
    features = int(graph.outputs[0])
    width = list(graph.tensors[features].shape)[-1]
    if kernel.ndim != 2 or kernel.shape[0] != width or bias.shape != (kernel.shape[1],):
        raise ValueError(f"kernel must be ({width}, n) and bias (n,) for a graph of {width} features, "
                         f"got {kernel.shape} and {bias.shape}")
    n = kernel.shape[1]

    def buffer(values: np.ndarray) -> int:
        item = schema.BufferT()
        item.data = np.frombuffer(np.ascontiguousarray(values, "<f4").tobytes(), np.uint8)
        model.buffers.append(item)
        return len(model.buffers) - 1

    def tensor(name: str, shape: list[int], signature: list[int] | None = None, data: int = 0) -> int:
        item = schema.TensorT()
        item.name, item.type, item.buffer = name.encode(), schema.TensorType.FLOAT32, data
        item.shape = np.array(shape, np.int32)
        item.shapeSignature = None if signature is None else np.array(signature, np.int32)
        graph.tensors.append(item)
        return len(graph.tensors) - 1

    def operator(code: int, inputs: list[int], output: int, options_type: int, options: Any) -> Any:
        index = next((i for i, c in enumerate(model.operatorCodes)
                      if max(c.builtinCode, c.deprecatedBuiltinCode) == code), None)
        if index is None:
            entry = schema.OperatorCodeT()
            entry.builtinCode = entry.deprecatedBuiltinCode = code
            entry.version = 1
            model.operatorCodes.append(entry)
            index = len(model.operatorCodes) - 1
        op = schema.OperatorT()
        op.opcodeIndex, op.builtinOptionsType, op.builtinOptions = index, options_type, options
        op.inputs, op.outputs = np.array(inputs, np.int32), np.array([output], np.int32)
        return op

    weights = tensor("classifier/kernel", [n, width], data=buffer(kernel.T))
    offsets = tensor("classifier/bias", [n], data=buffer(bias))
    logits = tensor("classifier/logits", [1, n], [-1, n])
    probabilities = tensor("classifier/probabilities", [1, n], [-1, n])
    softmax = schema.SoftmaxOptionsT()
    softmax.beta = 1.0
    graph.operators += [
        operator(schema.BuiltinOperator.FULLY_CONNECTED, [features, weights, offsets], logits,
                 schema.BuiltinOptions.FullyConnectedOptions, schema.FullyConnectedOptionsT()),
        operator(schema.BuiltinOperator.SOFTMAX, [logits], probabilities,
                 schema.BuiltinOptions.SoftmaxOptions, softmax)]
    graph.outputs = np.array([probabilities], np.int32)
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == 0:
            for output in signature.outputs:
                output.tensorIndex = probabilities
    builder = flatbuffers.Builder(len(tflite) + kernel.nbytes + 65536)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
