"""Model folders: how a trained classifier is saved, and loaded again without running any code.

A model folder holds:

- ``model.keras``: a Keras graph taking RGB pixels as float32 ``(None, H, W, 3)`` in 0..255, with
  all preprocessing inside as built-in layers. With a linear head (the default) it outputs class
  probabilities ``(None, n_classes)``: the whole classifier is this one graph. With a non-linear
  scikit-learn head it outputs features, and the head is in
- ``head.skops``: the scikit-learn head, stored with skops (never pickle).
- ``metadata.json``: ``format``, ``format_version``, ``classes``, ``input_size`` ``[w, h]``,
  ``backbone``, ``method`` ("features" | "finetune"), ``head`` ("keras" | "skops"),
  ``preprocessing`` (text), ``metrics``, ``versions``, ``created`` (ISO time), ``model_version``
  and the SHA-256 of each file.

Loading never runs code from the folder: Keras loads with ``safe_mode=True`` and no custom objects
(any non-Keras layer is refused), skops loads only scikit-learn types, and file hashes are checked.

Example:
    >>> clf.save("models/sample")                    # doctest: +SKIP
    >>> model = cvkit.load_model("models/sample")    # doctest: +SKIP
    >>> model.predict(["photo.jpg"])                 # doctest: +SKIP
    array(['bird'], dtype=object)
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
from importlib import metadata as _importlib_metadata
from pathlib import Path
from typing import Any, Union

import numpy as np

from cvkit.models.predictor import PredictorMixin, run_graph
from cvkit.data.inputs import n_images

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFormatError", "LoadedModel", "save_model", "load_model",
           "read_metadata", "is_model_folder"]

PathLike = Union[str, os.PathLike]

FORMAT = "cvkit-model"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
HEAD_FILE = "head.skops"

# Packages whose versions are recorded (distribution names).
_VERSIONED = ("cvkit", "tensorflow-cpu", "tensorflow", "keras", "numpy", "scikit-learn", "skops", "pillow",
              "imgaug-denk")
# Modules whose types a skops head may contain; everything else is refused before loading.
_TRUSTED_PREFIXES = ("sklearn.",)
_REQUIRED = {"classes": list, "input_size": list, "backbone": str, "method": str, "head": str}


class ModelFormatError(ValueError):
    """A model folder is missing a file, has a bad ``metadata.json`` field, or holds something unsafe."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = _importlib_metadata.version(name)
        except _importlib_metadata.PackageNotFoundError:
            continue
    return out


def is_model_folder(path: PathLike) -> bool:
    """True when ``path`` is a folder with a cvkit ``metadata.json`` (used before replacing one)."""
    meta = Path(path) / METADATA_FILE
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _preprocessing_text(backbone: str, size: tuple[int, int]) -> str:
    inside = ""
    try:
        from cvkit import backbones
        inside = backbones.info(backbone).preprocessing
    except (ValueError, TypeError, ImportError):
        pass
    text = (f"Decode with cvkit.data.read_image (EXIF rotation applied, RGB), resize to {size[0]}x{size[1]} "
            "(bilinear, aspect ratio not kept), feed float32 RGB values 0..255 of shape (n, height, width, 3)")
    return f"{text}; the model itself then does: {inside}" if inside else text


def save_model(classifier: Any, path: PathLike, overwrite: bool = False, metrics: dict | None = None,
               model_version: str | None = None) -> str:
    """Write a fitted cvkit classifier to the model folder ``path``; returns the path as a string.

    The folder is assembled under a temporary name next to ``path`` and renamed into place, so a
    crash never leaves a half-written model. An existing ``path`` is replaced only with
    ``overwrite=True`` *and* only if it is itself a cvkit model folder.

    Example:
        >>> save_model(clf, "models/sample", metrics={"test_accuracy": 0.97})  # doctest: +SKIP
        'models/sample'
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace a model folder")
        if not is_model_folder(path):
            raise FileExistsError(f"{path}: exists and is not a cvkit model folder; refusing to replace it")
    exported = classifier._export()
    keras_model = exported["keras_model"]
    head = exported.get("head")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.saving-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        keras_model.save(tmp / KERAS_FILE)
        files = {KERAS_FILE: _sha256(tmp / KERAS_FILE)}
        if head is not None:
            import skops.io as sio
            sio.dump(head, tmp / HEAD_FILE)
            files[HEAD_FILE] = _sha256(tmp / HEAD_FILE)
        created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
        width, height = (int(v) for v in classifier.input_size_)
        all_metrics = dict(exported.get("metrics") or {})
        all_metrics.update(metrics or {})
        meta: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_version": model_version or f"{created:%Y%m%d-%H%M%S}-{files[KERAS_FILE][:8]}",
            "created": created.isoformat(),
            "classes": [str(c) for c in classifier.classes_],
            "input_size": [width, height],
            "backbone": str(classifier.backbone) if isinstance(classifier.backbone, str) else keras_model.name,
            "method": classifier._method,
            "head": "skops" if head is not None else "keras",
            "output": "features" if head is not None else "probabilities",
            "estimator": type(head).__name__ if head is not None else None,
            "preprocessing": _preprocessing_text(str(classifier.backbone), (width, height)),
            "input": {"dtype": "float32", "range": [0, 255], "color": "RGB", "shape": [None, height, width, 3]},
            "metrics": _jsonable(all_metrics),
            "params": _jsonable({k: v for k, v in classifier.get_params(deep=False).items()
                                 if isinstance(v, (str, int, float, bool, type(None)))}),
            "versions": _versions(),
            "files": files,
        }
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if path.exists():
            old = path.parent / f".{path.name}.replaced-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def read_metadata(path: PathLike) -> dict[str, Any]:
    """Read and check a model folder's ``metadata.json``; errors name the file and the field.

    Example:
        >>> read_metadata("models/sample")["classes"]  # doctest: +SKIP
        ['bird', 'flower', 'fruit', 'vegetable']
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder not found")
    file = folder / METADATA_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"{file}: missing; {folder} is not a cvkit model folder") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFormatError(f"{file}: field 'format' must be {FORMAT!r}; not a cvkit model folder")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFormatError(f"{file}: field 'format_version' must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"{file}: format_version {version} is newer than this cvkit reads "
                               f"({FORMAT_VERSION}); upgrade cvkit")
    for field, kind in _REQUIRED.items():
        if field not in meta:
            raise ModelFormatError(f"{file}: required field {field!r} is missing")
        if not isinstance(meta[field], kind):
            raise ModelFormatError(f"{file}: field {field!r} must be a {kind.__name__}, got {meta[field]!r}")
    classes = meta["classes"]
    if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes):
        raise ModelFormatError(f"{file}: field 'classes' must list at least 2 distinct non-empty names")
    size = meta["input_size"]
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise ModelFormatError(f"{file}: field 'input_size' must be [width, height] in pixels, got {size!r}")
    if meta["head"] not in ("keras", "skops"):
        raise ModelFormatError(f"{file}: field 'head' must be 'keras' or 'skops', got {meta['head']!r}")
    return meta


def _check_hash(folder: Path, meta: dict, name: str) -> None:
    expected = (meta.get("files") or {}).get(name)
    if expected is not None and _sha256(folder / name) != expected:
        raise ModelFormatError(f"{folder / name}: contents changed since the model was saved "
                               f"(SHA-256 differs from {METADATA_FILE}); refusing to load it")


def _all_layers(model: Any) -> list:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


def _load_keras(folder: Path, meta: dict) -> Any:
    import keras

    file = folder / KERAS_FILE
    if not file.is_file():
        raise ModelFormatError(f"{file}: missing")
    _check_hash(folder, meta, KERAS_FILE)
    try:
        model = keras.saving.load_model(file, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a loadable model
        raise ModelFormatError(f"{file}: cannot load the Keras model safely "
                               f"({type(exc).__name__}: {exc})") from None
    for layer in _all_layers(model):
        module = type(layer).__module__
        if type(layer).__name__ == "Lambda" or not module.startswith("keras."):
            raise ModelFormatError(f"{file}: layer {layer.name!r} is a {type(layer).__name__} from {module}; "
                                   "only built-in Keras layers are allowed")
    width, height = meta["input_size"]
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1:] != (height, width, 3):
        raise ModelFormatError(f"{file}: input shape {shape} does not match input_size {meta['input_size']} "
                               f"in {METADATA_FILE}")
    if meta["head"] == "keras" and tuple(model.output_shape)[-1] != len(meta["classes"]):
        raise ModelFormatError(f"{file}: outputs {model.output_shape[-1]} values but {METADATA_FILE} "
                               f"lists {len(meta['classes'])} classes")
    return model


def _load_head(folder: Path, meta: dict) -> Any:
    import skops.io as sio

    file = folder / HEAD_FILE
    if not file.is_file():
        raise ModelFormatError(f"{file}: missing (metadata says head is 'skops')")
    _check_hash(folder, meta, HEAD_FILE)
    try:
        untrusted = sio.get_untrusted_types(file=file)
    except Exception as exc:  # noqa: BLE001
        raise ModelFormatError(f"{file}: not a skops file ({type(exc).__name__}: {exc})") from None
    refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if refused:
        raise ModelFormatError(f"{file}: refusing to load: it contains types outside scikit-learn: "
                               f"{', '.join(refused[:5])}")
    try:
        head = sio.load(file, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001
        raise ModelFormatError(f"{file}: cannot load the head ({type(exc).__name__}: {exc})") from None
    if not hasattr(head, "predict_proba"):
        raise ModelFormatError(f"{file}: the head ({type(head).__name__}) has no predict_proba")
    return head


class LoadedModel(PredictorMixin):
    """A model folder loaded for prediction: same ``predict``/``predict_proba``/``score`` as when trained.

    Attributes: ``classes_``, ``input_size_`` ``(width, height)``, ``backbone``, ``metadata_``
    (the metadata dict), ``keras_model_`` (the Keras graph), ``head_`` (the scikit-learn head or
    None), ``path_``. ``batch_size`` and ``progress`` (None: a bar for 200+ images) may be changed.
    """

    def __init__(self, path: PathLike, metadata: dict, keras_model: Any, head: Any = None,
                 batch_size: int = 32, progress: bool | None = None):
        self.path_ = Path(path)
        self.metadata_ = metadata
        self.keras_model_ = keras_model
        self.head_ = head
        self.classes_ = [str(c) for c in metadata["classes"]]
        self.input_size_ = (int(metadata["input_size"][0]), int(metadata["input_size"][1]))
        self.backbone = metadata["backbone"]
        self.batch_size = batch_size
        self.progress = progress

    def __repr__(self) -> str:
        return (f"<cvkit model {self.path_} ({self.metadata_.get('method')}, {self.backbone}, "
                f"{len(self.classes_)} classes: {', '.join(self.classes_)})>")

    def _predict_proba(self, X: Any) -> np.ndarray:
        progress = self.progress if self.progress is not None else n_images(X) >= 200
        out, ok = run_graph(self.keras_model_, X, batch_size=self.batch_size, progress=progress)
        if self.head_ is None:
            return out.astype(np.float32)
        proba = np.full((len(ok), len(self.classes_)), np.nan, dtype=np.float32)
        if ok.any():
            proba[ok] = self.head_.predict_proba(out[ok])
        return proba

    def score_image(self, source: Any, top_k: int = 3) -> dict[str, Any]:
        """Score one image (a path, an http(s) URL, or bytes): ``{"label", "score", "scores", "top_k"}``.

        Example:
            >>> model.score_image("sample_data/bird/blackbird.jpg")["label"]  # doctest: +SKIP
            'bird'
        """
        from cvkit.models.inference import score_image
        return score_image(self, source, top_k=top_k)


def load_model(path: PathLike) -> LoadedModel:
    """Load a model folder written by ``clf.save(path)`` (or :func:`save_model`).

    Nothing from the folder is executed: see the module notes. Errors name the file and field
    (:class:`ModelFormatError`, a ``ValueError``; ``FileNotFoundError`` for a missing folder).

    Example:
        >>> model = load_model("runs/sample/model")  # doctest: +SKIP
        >>> model.classes_  # doctest: +SKIP
        ['bird', 'flower', 'fruit', 'vegetable']
    """
    folder = Path(path)
    meta = read_metadata(folder)
    keras_model = _load_keras(folder, meta)
    head = _load_head(folder, meta) if meta["head"] == "skops" else None
    return LoadedModel(folder, meta, keras_model, head)
