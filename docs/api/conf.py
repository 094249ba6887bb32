"""Sphinx configuration of cvkit's API reference (``make docs``; tests/test_docs.py builds it too).

The pages document the public package faces (``cvkit/<pkg>/__init__.py``'s ``__all__``) from the
docstrings, which use Google-style ``Example:`` and numpy-style ``Parameters``/``Attributes``
sections (napoleon reads both). ``_ext/cvkit_public.py`` writes each face's autodoc entries.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT))  # the checkout's cvkit, whether or not it is installed
# Importing cvkit sets these before anything loads TensorFlow; set them here too, for safety
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import cvkit  # noqa: E402

project = "cvkit"
author = "the cvkit developers"
copyright = "the cvkit developers"  # noqa: A001
release = cvkit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "cvkit_public",
    "cvkit_fields",
    "cvkit_cli",
]

exclude_patterns = ["_build"]
root_doc = "index"
default_role = "py:obj"  # `name` in a docstring is a reference, as in numpydoc

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = True
autoclass_content = "class"  # scikit-learn style: the parameters are in the class docstring
python_use_unqualified_type_names = True

napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_attr_annotations = True

html_theme = "pydata_sphinx_theme"
html_title = f"cvkit {release}"
html_sidebars = {"**": []}  # the pages are one flat list, in the top bar: no empty left column
html_theme_options = {
    "header_links_before_dropdown": 8,
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
