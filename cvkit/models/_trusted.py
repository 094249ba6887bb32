"""What loading a model folder trusts: built-in Keras layers, and an allow-list of scikit-learn types.

A model folder may come from anyone (a colleague, a download), so loading it must not run code
that arrived with it. Two files hold objects:

- ``model.keras`` is loaded by Keras with ``safe_mode=True`` and no custom objects; every layer
  must then be a built-in Keras layer other than ``Lambda`` (:func:`load_keras`).
- ``head.skops`` (a non-linear scikit-learn head) is read as data first: every object, type and
  function it names is compared with :data:`TRUSTED_HEAD_TYPES`, the exact classes cvkit's own
  heads are made of, and anything else (a function, ``FunctionTransformer``, a method, any class
  not listed) is refused *before* skops builds a single object (:func:`load_head`).

Why an allow-list rather than "anything from scikit-learn": scikit-learn itself holds functions
that write files (``sklearn.datasets.dump_svmlight_file``) and estimators that call any function
they are given (``FunctionTransformer``); a head that chains the two would write a file on the
first prediction. :func:`check_savable` applies the same list when a model is saved, so cvkit never
writes a folder it would refuse to load.

Example:
    >>> import skops.io
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> refused_types(skops.io.dumps(FunctionTransformer(print)))
    ['builtins.print', 'sklearn.preprocessing._function_transformer.FunctionTransformer']
    >>> from sklearn.linear_model import LogisticRegression
    >>> refused_types(skops.io.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1])))   # the default head passes
    []
"""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cvkit._console import import_keras

__all__ = ["ModelFormatError", "TRUSTED_HEAD_TYPES", "TRUSTED_NODES", "head_types", "refused_types",
           "check_savable", "load_head", "load_keras", "all_layers"]

#: The classes a ``head.skops`` may contain, by full name: the heads cvkit builds (logistic
#: regression with its cross-validation splitter, calibration of classifiers without
#: probabilities, a scaler in a pipeline) and the plain classifiers its documentation and tests
#: use, with the parts they are stored with. Nothing here calls a function it was given.
TRUSTED_HEAD_TYPES = frozenset({
    # cvkit's own heads (cvkit.classifiers._heads)
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._logistic.LogisticRegressionCV",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.model_selection._split.KFold",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.decomposition._pca.PCA",
    "cvkit.models._head.ScoresAsLogits",  # a linear SVM's scores as logits (head="svm"); holds no function
    # plain classifiers given as FeatureClassifier(estimator=...)
    "sklearn.svm._classes.LinearSVC",
    "sklearn.svm._classes.SVC",
    "sklearn.linear_model._ridge.RidgeClassifier",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # data: containers, numbers, arrays
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int", "builtins.float",
    "builtins.bool", "builtins.NoneType",
    "numpy.ndarray", "numpy.dtype", "numpy.random.mtrand.RandomState",
    "numpy.bool_", "numpy.int8", "numpy.int16", "numpy.int32", "numpy.int64", "numpy.uint8", "numpy.uint16",
    "numpy.uint32", "numpy.uint64", "numpy.float16", "numpy.float32", "numpy.float64", "numpy.str_",
})

#: The kinds of skops node a head may use. Functions, methods, ``functools.partial``, operators
#: and objects rebuilt by calling a constructor (``__reduce__``) are never trusted; a
#: ``TypeNode`` names a type, which must itself be in :data:`TRUSTED_HEAD_TYPES`.
TRUSTED_NODES = frozenset({"DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "DTypeNode",
                           "ObjectNode", "TreeNode", "TypeNode", "RandomStateNode", "CachedNode"})

# schema.json of a real head is kilobytes to megabytes; far larger is a zip bomb, not a head.
_MAX_SCHEMA_BYTES = 256 * 1024 * 1024


class ModelFormatError(ValueError):
    """A model folder is missing a file, has a bad ``metadata.json`` field, or holds something unsafe."""


def _nodes(schema: Any) -> Iterator[dict]:
    """Every skops node (a dict with ``__class__`` and ``__module__``) in ``schema``, at any depth."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__class__" in item or "__module__" in item or "__loader__" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _schema(data: bytes, where: str) -> Any:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > _MAX_SCHEMA_BYTES:
                raise ModelFormatError(f"{where}: schema.json is {info.file_size} bytes; not a cvkit head")
            return json.loads(archive.read(info))
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, KeyError, RecursionError, ValueError, OSError) as exc:
        raise ModelFormatError(f"{where}: not a skops file ({type(exc).__name__}: {exc})") from None


def _node_name(node: dict) -> str:
    name = f"{node.get('__module__')}.{node.get('__class__')}"
    loader = node.get("__loader__")
    if loader not in TRUSTED_NODES:
        content = node.get("content")
        func = content.get("func") if isinstance(content, dict) else None
        name = f"{name}.{func}" if isinstance(func, str) else name
        return f"{name} ({loader})" if loader not in ("FunctionNode", "MethodNode") else name
    return name


def head_types(data: bytes, where: str = "<bytes>") -> list[str]:
    """Sorted full names of every type and function a skops file names (``where`` names it in errors)."""
    return sorted({_node_name(node) for node in _nodes(_schema(data, where))})


def refused_types(data: bytes, where: str = "<bytes>") -> list[str]:
    """The names in a skops file that :func:`load_head` refuses (empty when it would load it)."""
    refused = set()
    for node in _nodes(_schema(data, where)):
        name = _node_name(node)
        if node.get("__loader__") not in TRUSTED_NODES or name not in TRUSTED_HEAD_TYPES:
            refused.add(name)
    return sorted(refused)


def _refusal(refused: list[str]) -> str:
    return (f"it contains types outside scikit-learn's estimators that cvkit trusts: {', '.join(refused[:8])}"
            + (f" and {len(refused) - 8} more" if len(refused) > 8 else "")
            + " (see cvkit.models._trusted.TRUSTED_HEAD_TYPES)")


def check_savable(head: Any) -> bytes:
    """The skops bytes of ``head`` if :func:`load_head` would load them; ``TypeError`` naming the rest.

    Example:
        >>> from sklearn.linear_model import LogisticRegression
        >>> check_savable(LogisticRegression())[:2]
        b'PK'
    """
    import skops.io as sio

    data = sio.dumps(head)
    refused = refused_types(data, where=type(head).__name__)
    if refused:
        raise TypeError(f"cannot save a {type(head).__name__} head: load_model would refuse it, because "
                        f"{_refusal(refused)}")
    return data


def load_head(data: bytes, file: Path | str) -> Any:
    """The scikit-learn head in the skops bytes ``data`` (read from ``file``), after the allow-list check.

    Raises :class:`ModelFormatError` naming ``file`` and the refused types; no object is built
    until every name in the file has passed.

    Example:
        >>> from sklearn.linear_model import LogisticRegression
        >>> head = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
        >>> load_head(check_savable(head), "head.skops").predict_proba([[1.0]]).shape
        (1, 2)
    """
    import skops.io as sio

    refused = refused_types(data, where=str(file))
    if refused:
        raise ModelFormatError(f"{file}: refusing to load: {_refusal(refused)}")
    try:  # every name passed the allow-list above; skops checks them once more as it builds
        head = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a loadable head
        raise ModelFormatError(f"{file}: cannot load the head ({type(exc).__name__}: {exc})") from None
    if not hasattr(head, "predict_proba"):
        raise ModelFormatError(f"{file}: the head ({type(head).__name__}) has no predict_proba")
    return head


def all_layers(model: Any) -> list:
    """Every layer of a Keras model, nested models' layers included."""
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(all_layers(layer))
    return out


def load_keras(file: Path | str, name: str | None = None) -> Any:
    """A Keras model from the ``.keras`` file ``file``, loaded so that no code from it runs.

    ``safe_mode=True`` (no Python lambdas are deserialised), no custom objects, not compiled, and
    every layer must be a built-in Keras layer other than ``Lambda``. Errors are
    :class:`ModelFormatError` naming ``name`` (default: ``file``).

    Example:
        >>> import os, tempfile
        >>> keras = import_keras()
        >>> file = os.path.join(tempfile.mkdtemp(), "model.keras")
        >>> keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(file)
        >>> load_keras(file).input_shape
        (None, 4)
    """
    keras = import_keras()
    name = name or str(file)
    try:
        model = keras.saving.load_model(file, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a loadable model
        raise ModelFormatError(f"{name}: cannot load the Keras model safely "
                               f"({type(exc).__name__}: {exc})") from None
    for layer in all_layers(model):
        module = type(layer).__module__
        if type(layer).__name__ == "Lambda" or not module.startswith("keras."):
            raise ModelFormatError(f"{name}: layer {layer.name!r} is a {type(layer).__name__} from {module}; "
                                   "only built-in Keras layers are allowed")
    return model
