"""Datasets of labelled images: reading images safely, any image input resolved once, splits.

- :class:`ImageDataset`: image paths with their class, from a folder of class folders or a table;
  audited when built, split duplicate-aware (:func:`save_split` / :func:`load_split` keep a split).
- :class:`ImageSource`: any image input (dataset, folder, table, manifest, glob, one image, list,
  array) resolved once, and decoded in batches by cvkit's one decode loop.
- :func:`read_image`: the one reader and resize (EXIF rotation, any colour mode, bounded size).
- :mod:`cvkit.data.augment`: imgaug pipelines, augmented copies in a new folder, a preview figure.
- :func:`find_image_issues` (also ``dataset.audit()``): blurry, dark, bright, near-constant, small,
  oddly shaped, grey, rotated and unreadable photos, each with its score and reason;
  :func:`image_quality` gives every photo's scores.
- :func:`image_grid`: photos with titles in a figure; :func:`default_run_dir`: ``runs/<name of the data>``.

Example:
    >>> from cvkit.data import ImageDataset, ImageSource, read_image
    >>> ds = ImageDataset.from_directory("sample_data")
    >>> len(ds), len(ImageSource.resolve("sample_data/bird/*.jpg")), read_image(ds.paths[0], size=(32, 24)).shape
    (104, 35, (24, 32, 3))
"""
# warn_skipped, PathLike, check_image, is_image_path and open_image stay importable
# from here for the code that imports them so (cli, classifiers, notebooks), but are not part of
# the public face (__all__): their homes are the private modules they come from.
from cvkit.data import augment
from cvkit.data._balance import check_class_balance
from cvkit.data._checks import BadImageWarning, DuplicateImageWarning, warn_skipped  # noqa: F401
from cvkit.data._dataset import ImageDataset
from cvkit.data._grid import image_grid
from cvkit.data._image_issues import find_image_issues, image_quality
from cvkit.data._images import (  # noqa: F401
    IMAGE_EXTENSIONS,
    ImageReadError,
    PathLike,
    check_image,
    is_image_path,
    open_image,
    read_image,
)
from cvkit.data._manifest import load_split, save_split
from cvkit.data._runs import default_run_dir
from cvkit.data._source import ImageSource
from cvkit.data._sources import TableFormatError, list_images, read_table

__all__ = ["ImageDataset", "ImageSource", "read_image", "ImageReadError", "BadImageWarning", "DuplicateImageWarning",
           "TableFormatError", "save_split", "load_split", "list_images", "read_table", "check_class_balance",
           "IMAGE_EXTENSIONS", "augment", "image_grid", "default_run_dir", "find_image_issues",
           "image_quality"]
