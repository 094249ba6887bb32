"""Image-quality checks: each flags its constructed case and no clean photo; bad files are rows, not crashes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

import cvkit
from cvkit._validation import InvalidParameterError
from cvkit.data import image_quality
from cvkit.data._quality import ISSUES, QUALITY_COLUMNS

N_CLEAN = 16


def _spoil(img: Image.Image, how: str) -> Image.Image:
    x = np.asarray(img, dtype=np.float64)
    if how == "blurry":
        return img.filter(ImageFilter.GaussianBlur(4))
    if how == "dark":
        return Image.fromarray((x * 0.12).astype(np.uint8))
    if how == "bright":
        return Image.fromarray((255 - (255 - x) * 0.12).astype(np.uint8))
    if how == "near_constant":
        mean = x.reshape(-1, 3).mean(axis=0)
        return Image.fromarray((mean + 0.03 * (x - mean)).astype(np.uint8))
    if how == "small":
        return img.resize((24, 18))
    if how == "odd_aspect":
        return img.crop((0, 0, img.width, img.width // 4))
    if how == "grayscale":
        return img.convert("L").convert("RGB")
    raise ValueError(how)


@pytest.fixture(scope="module")
def photo_set(sample_dir, tmp_path_factory):
    """16 clean photos of at least 150 px, plus one constructed case per issue (in class folders)."""
    root = tmp_path_factory.mktemp("quality")
    for name in ("clean", "spoilt"):
        (root / name).mkdir()
    big = [p for p in sorted(sample_dir.glob("*/*.jpg")) if min(Image.open(p).size) >= 150]
    clean = []
    for k, p in enumerate(big[:N_CLEAN]):
        clean.append(root / "clean" / f"{k}_{p.name}")
        clean[-1].write_bytes(p.read_bytes())
    source = Image.open(big[N_CLEAN]).convert("RGB")
    cases = {}
    for how in ("blurry", "dark", "bright", "near_constant", "small", "odd_aspect", "grayscale"):
        cases[how] = root / "spoilt" / f"{how}.jpg"
        _spoil(source, how).save(cases[how], quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: turn 90° clockwise to be upright
    cases["orientation"] = root / "spoilt" / "orientation.jpg"
    source.transpose(Image.Transpose.ROTATE_90).save(cases["orientation"], quality=92, exif=exif.tobytes())
    cases["unreadable"] = root / "spoilt" / "unreadable.jpg"
    cases["unreadable"].write_bytes(b"\xff\xd8 this is no JPEG")
    paths = [str(p) for p in clean] + [str(p) for p in cases.values()]
    return paths, {how: str(p) for how, p in cases.items()}, [str(p) for p in clean]


@pytest.fixture(scope="module")
def issues(photo_set):
    paths, _, _ = photo_set
    return cvkit.find_image_issues(paths)


def test_the_table_has_its_columns_and_every_issue_a_reason(issues):
    assert list(issues.columns) == QUALITY_COLUMNS
    assert set(issues.issue) <= set(ISSUES)
    assert issues.reason.str.len().gt(10).all()


@pytest.mark.parametrize("issue", ["blurry", "dark", "bright", "near_constant", "small", "odd_aspect", "grayscale",
                                   "orientation", "unreadable"])
def test_each_check_flags_its_case_and_nothing_else(photo_set, issues, issue):
    _, cases, _ = photo_set
    flagged = issues[issues.issue == issue]
    assert flagged.path.tolist() == [cases[issue]], flagged.reason.tolist()
    assert issues[issues.path == cases[issue]].issue.tolist() == [issue]  # one cause, one flag
    assert flagged.reason.item().startswith(issue.replace("_", "-").replace("odd-aspect", "odd aspect")) or \
        issue == "unreadable"


def test_no_clean_photo_is_flagged(photo_set, issues):
    _, _, clean = photo_set
    assert not set(issues.path) & set(clean)
    assert cvkit.find_image_issues(clean).empty


def test_reasons_give_the_score_and_the_set(photo_set, issues):
    _, cases, _ = photo_set
    blurry = issues[issues.issue == "blurry"].iloc[0]
    assert "Laplacian variance" in blurry.reason and "the set's median is" in blurry.reason and "1/" in blurry.reason
    assert blurry.score < blurry.threshold
    small = issues[issues.issue == "small"].iloc[0]
    assert small.reason.startswith("small: 24x18 px") and small.score == pytest.approx(np.sqrt(24 * 18))
    dark = issues[issues.issue == "dark"].iloc[0]
    assert dark.score < dark.threshold and "brightest 1%" in dark.reason


def test_unreadable_files_are_reported_not_raised(photo_set, tmp_path):
    _, cases, _ = photo_set
    found = cvkit.find_image_issues([cases["unreadable"], str(tmp_path / "missing.jpg"), b"junk"])
    assert found.issue.tolist() == ["unreadable"] * 3
    assert found.reason.tolist()[1] == "file not found" and found.index.tolist() == [0, 1, 2]
    assert np.isnan(found.score).all()


def test_the_orientation_tag_is_read_and_the_size_is_upright(photo_set):
    _, cases, _ = photo_set
    q = image_quality([cases["orientation"]])
    stored = Image.open(cases["orientation"]).size
    assert q.orientation.item() == 6 and (q.width.item(), q.height.item()) == (stored[1], stored[0])
    found = cvkit.find_image_issues([cases["orientation"]], checks=["orientation"])
    assert found.score.item() == 6 and "read_image applies the tag" in found.reason.item()
    assert cvkit.read_image(cases["orientation"]).shape[:2] == (stored[0], stored[1])  # turned upright


def test_grayscale_only_counts_in_a_colour_set(photo_set, tmp_path):
    _, cases, clean = photo_set
    grey_files = []
    for k, p in enumerate(clean[:6]):
        grey_files.append(str(tmp_path / f"grey{k}.png"))
        Image.open(p).convert("L").save(grey_files[-1])  # stored grey
    in_colour = cvkit.find_image_issues(clean + grey_files[:1], checks=["grayscale"])
    assert in_colour.path.tolist() == grey_files[:1] and "stored as a grey image" in in_colour.reason.item()
    assert cvkit.find_image_issues(grey_files, checks=["grayscale"]).empty  # an X-ray set is all grey


def test_a_whole_set_of_blurred_photos_is_still_flagged_by_the_floor(photo_set, tmp_path):
    _, _, clean = photo_set
    blurred = []
    for k, p in enumerate(clean[:5]):
        blurred.append(str(tmp_path / f"b{k}.jpg"))
        Image.open(p).filter(ImageFilter.GaussianBlur(12)).save(blurred[-1])
    assert set(cvkit.find_image_issues(blurred, checks=["blurry"]).path) == set(blurred)


def test_dataset_audit_arrays_and_empty_inputs(sample_dir):
    ds = cvkit.ImageDataset.from_directory(sample_dir)
    audit = ds.audit()
    assert audit.equals(cvkit.find_image_issues(ds))
    assert audit.label.tolist() == ["vegetable"] and audit.issue.tolist() == ["odd_aspect"]
    photos = [cvkit.read_image(p) for p in ds.paths[:8]]
    dark, blank = (photos[0] * 0.1).astype(np.uint8), np.full((40, 60, 3), 3, np.uint8)
    found = cvkit.find_image_issues(photos + [dark, blank])
    assert found.path.tolist() == ["<array #8>", "<array #9>"] and found.issue.tolist() == ["dark", "near_constant"]
    assert found.reason.iloc[1].startswith("near-constant: brightness 3 ± 0.0 of 255")
    empty = cvkit.find_image_issues([])
    assert empty.empty and list(empty.columns) == QUALITY_COLUMNS


def test_parameters_are_checked_before_any_image_is_read():
    with pytest.raises(InvalidParameterError, match="blur_ratio must be a number in"):
        cvkit.find_image_issues("no/such/folder", blur_ratio=2.0)
    with pytest.raises(InvalidParameterError, match="checks must be a list of issue names"):
        cvkit.find_image_issues("no/such/folder", checks=["fuzzy"])
    with pytest.raises(InvalidParameterError, match="min_size must be a positive int"):
        cvkit.ImageDataset([]).audit(min_size=0)


def test_the_grid_titles_each_photo_with_its_reasons(photo_set, issues):
    import matplotlib

    matplotlib.use("Agg")
    from cvkit.evaluation.plots import plot_image_issues

    fig = plot_image_issues(issues, n=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and all(len(t.splitlines()) >= 2 for t in titles)
    assert "with image issues (the first 4 shown)" in fig._suptitle.get_text()
    assert plot_image_issues(issues.iloc[:0]).axes[0].texts[0].get_text() == "no image issues"
