"""Image augmentation with imgaug: a sensible default pipeline, seeded on-the-fly augmentation for
fine-tuning, augmented copies written to a *new* folder, and a preview figure.

Why augment: with a few dozen photos per class, showing the network slightly shifted, zoomed,
rotated and recoloured versions of each photo teaches it that those changes do not change the
class. Choose augmentations that keep the label true for *your* task (see :func:`default_pipeline`).

Any imgaug augmenter works wherever a pipeline is asked for; a list of augmenters is applied in
order (as ``imgaug.augmenters.Sequential``).

Example:
    >>> import tempfile
    >>> from cvkit.data import ImageDataset, augment
    >>> ds = ImageDataset.from_directory("sample_data")
    >>> pipe = augment.default_pipeline()
    >>> fig = augment.preview(ds, pipe, n=2)  # look before you train
    >>> few = ds.subset([0, 1, 2])
    >>> bigger = augment.augment_dataset(few, [pipe], f"{tempfile.mkdtemp()}/aug", copies=2, verbose=False)
    >>> len(bigger)  # 3 originals + 2 copies of each
    9
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._console import import_extra
from cvkit._io import atomic_write
from cvkit._validation import DEPRECATED, Interval, check_param, renamed_keyword
from cvkit.data._checks import warn_skipped
from cvkit.data._dataset import ImageDataset
from cvkit.data._grid import image_grid
from cvkit.data._images import ImageReadError, PathLike, read_image

if TYPE_CHECKING:  # pragma: no cover
    import imgaug.augmenters as iaa
    from matplotlib.figure import Figure

__all__ = ["default_pipeline", "as_pipeline", "describe", "seeded", "augment_images", "augment_dataset",
           "preview", "quiet_imgaug", "PIPELINE_NAMES"]

#: The pipelines ``augment=`` accepts by name, and whether each mirrors images left-right.
PIPELINE_NAMES = {"default": True, "default-no-flip": False}


@contextlib.contextmanager
def quiet_imgaug() -> Iterator[None]:
    """Silence the NumPy deprecation warnings imgaug 0.4 triggers on every call, inside the block.

    Why: they come from imgaug's own code, not the user's, and would flood a training log.

    Example:
        >>> with quiet_imgaug():
        ...     out = default_pipeline()(images=np.zeros((1, 32, 32, 3), np.uint8))
        >>> out.shape
        (1, 32, 32, 3)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="imgaug")
        yield


def _iaa():
    with quiet_imgaug():
        return import_extra("imgaug.augmenters")


def default_pipeline(flip: bool = True, crop: float = 0.1, rotate: float = 10.0, scale: float = 0.1,
                     translate: float = 0.05, color: float = 0.2) -> iaa.Sequential:
    """The default augmentation: mirror, small crop, small affine move, mild brightness/contrast.

    Each image gets, in this order:

    - ``flip``: a left-right mirror with probability 0.5. **Turn it off** (``flip=False``, or
      ``augment="default-no-flip"`` for :class:`~cvkit.classifiers.FineTuneClassifier`, or
      ``cvkit train --no-flip``) when mirroring changes the class or makes images unrealistic:
      text, digits, road signs ("STOP" would read "POTS"), left/right body parts, chirality in
      chemistry or microscopy. Photos of birds, plants or products are fine mirrored. There is
      never an up-down flip (gravity rarely flips in photos).
    - ``crop``: crop up to this fraction from each side, resized back (a small zoom-in).
    - ``rotate`` (degrees), ``scale`` (fraction) and ``translate`` (fraction of the size): a random
      affine move; borders are filled by repeating the edge pixels.
    - ``color``: brightness and contrast each scaled by up to +/- this fraction, and the colours
      faded towards grey by up to this fraction. All three work on the RGB values directly, the
      same for every channel, so a colour keeps its hue (a red sign stays red, never magenta or
      orange) and flat near-white or near-grey areas stay flat (no coloured speckle from a round
      trip through HSV). There is deliberately no hue rotation. Set 0 when colour *is* the class
      (ripe versus unripe fruit, stained cells).

    Set any amount to 0 to leave that step out. Returns an ``imgaug.augmenters.Sequential`` you
    can extend or replace with your own; :func:`describe` says in words what it does.

    Example:
        >>> pipe = default_pipeline(flip=False, color=0.1)
        >>> describe(pipe)
        'crop 0-10% per side; rotate +/-10 deg, scale 90-110%, shift +/-5%; brightness x0.9-1.1; ...'
    """
    for name, value in (("crop", crop), ("scale", scale), ("translate", translate), ("color", color),
                        ("rotate", rotate)):  # False is 0 (the step left out), as it always was
        check_param(name, 0 if value is False else value,
                    [Interval(float, 0, 180) if name == "rotate" else Interval(float, 0, 1, closed="left")])
    iaa = _iaa()
    steps: list[Any] = []
    if flip:
        steps.append(iaa.Fliplr(0.5, name="flip"))
    if crop:
        steps.append(iaa.Crop(percent=(0.0, crop), keep_size=True, name="crop"))
    if rotate or scale or translate:
        steps.append(iaa.Affine(scale=(1.0 - scale, 1.0 + scale),
                                translate_percent={"x": (-translate, translate), "y": (-translate, translate)},
                                rotate=(-rotate, rotate), mode="edge", name="affine"))
    if color:
        # the same factor on R, G and B: hue is kept, grey stays grey
        steps.append(iaa.Multiply((1.0 - color, 1.0 + color), per_channel=False, name="brightness"))
        steps.append(iaa.LinearContrast((1.0 - color, 1.0 + color), per_channel=False, name="contrast"))
        steps.append(iaa.Grayscale(alpha=(0.0, color), name="saturation"))
    return iaa.Sequential(steps, name="cvkit_default")


def _values(param: Any) -> tuple[float, ...]:
    """The number(s) behind an imgaug parameter: (value,) for a constant, (low, high) for a range."""
    param = getattr(param, "other_param", param)  # imgaug wraps parameters in an AutoPrefetcher
    if hasattr(param, "value") and isinstance(param.value, (int, float, np.number)):
        return (float(param.value),)
    if type(param).__name__ == "Binomial":
        return _values(param.p)
    if hasattr(param, "a") and hasattr(param, "b"):  # Uniform(a, b)
        low, high = _values(param.a), _values(param.b)
        if len(low) == 1 and len(high) == 1:
            return (min(low[0], high[0]), max(low[0], high[0]))
    return ()


def _pct(x: float) -> str:
    return f"{100 * x:.0f}"


def _span(values: tuple[float, ...], fmt=lambda v: f"{v:g}", centre: float | None = None,
          unit: str = "") -> str:
    """``+/-10 deg`` for a range symmetric around ``centre``, ``0.9-1.1`` otherwise."""
    if len(values) == 1:
        return f"{fmt(values[0])}{unit}"
    low, high = values
    if centre is not None and abs((low + high) / 2 - centre) < 1e-9:
        return f"+/-{fmt(high - centre)}{unit}"
    return f"{fmt(low)}-{fmt(high)}{unit}"


def _describe_one(aug: iaa.Augmenter) -> str:
    kind = type(aug).__name__
    params = aug.get_parameters()
    if kind in ("Fliplr", "Flipud"):
        p = _values(params[0])
        side = "left-right" if kind == "Fliplr" else "up-down"
        return f"mirror {side}" + (f" (p={p[0]:g})" if p and p[0] != 1 else "")
    if kind == "Crop" and _values(params[0]):
        return f"crop {_span(tuple(sorted(abs(v) for v in _values(params[0]))), _pct, unit='%')} per side"
    if kind == "Affine":
        rotate, scale = _values(params[2]), _values(params[0])
        shift = _values(params[1][0]) if isinstance(params[1], tuple) else ()
        parts = [f"rotate {_span(rotate, centre=0.0, unit=' deg')}" if rotate and max(map(abs, rotate)) else "",
                 f"scale {_span(scale, _pct, unit='%')}" if scale and scale != (1.0,) else "",
                 f"shift {_span(shift, _pct, centre=0.0, unit='%')}" if shift and max(map(abs, shift)) else ""]
        return ", ".join(p for p in parts if p) or "affine"
    if kind == "Multiply" and _values(params[0]):
        return f"brightness x{_span(_values(params[0]))}"
    if kind == "LinearContrast" and _values(params[0]):
        return f"contrast x{_span(_values(params[0]))}"
    if kind == "Grayscale" and _values(params[1]):
        return f"fade to grey {_span(_values(params[1]), _pct, unit='%')}"
    return kind


def describe(pipeline: Any) -> str:
    """What an augmentation pipeline does, in one line: each step and its range, in order.

    Known imgaug augmenters (those :func:`default_pipeline` uses) are spelled out with their
    ranges; any other augmenter is named by its class. The preview's title uses it, so the figure
    says what produced the images.

    Example:
        >>> describe("default")
        'mirror left-right (p=0.5); crop 0-10% per side; rotate +/-10 deg, scale 90-110%, shift +/-5%; ...'
        >>> import imgaug.augmenters as iaa
        >>> describe([iaa.Flipud(1.0), iaa.GaussianBlur((0, 1.0))])
        'mirror up-down; GaussianBlur'
    """
    pipe = as_pipeline(pipeline)
    if pipe is None:
        return "no augmentation"
    iaa = _iaa()
    if isinstance(pipe, iaa.Sequential) and not pipe.random_order:
        parts = [describe(child) for child in pipe]
        return "; ".join(parts) if parts else "no augmentation"
    return _describe_one(pipe)


def as_pipeline(augment: Any) -> iaa.Augmenter | None:
    """Turn what a user passes as ``augment=`` into one imgaug augmenter (or None for no augmentation).

    Accepted: ``None``/``False`` (none), ``True`` or ``"default"`` (:func:`default_pipeline`),
    ``"default-no-flip"`` (``default_pipeline(flip=False)``, for text, signs, digits and left/right
    classes), any ``imgaug`` augmenter, or a list/tuple of augmenters (applied in order). Anything
    else raises a ``TypeError`` or ``ValueError`` naming what was given.

    Example:
        >>> import imgaug.augmenters as iaa
        >>> as_pipeline([iaa.Fliplr(0.5), iaa.GaussianBlur((0, 1.0))])  # doctest: +ELLIPSIS
        Sequential(...)
        >>> [step.name for step in as_pipeline("default-no-flip")][:2]
        ['crop', 'affine']
    """
    if augment is None or augment is False:
        return None
    if augment is True:
        return default_pipeline()
    if isinstance(augment, str):
        if augment in PIPELINE_NAMES:
            return default_pipeline(flip=PIPELINE_NAMES[augment])
        raise ValueError(f"augment: unknown pipeline name {augment!r}; use one of {sorted(PIPELINE_NAMES)}, "
                         "an imgaug augmenter or a list of them")
    iaa = _iaa()
    if isinstance(augment, iaa.Augmenter):
        return augment
    if isinstance(augment, (list, tuple)):
        bad = [type(a).__name__ for a in augment if not isinstance(a, iaa.Augmenter)]
        if bad:
            raise TypeError(f"augment: every item of the list must be an imgaug augmenter; got {', '.join(bad)}")
        return iaa.Sequential(list(augment))
    raise TypeError(f"augment must be None, True, 'default', 'default-no-flip', an imgaug augmenter or a list "
                    f"of them, not {type(augment).__name__}")


def seeded(pipeline: iaa.Augmenter, random_state: int | None) -> iaa.Augmenter:
    """A private copy of ``pipeline`` with its own random generator seeded from ``random_state``.

    The caller's augmenter is never changed, and two copies with the same seed produce the same
    augmentations, so training with augmentation is repeatable.
    """
    with quiet_imgaug():
        copy = pipeline.deepcopy()
        copy.seed_(random_state)
    return copy


def augment_images(images: np.ndarray | Sequence[np.ndarray], pipeline: Any = "default",
                   random_state: int | None = None) -> np.ndarray | list[np.ndarray]:
    """Augment a batch of RGB ``uint8`` images; returns a new array (or list) of the same shapes.

    ``pipeline`` is anything :func:`as_pipeline` accepts. With ``random_state`` set, the result is
    the same on every call; with None the pipeline's own generator moves on (different each call).

    Example:
        >>> batch = np.zeros((2, 64, 64, 3), np.uint8)
        >>> augment_images(batch, random_state=0).shape
        (2, 64, 64, 3)
    """
    pipe = as_pipeline(pipeline)
    if pipe is None:
        return np.array(images, copy=True) if isinstance(images, np.ndarray) else [np.array(i) for i in images]
    if random_state is not None:
        pipe = seeded(pipe, random_state)
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be a uint8 array of shape (n, height, width, 3), "
                             f"not {images.dtype} {images.shape}")
    with quiet_imgaug():
        out = pipe(images=images)
    return out


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _check_out_dir(out_dir: Path, dataset: ImageDataset) -> None:
    """Refuse any output folder where writing could touch a source image."""
    out = out_dir.resolve()
    sources = set()
    if dataset.root:
        sources.add(Path(dataset.root).resolve())
    for p in dataset.paths:
        sources.add(Path(p).resolve().parent)
    for folder in sorted(sources):
        if _is_within(out, folder):
            raise ValueError(f"out_dir {os.fspath(out_dir)!r} is inside the source folder {os.fspath(folder)!r}; "
                             "augmented copies must go to a new folder so source images are never touched")
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"out_dir {os.fspath(out_dir)!r} exists and is not a folder")
        if any(out.iterdir()):
            raise ValueError(f"out_dir {os.fspath(out_dir)!r} is not empty; choose a new folder "
                             "(existing files are never overwritten)")


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return keep.strip("._") or "image"


def _write_new_jpeg(dest: Path, pixels: np.ndarray, quality: int) -> None:
    """Write ``pixels`` as a JPEG at ``dest`` atomically; an existing ``dest`` is never replaced."""
    from PIL import Image

    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest}: already exists; augmented copies never overwrite a file")
    data = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(data, format="JPEG", quality=quality)
    atomic_write(dest, data.getvalue())


def augment_dataset(dataset: ImageDataset, pipelines: Any, out_dir: PathLike, copies: int = 1,
                    random_state: int | None = 0, quality: int = 95,
                    verbose: bool = True, *, progress: Any = DEPRECATED) -> ImageDataset:
    """Write augmented copies of every image into ``out_dir`` and return originals plus copies.

    ``pipelines`` is one augmenter or a list of augmenters; as in cvtk, *each* pipeline makes
    ``copies`` new images from every source image (a list of augmenters is therefore a list of
    alternative pipelines here, not a sequence; wrap them in ``iaa.Sequential`` to chain them).
    Copies go to ``out_dir/<class>/<name>_aug<pipeline>-<copy>.jpg``.

    Safety: ``out_dir`` must be a new or empty folder outside every source folder, no file is
    ever overwritten (an existing one is an error naming it), each copy is written atomically
    (:func:`cvkit._io.atomic_write`: a killed run leaves no half image) and source images are only
    read. Unreadable images are reported in one warning, left out of the result and listed in
    ``result.skipped``. ``verbose`` shows a progress bar (``progress=`` is its deprecated former name).

    Use augmented copies for training only; a test split must hold original photos.

    Example:
        >>> import tempfile
        >>> from cvkit.data import ImageDataset
        >>> few = ImageDataset.from_directory("sample_data").subset([0, 1])
        >>> out = tempfile.mkdtemp()
        >>> more = augment_dataset(few, [default_pipeline()], f"{out}/aug", copies=2, verbose=False)
        >>> len(more) == 3 * len(few), more.paths[2].startswith(out)
        (True, True)
    """
    verbose = renamed_keyword("augment_dataset", "progress", progress, "verbose", verbose, default=True)
    if isinstance(pipelines, (list, tuple)):
        pipes = [as_pipeline(p) for p in pipelines]
    else:
        pipes = [as_pipeline(pipelines)]
    if not pipes or any(p is None for p in pipes):
        raise ValueError("pipelines must be one imgaug augmenter or a non-empty list of them")
    check_param("copies", copies, [Interval(int, 1, None)])
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipes = [seeded(p, None if random_state is None else random_state + k) for k, p in enumerate(pipes)]

    labels = dataset.image_labels if dataset.is_labelled else [""] * len(dataset)
    kept_paths: list[str] = []
    kept_targets: list[int] = []
    new_paths: list[str] = []
    new_targets: list[int] = []
    skipped: list[tuple[str, str]] = list(dataset.skipped)
    used: set[str] = set()
    items: Any = range(len(dataset))
    if verbose:
        from cvkit._console import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks
        items = tqdm(items, desc="Augmenting", unit="img")
    for i in items:
        src = dataset.paths[i]
        try:
            image = read_image(src)
        except ImageReadError as exc:
            skipped.append((src, exc.reason))
            continue
        target = int(dataset.targets[i]) if dataset.targets is not None else -1
        kept_paths.append(src)
        kept_targets.append(target)
        folder = out_dir / _safe_name(labels[i]) if labels[i] else out_dir
        folder.mkdir(exist_ok=True)
        stem = _safe_name(Path(src).stem)
        base, n = stem, 1
        while str(folder / base) in used:  # same file name in two source folders
            n += 1
            base = f"{stem}-{n}"
        used.add(str(folder / base))
        for k, pipe in enumerate(pipes):
            with quiet_imgaug():
                batch = pipe(images=[image] * copies)
            for c, aug in enumerate(batch):
                dest = folder / f"{base}_aug{k}-{c}.jpg"
                _write_new_jpeg(dest, aug, quality)
                new_paths.append(str(dest))
                new_targets.append(target)
    warn_skipped(skipped[len(dataset.skipped):], "augment_dataset", stacklevel=3)
    paths = kept_paths + new_paths
    if dataset.targets is None:
        return ImageDataset(paths, None, None, root=dataset.root, skipped=skipped)
    return ImageDataset(paths, kept_targets + new_targets, dataset.labels, root=dataset.root, skipped=skipped)


def preview(dataset: ImageDataset, pipeline: Any = "default", n: int = 4, copies: int = 3,
            random_state: int | None = 0, size: int = 160) -> Figure:
    """A figure with ``n`` sample images, each original followed by ``copies`` augmented versions.

    Look at it before training: if an augmented image no longer shows its class clearly, the
    pipeline is too strong for your task. Returns the matplotlib Figure.

    Example:
        >>> from cvkit.data import ImageDataset
        >>> fig = preview(ImageDataset.from_directory("sample_data"), default_pipeline(), n=3)
        >>> len(fig.axes) >= 3 * 4  # 3 rows: the original and 3 augmented versions
        True
    """
    pipe = as_pipeline(pipeline)
    if pipe is None:
        raise ValueError("preview needs an augmentation pipeline, not None")
    if len(dataset) == 0:
        raise ValueError("preview: the dataset is empty")
    pipe = seeded(pipe, random_state)
    n = min(n, len(dataset))
    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(len(dataset), size=n, replace=False))
    labels = dataset.image_labels
    images: list[np.ndarray | None] = []
    titles: list[str] = []
    for i in idx:
        name = labels[i] or Path(dataset.paths[i]).name
        try:
            original = read_image(dataset.paths[i], size=size)
        except ImageReadError:
            images += [None] * (copies + 1)
            titles += [f"{name} (unreadable)"] + [""] * copies
            continue
        with quiet_imgaug():
            augmented = pipe(images=[original] * copies)
        images += [original] + list(augmented)
        titles += [f"{name} (original)"] + [f"augmented {c + 1}" for c in range(copies)]
    return image_grid(images, titles, ncols=copies + 1, suptitle=f"Augmented by: {describe(pipe)}")
