"""Odd files never hang or lose data (issue 14, items 3, 4, 6, 7, 8, 12) and ImageDataset.from_path."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvkit.data import (
    BadImageWarning,
    DuplicateImageWarning,
    ImageDataset,
    ImageReadError,
    TableFormatError,
    check_image,
    read_image,
)
from cvkit.data import _checks as checks_module
from cvkit.data._images import MAX_IMAGE_PIXELS
from cvkit.data._sources import MAX_FIELD_CHARS, format_row, iter_records, read_table
from cvkit.widgets import LabelsFile


def _jpeg(path: Path, colour=(200, 30, 30), size=(24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG")
    return path


# ---------------------------------------------------------------- item 3: FIFOs, sockets, devices
@pytest.fixture()
def odd_files(tmp_path):
    """A class folder holding one good image and a FIFO, a link to /dev/zero and a socket named .jpg."""
    folder = tmp_path / "data" / "cat"
    _jpeg(folder / "good.jpg")
    _jpeg(tmp_path / "data" / "dog" / "good2.jpg", colour=(10, 200, 10))
    os.mkfifo(folder / "fifo.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.jpg"))
    yield folder
    sock.close()


ODD = {"fifo.jpg": "named pipe", "zero.jpg": "character device", "sock.jpg": "socket"}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(ODD))
def test_read_image_and_check_image_refuse_pipes_devices_and_sockets(odd_files, name):
    with pytest.raises(ImageReadError, match=ODD[name]) as info:
        read_image(odd_files / name, size=32)
    assert name in str(info.value)
    assert ODD[name] in check_image(odd_files / name)


@pytest.mark.timeout(20)
def test_from_directory_and_from_table_skip_odd_files_with_the_reason(odd_files):
    root = odd_files.parent
    with pytest.warns(BadImageWarning, match="skipped 3"):
        ds = ImageDataset.from_directory(root)
    assert len(ds) == 2
    assert {Path(p).name: r for p, r in ds.skipped} == {n: f"not a regular file (a {k})" for n, k in ODD.items()}
    table = root / "list.tsv"
    table.write_text("".join(f"cat/{n}\tcat\n" for n in ["good.jpg", *ODD]) + "dog/good2.jpg\tdog\n")
    with pytest.warns(BadImageWarning, match="skipped 3"):
        ds = ImageDataset.from_table(table)
    assert len(ds) == 2
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert all(ODD[n] in reasons[n] for n in ODD), reasons


@pytest.mark.timeout(20)
def test_a_labels_file_that_is_a_pipe_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "labels.tsv")
    with pytest.raises(ValueError, match="named pipe"):
        LabelsFile(tmp_path / "labels.tsv")


@pytest.mark.timeout(120)
def test_featurizer_inputs_skip_odd_files_without_hanging(odd_files):
    from cvkit import ImageFeaturizer
    paths = [str(odd_files / "good.jpg"), *(str(odd_files / n) for n in sorted(ODD))]
    with pytest.warns(BadImageWarning):
        features, ok = ImageFeaturizer(cache=False).transform(paths, return_mask=True)
    assert ok.tolist() == [True, False, False, False] and features.shape[0] == 4


# ---------------------------------------------------------------- item 4: one pixel limit
@pytest.fixture(scope="module")
def big_images(tmp_path_factory):
    """A real 10000x10000 JPEG, a 14000x14000 JPEG (over cvkit's limit) and a 12000x12000 PNG.

    Grey gradients in mode L keep them cheap to make (at most ~200 MB while encoding)."""
    folder = tmp_path_factory.mktemp("big")
    out = {}
    for name, side, fmt in [("10k.jpg", 10_000, "JPEG"), ("14k.jpg", 14_000, "JPEG"), ("12k.png", 12_000, "PNG")]:
        ramp = Image.linear_gradient("L").resize((side, side), Image.Resampling.NEAREST)
        ramp.save(folder / name, fmt)
        del ramp
        out[name] = folder / name
    return out


@pytest.mark.timeout(120)
def test_cvkit_max_pixels_is_the_only_pixel_limit(big_images):
    # 10k x 10k = 100M pixels: under cvkit's documented limit, above Pillow's own 89,478,485
    img = read_image(big_images["10k.jpg"], size=224)
    assert img.shape == (224, 224, 3)
    assert check_image(big_images["10k.jpg"]) is None
    assert read_image(big_images["12k.png"], size=64).shape == (64, 64, 3)
    # 14k x 14k = 196M pixels: over cvkit's limit, refused with cvkit's message ...
    with pytest.raises(ImageReadError, match=f"exceeds the limit of {MAX_IMAGE_PIXELS}"):
        read_image(big_images["14k.jpg"], size=224)
    assert "too large" in check_image(big_images["14k.jpg"])
    # ... and max_pixels really controls it, both ways
    assert read_image(big_images["14k.jpg"], size=224, max_pixels=None).shape == (224, 224, 3)
    assert read_image(big_images["14k.jpg"], size=224, max_pixels=200_000_000).shape == (224, 224, 3)
    with pytest.raises(ImageReadError, match="exceeds the limit of 1000"):
        read_image(big_images["10k.jpg"], size=224, max_pixels=1000)


@pytest.mark.timeout(120)
def test_big_images_read_in_threads_warn_nothing(big_images):
    from concurrent.futures import ThreadPoolExecutor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ThreadPoolExecutor(4) as pool:
            shapes = list(pool.map(lambda p: read_image(p, size=32, max_pixels=None).shape,
                                   [big_images["10k.jpg"], big_images["14k.jpg"]] * 2))
    assert shapes == [(32, 32, 3)] * 4


# ---------------------------------------------------------------- item 6: huge cells
def test_a_huge_cell_is_a_table_format_error_naming_file_and_line(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    table = tmp_path / "t.tsv"
    table.write_text("a.jpg\tcat\n" + "x" * (MAX_FIELD_CHARS + 1) + "\tdog\na.jpg\tcat\n")
    with pytest.raises(TableFormatError, match=r"t.tsv line 2: a cell is longer than 131072"):
        ImageDataset.from_table(table)
    with pytest.warns(BadImageWarning, match="line 2"):
        ds = ImageDataset.from_table(table, errors="skip")
    assert len(ds) == 2
    assert isinstance(TableFormatError(table, 1, "x"), ValueError)  # the CLI's exit status 2


def test_a_quote_never_closed_costs_one_line(tmp_path):
    for n in "abc":
        _jpeg(tmp_path / f"{n}.jpg")
    table = tmp_path / "t.csv"
    table.write_text('a.jpg,cat\n"b.jpg,dog\nc.jpg,dog\n')
    with pytest.raises(TableFormatError, match=r"t.csv line 2: a quoted cell is never closed"):
        read_table(table)
    paths, labels, problems = read_table(table, errors="skip")
    assert [Path(p).name for p in paths] == ["a.jpg", "c.jpg"] and labels == ["cat", "dog"]
    assert problems == [(f"{table} line 2", 'a quoted cell is never closed (its closing " is missing)')]


# ---------------------------------------------------------------- item 7: names kept exactly
AWKWARD = [" leading.jpg", "trailing.jpg ", "  both  .jpg", "tab\there.jpg", "new\nline.jpg",
           "carriage\rreturn.jpg", 'quote".jpg', '"quoted".jpg', "comma, here.jpg", "#hash.jpg",
           "ünïcødé café 猫.jpg", "nbsp\u00a0.jpg", "line\u2028sep.jpg", "\u0085next.jpg"]


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_awkward_names_round_trip_through_labels_file_and_read_table(tmp_path, suffix):
    folder = tmp_path / "photos"
    for k, name in enumerate(AWKWARD):
        _jpeg(folder / name, colour=(k * 15, 0, 0))
    store = LabelsFile(tmp_path / f"labels{suffix}")
    for k, name in enumerate(AWKWARD):
        store.set_label(folder / name, "cat" if k % 2 else "dog, or not")
    store.save()
    again = LabelsFile(tmp_path / f"labels{suffix}")
    assert again.annotations == store.annotations
    paths, labels, problems = read_table(tmp_path / f"labels{suffix}")
    assert problems == []
    assert dict(zip((Path(p).name for p in paths), labels)) == \
        {name: "cat" if k % 2 else "dog, or not" for k, name in enumerate(AWKWARD)}


def test_unquoted_cells_still_lose_stray_spaces(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    (tmp_path / "t.tsv").write_text("  a.jpg  \t cat \n")
    assert read_table(tmp_path / "t.tsv")[:2] == ([str(tmp_path / "a.jpg")], ["cat"])


def test_records_follow_the_csv_rules():
    rows = [r.cells for r in iter_records('a,"b ""x"", c"\r\n"multi\nline",d\rlast,"",\n', ",")]
    assert rows == [["a", 'b "x", c'], ["multi\nline", "d"], ["last", "", ""]]
    assert [r.line for r in iter_records('a,b\n"c\nd",e\nf,g\n', ",")] == [1, 2, 4]
    assert format_row(["", " x", "y"], ",") == '"",\" x\",y\n'


# ---------------------------------------------------------------- item 8: two writers, one file
def _label_alternate(path: str, images: list[str], start: int, barrier) -> None:
    store = LabelsFile(path)
    barrier.wait()
    for image in images[start::2]:
        store.set_label(image, f"class{start}")
        store.save()


@pytest.mark.timeout(120)
def test_two_processes_labelling_one_file_lose_nothing(tmp_path):
    images = [str(tmp_path / f"img{k:03d}.jpg") for k in range(120)]
    tsv = str(tmp_path / "labels.tsv")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_label_alternate, args=(tsv, images, start, barrier)) for start in (0, 1)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(90)
        assert proc.exitcode == 0
    saved = LabelsFile(tsv).annotations
    assert len(saved) == 120, f"{120 - len(saved)} labels lost"
    assert all(saved[img] == f"class{k % 2}" for k, img in enumerate(images))


def test_save_merges_other_writers_changes_and_keeps_its_own(tmp_path):
    tsv = tmp_path / "labels.tsv"
    x, y, z = (str(tmp_path / n) for n in ("x.jpg", "y.jpg", "z.jpg"))
    a, b = LabelsFile(tsv), LabelsFile(tsv)
    a.set_label(x, "cat"); a.exclude(y, "blurry"); a.save()
    b.set_label(z, "dog"); b.set_label(x, "lion"); b.save()  # b changed x too: the later save wins
    assert LabelsFile(tsv).annotations == {x: "lion", z: "dog"}
    assert LabelsFile(tsv).excluded == {y: "blurry"}
    assert b.labels == ["dog", "lion", "cat"] and b.is_excluded(y)
    a.clear(y); a.save()  # a's own change applies; b's labels survive it
    assert LabelsFile(tsv).excluded == {} and a.label_of(z) == "dog" and a.label_of(x) == "lion"


def test_stale_temporary_files_of_killed_saves_are_removed_on_open(tmp_path):
    tsv = tmp_path / "labels.tsv"
    LabelsFile(tsv).save()
    stale = [tmp_path / ".labels.tsv.k1ll3d.tmp", tmp_path / ".labels.tsv.0ther.tmp"]
    for p in stale:
        p.write_text("half a file")
    keep = [tmp_path / ".other.tsv.abc.tmp", tmp_path / "labels.tsv.tmp"]
    for p in keep:
        p.write_text("not ours")
    LabelsFile(tsv)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)


# ---------------------------------------------------------------- item 12: one image, two classes
def test_same_bytes_in_two_class_folders_warn_naming_both(tmp_path):
    _jpeg(tmp_path / "cat" / "a.jpg")
    _jpeg(tmp_path / "dog" / "b.jpg", colour=(1, 2, 3))
    shutil.copy(tmp_path / "cat" / "a.jpg", tmp_path / "dog" / "copy.jpg")
    shutil.copy(tmp_path / "cat" / "a.jpg", tmp_path / "cat" / "same_class_copy.jpg")
    with pytest.warns(DuplicateImageWarning) as caught:
        ds = ImageDataset.from_directory(tmp_path)
    assert len(caught) == 1 and len(ds) == 4, "a warning, nothing dropped"
    message = str(caught[0].message)
    assert "cat/a.jpg (cat)" in message and "dog/copy.jpg (dog)" in message
    assert "b.jpg" not in message


def test_one_table_path_with_two_labels_warns(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    _jpeg(tmp_path / "b.jpg", colour=(0, 0, 9))
    (tmp_path / "t.tsv").write_text("a.jpg\tcat\nb.jpg\tcat\n./a.jpg\tdog\nb.jpg\tcat\n")
    for check in (True, False):
        with pytest.warns(DuplicateImageWarning, match=r"1 image\(s\) have more than one label") as caught:
            ImageDataset.from_table(tmp_path / "t.tsv", check=check)
        assert "a.jpg (cat)" in str(caught[0].message) and "a.jpg (dog)" in str(caught[0].message)


def test_only_files_whose_sizes_collide_are_hashed(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for k in range(6):
        (tmp_path / ("cat" if k % 2 else "dog")).mkdir(exist_ok=True)
        noise = rng.integers(0, 255, (10, 10 + k * 8, 3), np.uint8)  # a different file size each
        Image.fromarray(noise).save(tmp_path / ("cat" if k % 2 else "dog") / f"{k}.png")
    hashed = []
    real = checks_module.file_sha256
    monkeypatch.setattr(checks_module, "file_sha256", lambda p: hashed.append(p) or real(p))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageDataset.from_directory(tmp_path)
    assert hashed == []


def test_sample_data_has_no_image_under_two_classes(sample_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageDataset.from_directory(sample_dir)


# ---------------------------------------------------------------- issue 13: from_path
def test_from_path_takes_a_folder_or_a_table(sample_dir, tmp_path):
    a = ImageDataset.from_path(sample_dir)
    b = ImageDataset.from_path(sample_dir / "tags.tsv", check=False)
    assert sorted(zip(a.paths, a.image_labels)) == sorted(zip(b.paths, b.image_labels))
    assert len(a) == 104
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageDataset.from_path(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe.tsv")
    with pytest.raises(ValueError, match="neither a folder"):
        ImageDataset.from_path(tmp_path / "pipe.tsv")
    assert np.array_equal(a.targets, ImageDataset.from_path(str(sample_dir)).targets)
