"""The one home of file writing and path keys (private): every module that writes a file uses it.

- :func:`atomic_write`, :func:`atomic_open`, :func:`staged_folder`: readers see the old file
  (or folder) or the new one, never half of it; see :mod:`cvkit._io._atomic`.
- :func:`folder_lock`, :func:`remove_stale_temporaries`: two writers of one file, and what a
  killed writer left behind.
- :func:`read_json`, :func:`write_json`, :func:`to_jsonable`: JSON with errors naming the file.
- :func:`image_key`, :func:`portable_path`, :func:`from_portable`: how paths are compared and stored.

It imports nothing else of cvkit.
"""
from cvkit._io._atomic import (
    TEMP_SUFFIX,
    atomic_open,
    atomic_write,
    folder_lock,
    remove_stale_temporaries,
    staged_folder,
)
from cvkit._io._json import read_json, to_jsonable, write_json
from cvkit._io._paths import from_portable, image_key, portable_path

__all__ = ["atomic_write", "atomic_open", "staged_folder", "folder_lock", "remove_stale_temporaries", "TEMP_SUFFIX",
           "read_json", "write_json", "to_jsonable", "image_key", "portable_path", "from_portable"]
