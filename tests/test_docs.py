"""The API reference (``make docs``): Sphinx builds it from the docstrings with warnings as errors.

CI runs ``make test``, so this is how CI builds the docs: the build must pass ``-W`` (a docstring whose
reST is broken fails it), every page of a package face must document each of the face's public names
(``__all__``), the CLI page must hold each command's ``--help``, and building must not print
TensorFlow's start-up lines. The docstring converter of ``docs/api/_ext/cvkit_fields.py`` (cvkit's
``name : description`` blocks into reST bullets) is checked on its own, quickly.
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "docs" / "api"
#: page -> the package face it documents
FACES = {"data": "cvkit.data", "data_augment": "cvkit.data.augment", "backbones": "cvkit.backbones",
         "features": "cvkit.features", "classifiers": "cvkit.classifiers", "models": "cvkit.models",
         "evaluation": "cvkit.evaluation", "evaluation_plots": "cvkit.evaluation.plots",
         "serving": "cvkit.serving", "scale": "cvkit.scale", "widgets": "cvkit.widgets",
         "options": "cvkit.options"}
TENSORFLOW_LINES = re.compile(r"tensorflow|oneDNN|absl::|cuda|XNNPACK|TfLite", re.IGNORECASE)


def text_of(html: Path) -> str:
    """A page's text, tags dropped and spaces collapsed (enough to search for names)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html.read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          "-d", str(out / "doctrees"), str(SOURCE), str(out / "html")],
                         capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    return run, out / "html"


@pytest.mark.slow
def test_the_reference_builds_with_warnings_as_errors(built):
    run, html = built
    assert run.returncode == 0, f"sphinx-build -W failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    assert not TENSORFLOW_LINES.search(run.stderr), f"the build printed TensorFlow lines:\n{run.stderr[:2000]}"
    pages = {p.stem for p in html.glob("*.html")}
    assert {"index", "cvkit", "cli", *FACES} <= pages, sorted(pages)


@pytest.mark.slow
def test_the_key_pages_name_the_key_names(built):
    run, html = built
    assert run.returncode == 0
    assert "FeatureClassifier" in text_of(html / "index.html")
    classifiers = text_of(html / "classifiers.html")
    assert "class cvkit.classifiers. FeatureClassifier" in classifiers
    assert "Parameters :" in classifiers and "backbone – backbone name" in classifiers  # the fields rendered
    evaluation = text_of(html / "evaluation.html")
    assert "cvkit.evaluation. find_label_issues" in evaluation
    cli = text_of(html / "cli.html")
    assert "usage: cvkit train" in cli and "--method {features,finetune}" in cli
    assert "cvkit train sample_data" in cli  # the epilog's examples, as the terminal shows them
    top = text_of(html / "cvkit.html")
    assert all(name in top for name in importlib.import_module("cvkit")._EXPORTS)


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(FACES))
def test_every_public_name_of_a_face_is_on_its_page(built, page):
    run, html = built
    assert run.returncode == 0
    text = text_of(html / f"{page}.html")
    face = importlib.import_module(FACES[page])
    missing = [name for name in face.__all__ if name not in text]
    assert not missing, f"{page}.html does not mention {missing}"
    # and each name documented on its page has its own entry (an anchor named after it), or links to it
    source = (html / f"{page}.html").read_text(encoding="utf-8")
    for name in face.__all__:
        assert re.search(rf'(id|href)="[^"]*\.{re.escape(name)}"', source), f"{page}.html: no entry or link for {name}"


def _convert():
    sys.path.insert(0, str(SOURCE / "_ext"))
    try:
        return importlib.import_module("cvkit_fields").convert
    finally:
        sys.path.remove(str(SOURCE / "_ext"))


def test_a_parameters_block_becomes_bullets_and_the_prose_after_it_stays():
    doc = ["Images.", "", "Parameters", "----------", "paths : image file paths.",
           "targets, labels : the class of each image,", "    and the class names.", "",
           "Most users build one with :meth:`from_directory`.", "", "Example:", "    >>> 1", "    1"]
    assert _convert()(doc) == [
        "Images.", "", ":Parameters:", "   * **paths** -- image file paths.",
        "   * **targets**, **labels** -- the class of each image,", "     and the class names.", "",
        "Most users build one with :meth:`from_directory`.", "", "Example:", "    >>> 1", "    1"]


def test_a_block_of_fields_without_a_header_becomes_bullets_and_prose_attributes_are_literals():
    convert = _convert()
    doc = ["The knobs.", "", "api_key : when set, a key.", "max_images : most images", "    in one request.", "",
           "Example:", "    >>> ServiceConfig()"]
    assert convert(doc) == ["The knobs.", "", "* **api_key** -- when set, a key.", "* **max_images** -- most images",
                            "  in one request.", "", "Example:", "    >>> ServiceConfig()"]
    # one "name : text" line in prose is not a block; an Attributes section in prose keeps its words,
    # with names ending in "_" as literals (in reST they would be links to nowhere)
    assert convert(["", "note : one line", "more prose"]) == ["", "note : one line", "more prose"]
    assert convert(["Attributes", "----------", "classes_, model_ (the Keras model)."]) == [
        ":Attributes:", "   ``classes_``, ``model_`` (the Keras model).", ""]
