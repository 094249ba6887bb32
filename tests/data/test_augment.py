"""cvkit.data.augment: pipelines, seeding, augmented copies in a new folder, preview figure."""
from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from cvkit.data import BadImageWarning, ImageDataset, augment, read_image

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def _digest(folder: Path) -> dict[str, tuple[str, float]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
    return out


@pytest.fixture()
def small_tree(tmp_path: Path) -> Path:
    """Two classes with three real photos each, plus one corrupt 'jpg'."""
    root = tmp_path / "src"
    for label in ("bird", "fruit"):
        (root / label).mkdir(parents=True)
        for p in sorted((SAMPLE / label).glob("*.jpg"))[:3]:
            shutil.copy2(p, root / label / p.name)
    (root / "fruit" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_default_pipeline_changes_images_and_keeps_shape():
    img = read_image(sorted((SAMPLE / "bird").glob("*.jpg"))[0], size=96)
    batch = np.stack([img] * 4)
    out = augment.augment_images(batch, augment.default_pipeline(), random_state=1)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert not np.array_equal(out, batch)
    # four copies of one image come out different from one another
    assert len({o.tobytes() for o in out}) == 4


def test_seeded_augmentation_is_repeatable_and_leaves_pipeline_untouched():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 255, (3, 48, 48, 3), dtype=np.uint8)
    original = batch.copy()
    pipe = augment.default_pipeline()
    state = [str(child.random_state.state) for child in pipe.get_all_children(flat=True)]
    a = augment.augment_images(batch, pipe, random_state=7)
    b = augment.augment_images(batch, pipe, random_state=7)
    c = augment.augment_images(batch, pipe, random_state=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(batch, original)  # input never modified in place
    # seeding works on a private copy: the caller's pipeline generators did not move
    assert [str(child.random_state.state) for child in pipe.get_all_children(flat=True)] == state


def test_flip_false_removes_the_mirror_and_zero_amounts_remove_steps():
    names = [a.name for a in augment.default_pipeline(flip=False)]
    assert "flip" not in names and "affine" in names
    assert [a.name for a in augment.default_pipeline(crop=0, rotate=0, scale=0, translate=0, color=0)] == ["flip"]
    with pytest.raises(ValueError, match="crop"):
        augment.default_pipeline(crop=1.5)


def test_as_pipeline_accepts_documented_forms_and_rejects_others():
    import imgaug.augmenters as iaa

    assert augment.as_pipeline(None) is None and augment.as_pipeline(False) is None
    assert isinstance(augment.as_pipeline("default"), iaa.Sequential)
    flip = iaa.Fliplr(1.0)
    assert augment.as_pipeline(flip) is flip
    seq = augment.as_pipeline([iaa.Fliplr(1.0), iaa.Flipud(1.0)])
    img = np.stack([np.arange(12, dtype=np.uint8).reshape(3, 4)] * 3, axis=-1)
    out = augment.augment_images(img[None], seq, random_state=0)[0]
    assert np.array_equal(out, img[::-1, ::-1])  # both flips applied, in order
    with pytest.raises(TypeError, match="imgaug augmenter"):
        augment.as_pipeline([iaa.Fliplr(1.0), "blur"])
    with pytest.raises(TypeError, match="int"):
        augment.as_pipeline(3)


def test_augment_images_rejects_wrong_arrays():
    with pytest.raises(ValueError, match="uint8"):
        augment.augment_images(np.zeros((2, 8, 8, 3), np.float32), "default")


def test_augment_dataset_writes_new_folder_only_and_never_touches_sources(small_tree, tmp_path):
    before = _digest(small_tree)
    with pytest.warns(BadImageWarning, match="broken.jpg"):
        ds = ImageDataset.from_directory(small_tree)
    assert len(ds) == 6
    ds.paths.append(str(small_tree / "fruit" / "broken.jpg"))  # a file that went bad after listing
    ds.targets = np.append(ds.targets, 1)
    out = tmp_path / "aug"
    with pytest.warns(BadImageWarning, match="broken.jpg"):
        result = augment.augment_dataset(ds, [augment.default_pipeline(), augment.default_pipeline(flip=False)],
                                         out, copies=2, random_state=0, verbose=False)
    assert _digest(small_tree) == before  # sources byte-identical, same mtimes, nothing added
    # 6 originals + 6 images * 2 pipelines * 2 copies
    assert len(result) == 6 + 24
    assert result.labels == ds.labels
    assert result.counts() == {"bird": 15, "fruit": 15}
    new = result.paths[6:]
    assert all(Path(p).resolve().is_relative_to(out.resolve()) for p in new)
    assert all(read_image(p).shape[2] == 3 for p in new)
    assert sorted(p.parent.name for p in map(Path, new)) == ["bird"] * 12 + ["fruit"] * 12
    assert any(str(small_tree / "fruit" / "broken.jpg") == p for p, _ in result.skipped)
    # augmented copies keep the class of their source image
    for p, label in zip(result.paths, result.image_labels):
        assert Path(p).parent.name == label


def test_augment_dataset_is_repeatable(small_tree, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        ds = ImageDataset.from_directory(small_tree)
        a = augment.augment_dataset(ds, augment.default_pipeline(), tmp_path / "a", random_state=3, verbose=False)
        b = augment.augment_dataset(ds, augment.default_pipeline(), tmp_path / "b", random_state=3, verbose=False)
    assert [read_image(p).tobytes() for p in a.paths[6:]] == [read_image(p).tobytes() for p in b.paths[6:]]


@pytest.mark.parametrize("where", ["root", "class_folder", "nonempty"])
def test_augment_dataset_refuses_unsafe_output_folders(small_tree, tmp_path, where):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        ds = ImageDataset.from_directory(small_tree)
    before = _digest(small_tree)
    out = {"root": small_tree / "augmented", "class_folder": small_tree / "bird",
           "nonempty": tmp_path}[where]
    with pytest.raises(ValueError, match="out_dir"):
        augment.augment_dataset(ds, "default", out, verbose=False)
    assert _digest(small_tree) == before
    assert not (small_tree / "augmented").exists()


def test_augment_dataset_bad_arguments(small_tree, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        ds = ImageDataset.from_directory(small_tree)
    with pytest.raises(ValueError, match="copies must be a positive int, got 0"):
        augment.augment_dataset(ds, "default", tmp_path / "x", copies=0)
    with pytest.raises(ValueError, match="pipelines"):
        augment.augment_dataset(ds, [], tmp_path / "y")


def test_augmented_copies_are_written_atomically_and_never_overwrite(small_tree, tmp_path, monkeypatch):
    """Each copy goes through cvkit._io.atomic_write (a killed run leaves no half JPEG); an existing
    file is an error naming it, never replaced; the former progress= still works with a FutureWarning."""
    from cvkit._io import _atomic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        ds = ImageDataset.from_directory(small_tree).subset([0, 1])
    written = []
    real = _atomic.atomic_write
    monkeypatch.setattr(augment, "atomic_write", lambda path, data: written.append(Path(path).name) or real(path, data))
    with pytest.warns(FutureWarning, match="'progress' was renamed 'verbose'"):
        out = augment.augment_dataset(ds, "default", tmp_path / "aug", copies=2, progress=False)
    new = sorted(Path(p).name for p in out.paths[2:])
    assert sorted(written) == new and len(new) == 4
    assert not [p for p in (tmp_path / "aug").rglob("*") if p.name.startswith(".")]  # no temporary left
    target = Path(out.paths[2])
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match=target.name):
        augment._write_new_jpeg(target, np.zeros((8, 8, 3), np.uint8), 95)
    assert target.read_bytes() == before
    with pytest.raises(ValueError, match="give verbose= only"):
        augment.augment_dataset(ds, "default", tmp_path / "aug2", verbose=False, progress=False)


def test_pipeline_amounts_are_declared_checks():
    with pytest.raises(ValueError, match=r"rotate must be a number in \[0, 180\], got 200"):
        augment.default_pipeline(rotate=200)
    with pytest.raises(ValueError, match=r"color must be a number in \[0, 1\), got -0.1"):
        augment.default_pipeline(color=-0.1)
    assert [a.name for a in augment.default_pipeline(crop=False, rotate=0, scale=0, translate=0, color=0)] == ["flip"]


def test_preview_returns_figure_with_originals_beside_copies(small_tree):
    from matplotlib.figure import Figure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        ds = ImageDataset.from_directory(small_tree)
    fig = augment.preview(ds, augment.default_pipeline(), n=3, copies=2)
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 9
    titles = [ax.get_title() for ax in fig.axes]
    assert sum(t.endswith("(original)") for t in titles) == 3
    assert sum(t.startswith("augmented") for t in titles) == 6
    with pytest.raises(ValueError, match="None"):
        augment.preview(ds, None)
    import matplotlib.pyplot as plt
    plt.close(fig)


def _hue_degrees(rgb: np.ndarray) -> float:
    import colorsys
    r, g, b = rgb.reshape(-1, 3).mean(axis=0) / 255
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360


def test_default_colour_jitter_keeps_hue_and_flat_areas():
    """A red sign stays red (no magenta, no orange) and a near-white background gets no speckle."""
    pipe = augment.default_pipeline(flip=False, crop=0, rotate=0, scale=0, translate=0)
    red = np.zeros((32, 48, 48, 3), np.uint8)
    red[...] = (200, 25, 30)
    hues = [_hue_degrees(img) for img in augment.augment_images(red, pipe, random_state=0)]
    assert all(h >= 350 or h <= 10 for h in hues), hues
    rng = np.random.default_rng(0)
    white = np.repeat(np.clip(245 + rng.integers(-3, 4, (1, 48, 48, 3)), 0, 255).astype(np.uint8), 32, axis=0)
    out = augment.augment_images(white, pipe, random_state=0).astype(int)
    chroma = out.max(axis=-1) - out.min(axis=-1)  # 0 for grey; speckle would be bright colour
    assert chroma.max() <= (white.astype(int).max(-1) - white.astype(int).min(-1)).max() + 2


def test_no_flip_pipelines_never_mirror():
    img = np.zeros((1, 32, 32, 3), np.uint8)
    img[:, :, :8] = 255  # a bright left edge: a mirror would move it to the right
    only = {"crop": 0, "rotate": 0, "scale": 0, "translate": 0, "color": 0}
    flipped = augment.augment_images(np.repeat(img, 16, 0), augment.default_pipeline(**only), random_state=0)
    assert any(o[:, -8:].mean() > 200 for o in flipped)
    for pipe in (augment.default_pipeline(flip=False), augment.as_pipeline("default-no-flip")):
        out = augment.augment_images(np.repeat(img, 16, 0), pipe, random_state=0)
        assert all(o[:, :4].mean() > o[:, -4:].mean() + 100 for o in out)
        assert "mirror" not in augment.describe(pipe)
    with pytest.raises(ValueError, match="default-no-flip"):
        augment.as_pipeline("no-flip")


def test_describe_names_each_step_and_its_range():
    import imgaug.augmenters as iaa

    text = augment.describe("default")
    assert text.startswith("mirror left-right (p=0.5); crop 0-10% per side; rotate +/-10 deg")
    assert "brightness x0.8-1.2" in text and "hue" not in text
    assert augment.describe(None) == "no augmentation"
    assert augment.describe([iaa.Flipud(1.0), iaa.GaussianBlur((0, 1.0))]) == "mirror up-down; GaussianBlur"


def test_preview_title_says_what_the_pipeline_does(small_tree):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        ds = ImageDataset.from_directory(small_tree)
    pipe = augment.default_pipeline(flip=False)
    fig = augment.preview(ds, pipe, n=2, copies=2)
    title = " ".join(fig._suptitle.get_text().split())
    assert title == f"Augmented by: {augment.describe(pipe)}"
    import matplotlib.pyplot as plt
    plt.close(fig)
