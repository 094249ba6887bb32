"""Datasets of labelled images: reading images safely, folder and table sources, splits."""
from cvkit.data._balance import check_class_balance
from cvkit.data._checks import BadImageWarning, DuplicateImageWarning, warn_skipped
from cvkit.data._dataset import ImageDataset
from cvkit.data._images import (
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

__all__ = ["ImageDataset", "ImageSource", "BadImageWarning", "DuplicateImageWarning", "ImageReadError", "TableFormatError", "read_image",
           "open_image", "check_image", "is_image_path", "IMAGE_EXTENSIONS", "save_split", "load_split",
           "list_images", "read_table", "warn_skipped", "PathLike", "check_class_balance", "default_run_dir"]
