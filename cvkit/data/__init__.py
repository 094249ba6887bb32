"""Datasets of labelled images: reading images safely, folder and table sources, splits."""
from .dataset import BadImageWarning, ImageDataset
from .images import (IMAGE_EXTENSIONS, ImageReadError, check_image, is_image_path, open_image,
                     read_image)
from .sources import TableFormatError
from .split import load_split, save_split

__all__ = ["ImageDataset", "BadImageWarning", "ImageReadError", "TableFormatError", "read_image",
           "open_image", "check_image", "is_image_path", "IMAGE_EXTENSIONS", "save_split", "load_split"]
