"""Property-based tests (hypothesis): any file name the file system allows keeps its label.

Names may hold spaces at either end, tabs, line breaks, quotes, commas, ``#`` and any unicode; the
only characters Linux forbids in a name are ``/`` and NUL, and ``.`` and ``..`` are not names.
Each example writes tiny real PNG files under those names in a fresh folder.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from cvkit.data import ImageDataset
from cvkit.data._sources import format_row, iter_records
from cvkit.widgets import LabelsFile

#: Examples per property: each test stays well under 20 s on one core (about 5 s each).
EXAMPLES = 200


def _png(k: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (k * 37 % 256, k * 91 % 256, k % 256)).save(buf, "PNG")
    return buf.getvalue()


PNGS = [_png(k) for k in range(8)]  # different bytes, so no image is a duplicate of another

names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                min_size=1, max_size=30).filter(
    lambda s: s not in (".", "..") and len(s.encode("utf-8")) <= 255)
labels = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\r\n\x00"),
                 min_size=1, max_size=12).filter(lambda s: s.strip() != "")
entries = st.lists(st.tuples(names, labels), min_size=1, max_size=len(PNGS),
                   unique_by=lambda e: e[0])
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _write_images(folder: Path, rows: list[tuple[str, str]]) -> dict[str, str]:
    for k, (name, _) in enumerate(rows):
        (folder / name).write_bytes(PNGS[k])
    return {str(folder / name): label.strip() for name, label in rows}


@pytest.mark.timeout(60)
@SETTINGS
@given(rows=entries, suffix=st.sampled_from([".tsv", ".csv"]))
@example(rows=[(" leading.jpg", "cat"), ("trailing ", " dog "), ("a\rb\nc\td", "x, y"), ('"q"', "#z"),
               ("#hash", "cat"), (" ", "cat"), ("\u2028\x85", "cat")], suffix=".tsv")
def test_any_file_name_round_trips_through_labels_file(rows, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        expected = _write_images(folder, rows)
        store = LabelsFile(folder / f"labels{suffix}")
        for path, label in expected.items():
            store.set_label(path, label)
        store.save()
        assert LabelsFile(folder / f"labels{suffix}").annotations == expected
        ds = ImageDataset.from_table(folder / f"labels{suffix}")
        assert dict(zip(ds.paths, ds.image_labels)) == expected and ds.skipped == []


@pytest.mark.timeout(60)
@SETTINGS
@given(rows=entries, delimiter=st.sampled_from(["\t", ","]), header=st.booleans())
def test_any_file_name_round_trips_through_a_table(rows, delimiter, header):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        expected = _write_images(folder, rows)
        table = folder / ("t.tsv" if delimiter == "\t" else "t.csv")
        text = format_row(["path", "label"], delimiter) if header else ""
        # a name starting with "#" is written as ./#name so no reader takes the row for a comment
        text += "".join(format_row(["./" + n if n.startswith("#") else n, lab], delimiter) for n, lab in rows)
        table.write_text(text, encoding="utf-8", newline="")
        ds = ImageDataset.from_table(table)
        got = {str(Path(p).parent / Path(p).name): lab for p, lab in zip(ds.paths, ds.image_labels)}
        assert {str(Path(p)): lab for p, lab in expected.items()} == got and ds.skipped == []


@SETTINGS
@given(cells=st.lists(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=10),
                                min_size=1, max_size=4), min_size=1, max_size=5),
       delimiter=st.sampled_from(["\t", ","]))
def test_format_row_and_iter_records_are_inverse(cells, delimiter):
    text = "".join(format_row(row, delimiter) for row in cells)
    records = list(iter_records(text, delimiter))
    assert [r.error for r in records] == [None] * len(cells)
    assert [r.cells for r in records] == cells
