"""Model folders: how a trained classifier is saved, and loaded again without running any code.

A model folder holds:

- ``model.keras``: a Keras graph taking RGB pixels as float32 ``(None, H, W, 3)`` in 0..255, with
  all preprocessing inside as built-in layers. A feature classifier's ends in the backbone's
  features and its head is arrays (``head.npz``, a linear head: the default) or a scikit-learn head
  (``head.skops``, stored with skops, never pickle); a fine-tuned model's outputs probabilities.
- ``novelty.npz``: how far an image lies from the training photos (see :mod:`cvkit.models._arrays`).
- ``model.tflite``: the same graph for LiteRT (float32, XNNPACK), which loaded models run by
  default, built once when saving and checked against Keras (:mod:`cvkit.models._conversion`).
  Optional: ``model.int8.tflite``, the int8 fast mode (:func:`cvkit.models._quantize.quantize_model`).
- ``metadata.json``: ``format``, ``format_version``, ``classes``, ``input_size`` ``[width, height]``,
  ``backbone``, ``method`` ("features" | "finetune"), ``head`` ("keras" | "skops" | "linear"),
  ``output``, ``preprocessing`` (text), ``metrics``, ``calibration``, ``decision``, ``novelty``,
  ``versions``, ``created``, ``model_version``, ``litert`` (how the LiteRT graph was built, its
  largest difference from Keras), ``litert_int8`` when there is one, and ``files``: the SHA-256 of
  each of the other files.

What loading trusts (:func:`load_model`):

- files: ``metadata.json``, and the graph the chosen runtime runs (``model.tflite``,
  ``model.int8.tflite`` or ``model.keras``), its head and novelty arrays, each a regular
  file directly in the folder, not a symbolic link; nothing else in the folder is read.
- hashes: ``files`` must list the SHA-256 of each file read and each must match; a folder without
  them is refused rather than loaded unchecked. The bytes that are hashed are the bytes that are
  loaded.
- types: see :mod:`cvkit.models._trusted`: built-in Keras layers only (``safe_mode=True``), and a
  scikit-learn head only if every type it names is on an explicit allow-list (no functions). A
  ``.tflite`` graph is data run by the LiteRT interpreter's built-in operations.

Every refusal is a :class:`ModelFormatError` naming the file (and field). Every file is written
through :mod:`cvkit._io` (the folder assembled with :func:`cvkit._io.staged_folder`).

Example:
    >>> import os, tempfile
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> path = save_model(clf, os.path.join(tempfile.mkdtemp(), "sample"), metrics={"test_accuracy": 0.97})
    >>> model = load_model(path)
    >>> model.predict(["sample_data/bird/owl.jpg"]), model.runtime_, load_model(path, runtime="keras").runtime_
    (array(['bird'], dtype=object), 'litert', 'keras')
    >>> read_metadata(path)["classes"], is_model_folder(path), is_model_folder("sample_data")
    (['bird', 'flower', 'fruit', 'vegetable'], True, False)
    >>> check_overwrite(path, clf.classes_, overwrite="same_classes")      # the same classes: may be replaced
    >>> check_overwrite(path, ["cat", "dog"], overwrite="same_classes")    # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileExistsError: ...: holds a model trained on other classes (bird, flower, fruit, vegetable; ...
    >>> graph = verified_bytes(Path(path), read_metadata(path), "model.tflite")
    >>> read_checked(Path(path), "metadata.json")[:1], len(graph) > 10**6
    (b'{', True)
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import stat
import sys
import tempfile
from importlib import metadata as _importlib_metadata
from pathlib import Path
from typing import Any

from cvkit._io import atomic_write, staged_folder, to_jsonable, write_json
from cvkit._validation import Options, check_param
from cvkit._version import __version__
from cvkit.data._images import PathLike
from cvkit.models._answer_fields import check_answer_fields
from cvkit.models._arrays import HEADS, array_files, check_novelty_field, head_kind, load_arrays, novelty_field
from cvkit.models._conversion import INT8_FILE, LITERT_FILE, build_litert, cached_conversion
from cvkit.models._format import FORMAT, FORMAT_VERSION, check_format_version
from cvkit.models._inference import decision_rule, input_size
from cvkit.models._loaded import LoadedModel
from cvkit.models._metajson import MAX_JSON_DEPTH, MAX_METADATA_BYTES, parse_metadata
from cvkit.models._trusted import ModelFormatError, check_savable, load_keras

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFormatError", "LoadedModel", "save_model", "load_model",
           "read_metadata", "is_model_folder", "check_overwrite", "sha256_bytes", "read_checked", "MAX_METADATA_BYTES",
           "MAX_JSON_DEPTH", "verified_bytes", "write_metadata"]

METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
HEAD_FILE = "head.skops"


# Packages whose versions are recorded (distribution names).
_VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scikit-learn", "skops", "pillow",
              "imgaug-denk")
_REQUIRED = {"classes": list, "input_size": (list, int), "backbone": str, "method": str, "head": str}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 hex digits (what ``metadata.json``'s ``files`` holds).

    Example:
        >>> sha256_bytes(b"")[:16]
        'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "cvkit": __version__}  # cvkit's, even when run from a checkout
    for name in _VERSIONED:
        try:
            out[name] = _importlib_metadata.version(name)
        except _importlib_metadata.PackageNotFoundError:
            continue
    return out


def is_model_folder(path: PathLike) -> bool:
    """True when ``path`` is a folder with a cvkit ``metadata.json`` (used before replacing one).

    Example:
        >>> is_model_folder("sample_data")
        False
    """
    meta = Path(path) / METADATA_FILE
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def _existing_classes(path: Path) -> list[str] | None:
    try:
        classes = json.loads((path / METADATA_FILE).read_text(encoding="utf-8")).get("classes")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return [str(c) for c in classes] if isinstance(classes, list) else None


def check_overwrite(path: PathLike, classes: list[str] | None = None, overwrite: bool | str = False) -> None:
    """Raise ``FileExistsError`` unless a model of ``classes`` may be saved to ``path``.

    An existing model folder is never replaced silently: ``overwrite=True`` replaces it whatever
    classes it was trained on; ``overwrite="same_classes"`` replaces it only when it holds the same
    ``classes`` (re-training on the same data), so a run on other photos cannot clobber it; ``False``
    (the default) never replaces it. A folder or file that is not a model folder is never replaced.
    Call it before a long training run to fail early; :func:`save_model` calls it too (more
    examples: see the module).

    Example:
        >>> check_overwrite("no/such/model", ["cat", "dog"])          # nothing there: fine
        >>> check_overwrite("sample_data", ["cat", "dog"], overwrite=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        FileExistsError: sample_data: exists and is not a cvkit model folder; refusing to replace it ...
    """
    check_param("overwrite", overwrite, [Options([True, False, "same_classes"])])
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not is_model_folder(path):
        raise FileExistsError(f"{path}: exists and is not a cvkit model folder; refusing to replace it (what "
                              "is not a model folder is never replaced). Choose another folder (-o/--output, "
                              "or output_dir in the notebook)")
    existing = _existing_classes(path)
    other = classes is not None and existing is not None and list(existing) != [str(c) for c in classes]
    if overwrite is True or (overwrite == "same_classes" and not other and existing is not None):
        return
    how = ("pass overwrite=True (cvkit train: --overwrite) to replace it, or save to another folder "
           "(-o/--output, or output_dir in the notebook)")
    if other:
        raise FileExistsError(f"{path}: holds a model trained on other classes ({', '.join(existing)}; "
                              f"this one has {', '.join(map(str, classes))}); it is not replaced. {how}")
    raise FileExistsError(f"{path}: a model folder already exists there; it is never replaced silently. {how}")


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


def _metadata(classifier: Any, exported: dict, files: dict[str, str], metrics: dict | None,
              model_version: str | None) -> dict[str, Any]:
    kind, estimator = head_kind(exported)
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    width, height = input_size(classifier)  # a featurizer's size may be an int or (width, height)
    all_metrics = dict(exported.get("metrics") or {})
    all_metrics.update(metrics or {})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_version": model_version or f"{created:%Y%m%d-%H%M%S}-{files[KERAS_FILE][:8]}",
        "created": created.isoformat(),
        "classes": [str(c) for c in classifier.classes_],
        "input_size": [width, height],
        "backbone": exported.get("backbone") or str(classifier.backbone),  # the canonical name
        "method": classifier._method,
        "head": kind,
        "output": "probabilities" if kind == "keras" else "features",
        "estimator": estimator,
        "preprocessing": _preprocessing_text(str(classifier.backbone), (width, height)),
        "input": {"dtype": "float32", "range": [0, 255], "color": "RGB", "shape": [None, height, width, 3]},
        "metrics": to_jsonable(all_metrics),
        "params": to_jsonable({k: v for k, v in classifier.get_params(deep=False).items()
                               if isinstance(v, (str, int, float, bool, type(None)))}),
        "decision": decision_rule(classifier).to_metadata(),
        "calibration": exported.get("calibration"),
        "novelty": novelty_field(exported.get("novelty")),
        "versions": _versions(),
        "files": files,
    }


def save_model(classifier: Any, path: PathLike, overwrite: bool = False, metrics: dict | None = None,
               model_version: str | None = None) -> str:
    """Write a fitted cvkit classifier to the model folder ``path``; returns the path as a string.

    Writes ``model.keras``, its LiteRT graph ``model.tflite`` (checked against Keras: see
    :func:`cvkit.models._conversion.build_litert`), ``head.skops`` for a scikit-learn head, and
    ``metadata.json``. The folder is assembled under a temporary name next to ``path`` and renamed into place, so a
    crash never leaves a half-written model. An existing ``path`` is replaced only as
    :func:`check_overwrite` allows: with ``overwrite=True`` (any model folder), or with
    ``overwrite="same_classes"`` (a model folder of the same classes); never a folder that is not
    a model folder. A scikit-learn head that
    :func:`load_model` would refuse (see :mod:`cvkit.models._trusted`) is a ``TypeError`` here.
    (Example: see the module.)
    """
    path = Path(path)
    check_overwrite(path, [str(c) for c in classifier.classes_], overwrite)
    replace = path.exists() or path.is_symlink()  # allowed by check_overwrite; one appearing meanwhile is not
    exported = classifier._export()
    head = exported.get("head")
    head_bytes = check_savable(head) if head is not None else None
    with staged_folder(path, replace=replace) as tmp:
        exported["keras_model"].save(tmp / KERAS_FILE)
        files = {KERAS_FILE: sha256_bytes((tmp / KERAS_FILE).read_bytes())}
        if head_bytes is not None:
            atomic_write(tmp / HEAD_FILE, head_bytes)
            files[HEAD_FILE] = sha256_bytes(head_bytes)
        for name, data in array_files(exported).items():  # head.npz, novelty.npz
            atomic_write(tmp / name, data)
            files[name] = sha256_bytes(data)
        tflite, litert_info = build_litert(classifier, exported)
        if tflite is not None:
            atomic_write(tmp / LITERT_FILE, tflite)
            files[LITERT_FILE] = sha256_bytes(tflite)
        meta = _metadata(classifier, exported, files, metrics, model_version)
        meta["litert"] = to_jsonable(litert_info)
        write_metadata(tmp, meta)
    return str(path)


def write_metadata(folder: PathLike, meta: dict) -> None:
    """Write ``meta`` as ``folder/metadata.json`` (one space of indent, keys in order), atomically.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> write_metadata(folder, {"format": "cvkit-model", "classes": ["cat", "dog"]})
        >>> print(open(os.path.join(folder, "metadata.json")).read())
        {
         "format": "cvkit-model",
         "classes": [
          "cat",
          "dog"
         ]
        }
        <BLANKLINE>
    """
    write_json(Path(folder) / METADATA_FILE, meta, indent=1)


def read_checked(folder: Path, name: str, max_bytes: int | None = None) -> bytes:
    """The bytes of ``folder/name`` if it is a regular file in the folder (not a link), else ModelFormatError.

    Example:
        >>> read_checked(Path("sample_data"), "bird")
        Traceback (most recent call last):
        cvkit.models._trusted.ModelFormatError: sample_data/bird: not a regular file
    """
    file = folder / name
    try:
        info = os.lstat(file)
    except FileNotFoundError:
        raise ModelFormatError(f"{file}: missing") from None
    except OSError as exc:
        raise ModelFormatError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISLNK(info.st_mode):
        raise ModelFormatError(f"{file}: is a symbolic link (to {os.readlink(file)}); a model folder's "
                               "files must be regular files inside it")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(f"{file}: not a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise ModelFormatError(f"{file}: {info.st_size} bytes, more than the {max_bytes} allowed")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(file, flags)
    except OSError as exc:
        raise ModelFormatError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read() if max_bytes is None else fh.read(max_bytes + 1)


def size_from_metadata(value: Any) -> list[int] | None:
    """``[width, height]`` from any ``input_size`` form cvkit has written, or None if it is none of them.

    Today's form is ``[width, height]``; also read: one int (square), and a Keras input shape
    ``[None, height, width, 3]``.

    Example:
        >>> size_from_metadata(224), size_from_metadata([None, 240, 320, 3]), size_from_metadata([320, 240])
        ([224, 224], [320, 240], [320, 240])
    """
    def pixels(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if pixels(value):
        return [value, value]
    if isinstance(value, list) and len(value) == 2 and all(pixels(v) for v in value):
        return list(value)
    if (isinstance(value, list) and len(value) == 4 and (value[0] is None or pixels(value[0]))
            and pixels(value[1]) and pixels(value[2]) and value[3] == 3 and not isinstance(value[3], bool)):
        return [value[2], value[1]]
    return None


def _check_fields(file: Path, meta: dict) -> None:
    check_format_version(file, meta)  # a folder from a newer cvkit: refused, naming both versions
    for field, kind in _REQUIRED.items():
        if field not in meta:
            raise ModelFormatError(f"{file}: required field {field!r} is missing")
        if not isinstance(meta[field], kind):
            kinds = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
            raise ModelFormatError(f"{file}: field {field!r} must be a {kinds}, got {meta[field]!r}")
    classes = meta["classes"]
    if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes):
        raise ModelFormatError(f"{file}: field 'classes' must list at least 2 distinct non-empty names")
    if size_from_metadata(meta["input_size"]) is None:
        raise ModelFormatError(f"{file}: field 'input_size' must be [width, height] in pixels, "
                               f"got {meta['input_size']!r}")
    if meta["head"] not in HEADS:
        raise ModelFormatError(f"{file}: field 'head' must be one of {HEADS}, got {meta['head']!r}")
    check_novelty_field(file, meta.get("novelty"))
    check_answer_fields(file, meta, classes)  # the operating point, the calibration


def read_metadata(path: PathLike) -> dict[str, Any]:
    """Read and check a model folder's ``metadata.json``; errors name the file and the field.

    ``input_size`` comes back as ``[width, height]`` whichever form the file used (more examples:
    see the module).

    Example:
        >>> read_metadata("sample_data")
        Traceback (most recent call last):
        cvkit.models._trusted.ModelFormatError: sample_data/metadata.json: missing; sample_data is not a ...
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder not found")
    file = folder / METADATA_FILE
    if not os.path.lexists(file):
        raise ModelFormatError(f"{file}: missing; {folder} is not a cvkit model folder")
    meta = parse_metadata(file, read_checked(folder, METADATA_FILE, MAX_METADATA_BYTES))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFormatError(f"{file}: field 'format' must be {FORMAT!r}; not a cvkit model folder")
    _check_fields(file, meta)
    meta["input_size"] = size_from_metadata(meta["input_size"])
    return meta


def verified_bytes(folder: Path, meta: dict, name: str) -> bytes:
    """The bytes of ``folder/name`` after checking they are the ones ``metadata.json`` recorded.

    Example:
        >>> verified_bytes(Path("m"), {"files": {}}, "model.keras")
        Traceback (most recent call last):
        cvkit.models._trusted.ModelFormatError: m/metadata.json: field 'files' has no SHA-256 for model.keras; \
refusing to load a file that cannot be checked
    """
    meta_file = folder / METADATA_FILE
    files = meta.get("files")
    if not isinstance(files, dict):
        raise ModelFormatError(f"{meta_file}: field 'files' (the SHA-256 of each file) is missing; "
                               "refusing to load files that cannot be checked")
    expected = files.get(name)
    if not isinstance(expected, str) or not _SHA256.fullmatch(expected):
        raise ModelFormatError(f"{meta_file}: field 'files' has no SHA-256 for {name}; "
                               "refusing to load a file that cannot be checked")
    data = read_checked(folder, name)
    if sha256_bytes(data) != expected:
        raise ModelFormatError(f"{folder / name}: contents changed since the model was saved "
                               f"(SHA-256 differs from {METADATA_FILE}); refusing to load it")
    return data


def _load_graph(folder: Path, meta: dict) -> Any:
    """The Keras graph, loaded from exactly the bytes whose hash was checked, and checked against meta."""
    file = folder / KERAS_FILE
    data = verified_bytes(folder, meta, KERAS_FILE)
    with tempfile.TemporaryDirectory(prefix="cvkit-load-") as private:
        copy = Path(private) / KERAS_FILE
        atomic_write(copy, data)
        model = load_keras(copy, name=str(file))
    _check_graph(file, meta, tuple(model.input_shape), tuple(model.output_shape)[-1])
    return model


def _check_graph(file: Path, meta: dict, input_shape: tuple, outputs: int) -> None:
    """A graph's input must match ``input_size``, and a Keras head's output the classes."""
    width, height = meta["input_size"]
    if len(input_shape) != 4 or tuple(input_shape[1:]) != (height, width, 3):
        raise ModelFormatError(f"{file}: input shape {input_shape} does not match input_size {meta['input_size']} "
                               f"in {METADATA_FILE}")
    if meta["head"] == "keras" and outputs != len(meta["classes"]):
        raise ModelFormatError(f"{file}: outputs {outputs} values but {METADATA_FILE} "
                               f"lists {len(meta['classes'])} classes")


def _litert_graph(folder: Path, meta: dict, precision: str, num_threads: int | None) -> Any:
    """The LiteRT graph of the folder (hash-checked), converted once for folders saved without one."""
    from cvkit._litert import LiteRTModel

    name = INT8_FILE if precision == "int8" else LITERT_FILE
    files = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    if name in files:
        data = verified_bytes(folder, meta, name)
    elif precision == "int8":
        raise ModelFormatError(f"{folder}: has no int8 graph ({INT8_FILE}); build one with "
                               "cvkit.models.quantize_model(path) (calibrated on the training images), "
                               "or use precision='float32'")
    else:
        keras_bytes = verified_bytes(folder, meta, KERAS_FILE)
        data = cached_conversion(lambda: _load_graph(folder, meta), sha256_bytes(keras_bytes), str(folder))
    try:
        graph = LiteRTModel(data, num_threads=num_threads)
    except ValueError as exc:
        raise ModelFormatError(f"{folder / name}: {exc}") from None
    graph.source = str(folder / name)
    _check_graph(folder / name, meta, graph.input_shape, graph.n_outputs)
    return graph


def load_model(path: PathLike, runtime: str | None = "auto", precision: str | None = "float32",
               num_threads: int | None = None) -> LoadedModel:
    """Load a model folder written by ``clf.save(path)`` (or :func:`save_model`).

    ``runtime``: ``"auto"`` (the default: LiteRT when ``ai-edge-litert`` is installed, else Keras),
    ``"litert"`` (runs ``model.tflite`` with XNNPACK and never imports TensorFlow) or ``"keras"``
    (runs ``model.keras`` on TensorFlow, as cvkit did before LiteRT). ``precision="int8"`` runs the
    folder's ``model.int8.tflite`` (about 3x faster, answers differ slightly: see its
    ``metadata_["litert_int8"]["agreement"]``; build it with :func:`cvkit.models.quantize_model`).
    ``num_threads``: threads per LiteRT interpreter (default: the cores this process may use). The
    three are checked together as one :class:`cvkit.options.RunOptions`; ``None`` means the
    environment's ``CVKIT_RUNTIME``/``CVKIT_PRECISION``/``CVKIT_NUM_THREADS``, else the default.

    A folder saved before cvkit wrote ``model.tflite``: with ``"auto"`` or ``"litert"`` its Keras
    graph is converted once (a one-line notice; about 10 s) into the cvkit cache folder, keyed by
    the SHA-256 of its ``model.keras``, and later loads reuse it; the model folder is never written
    to. If that conversion fails (or disagrees with Keras), ``"auto"`` falls back to Keras with a
    notice. ``model.runtime_`` says which runs.

    Nothing from the folder is executed, and nothing is loaded unchecked: see the module notes.
    Errors name the file and field (:class:`ModelFormatError`, a ``ValueError``;
    ``FileNotFoundError`` for a missing folder). More examples: see the module.

    Example:
        >>> load_model("no/such/model", runtime="gpu")
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: runtime must be one of 'auto', 'litert', 'keras', got 'gpu'
    """
    from cvkit.options import RunOptions

    wanted = RunOptions.from_env(runtime=runtime, precision=precision, num_threads=num_threads)
    options = wanted.resolve()  # "auto" -> what runs; int8 without LiteRT refused
    folder = Path(path)
    meta = read_metadata(folder)
    head, novelty = load_arrays(folder, meta, lambda name: verified_bytes(folder, meta, name))
    if options.runtime == "litert":
        try:
            graph = _litert_graph(folder, meta, options.precision, options.num_threads)
            return LoadedModel(folder, meta, graph, head, runtime="litert", precision=options.precision,
                               novelty=novelty)
        except (ImportError, ValueError, RuntimeError) as exc:
            if wanted.runtime != "auto" or LITERT_FILE in (meta.get("files") or {}) or options.precision == "int8":
                raise
            print(f"cvkit: {folder}: no LiteRT graph ({exc}); running it on Keras", file=sys.stderr, flush=True)
    return LoadedModel(folder, meta, _load_graph(folder, meta), head, runtime="keras", novelty=novelty)
