"""``cvkit audit``: label mistakes, duplicates and leaks found from the shell, and clear errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import cvkit
from cvkit.cli._audit import TABLE_COLUMNS
from cvkit.cli._main import COMMANDS, main

pytestmark = pytest.mark.slow

PER_CLASS = 7
FLIPPED = "bird/crow.jpg"  # filed as a flower in the test tree
COPIED = "fruit/lemon.jpg"  # filed twice in the test tree


@pytest.fixture(scope="module")
def tree(sample_dir, tmp_path_factory) -> Path:
    """7 photos per class, one bird filed under flower, and an exact copy of a lemon."""
    root = tmp_path_factory.mktemp("audit") / "data"
    for folder in sorted(p for p in sample_dir.iterdir() if p.is_dir()):
        (root / folder.name).mkdir(parents=True)
        photos = [p for p in sorted(folder.glob("*.jpg")) if p.name != Path(FLIPPED).name]
        names = {p.name for p in photos[:PER_CLASS]} | ({Path(COPIED).name} if folder.name == "fruit" else set())
        for name in sorted(names):
            shutil.copy2(folder / name, root / folder.name / name)
    shutil.copy2(sample_dir / FLIPPED, root / "flower" / "crow.jpg")
    shutil.copy2(sample_dir / COPIED, root / "fruit" / "lemon_again.jpg")
    return root


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


def test_audit_is_a_registered_command():
    assert "audit" in [c.name for c in COMMANDS]


def test_audit_finds_the_flipped_label_and_the_duplicate(tree, tmp_path, capsys):
    out = tmp_path / "audit.csv"
    assert main(["audit", str(tree), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"auditing {len(list(tree.rglob('*.jpg')))} images in 4 classes" in printed
    assert "duplicate groups: 1 (2 images; pairs: 1 exact)" in printed
    assert "leaks: not checked" in printed
    assert f"table written to {out}" in printed
    table = _table(out)
    assert list(table.columns) == TABLE_COLUMNS
    labels = table[table.problem.str.startswith("label")]
    crow = labels[labels.path.str.endswith("flower/crow.jpg")]
    assert len(crow) == 1 and crow.label.item() == "flower" and crow.suggested_label.item() == "bird"
    assert "flower -> bird" in printed
    dup = table[table.problem == "duplicate"]
    assert len(dup) == 1 and dup.kind.item() == "exact" and float(dup.similarity.item()) == pytest.approx(1.0)
    assert {Path(dup.path.item()).name, Path(dup.other_path.item()).name} == {"lemon.jpg", "lemon_again.jpg"}
    assert (table.problem != "leak").all()


def test_audit_of_a_split_reports_copies_across_the_sides_as_leaks(tree, tmp_path, capsys):
    ds = cvkit.ImageDataset.from_directory(tree)
    copy = next(i for i, p in enumerate(ds.paths) if p.endswith("lemon_again.jpg"))
    original = next(i for i, p in enumerate(ds.paths) if p.endswith("fruit/lemon.jpg"))
    rest = [i for i in range(len(ds)) if i not in (copy, original)]
    train, test = ds.subset([original] + rest[::2]), ds.subset([copy] + rest[1::2])
    manifest = cvkit.save_split(tmp_path / "split.json", train, test)
    out = tmp_path / "audit.tsv"
    assert main(["audit", str(manifest), "-o", str(out), "--show", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"({len(train)} training, {len(test)} test)" in printed
    assert "leaks against the test side: 1 pair(s) (1 exact)" in printed
    assert "duplicate groups: 0" in printed
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    leak = table[table.problem == "leak"]
    assert len(leak) == 1 and {Path(p).name for p in (leak.path.item(), leak.other_path.item())} == \
        {"lemon.jpg", "lemon_again.jpg"}


def test_audit_against_a_test_folder(tree, sample_dir, tmp_path, capsys):
    held = tmp_path / "held"
    (held / "fruit").mkdir(parents=True)
    shutil.copy2(sample_dir / COPIED, held / "fruit" / "lemon_test.jpg")
    shutil.copy2(sample_dir / "fruit" / "banana.jpg", held / "fruit" / "banana.jpg")
    out = tmp_path / "audit.csv"
    assert main(["audit", str(tree), "--test", str(held), "-o", str(out), "--cv", "3"]) == 0
    printed = capsys.readouterr().out
    assert "against 2 test images" in printed and "leaks against 2 test images: 2 pair(s) (2 exact)" in printed
    leaks = _table(out).query("problem == 'leak'")
    assert sorted(Path(p).name for p in leaks.other_path) == ["lemon_test.jpg", "lemon_test.jpg"]
    assert sorted(Path(p).name for p in leaks.path) == ["lemon.jpg", "lemon_again.jpg"]


def test_audit_never_overwrites_without_asking(tree, tmp_path, capsys):
    out = tmp_path / "audit.csv"
    out.write_text("precious\n")
    assert main(["audit", str(tree), "-o", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert main(["audit", str(tree), "-o", str(out), "--overwrite", "--show", "0"]) == 0
    assert list(_table(out).columns) == TABLE_COLUMNS


def test_audit_input_errors_exit_2(tree, tmp_path, capsys):
    ds = cvkit.ImageDataset.from_directory(tree)
    train, test = ds.split(test_size=0.5, random_state=0)
    manifest = cvkit.save_split(tmp_path / "split.json", train, test)
    assert main(["audit", str(manifest), "--test", str(tree), "-o", str(tmp_path / "a.csv")]) == 2
    assert "holds its own test side" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "nowhere"), "-o", str(tmp_path / "a.csv")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["audit", str(tree), "-o", str(tmp_path / "a.csv"), "--cv", "99"]) == 2
    assert "fewer images than cv=99" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()


def test_audit_lists_image_issues_with_score_and_reason(tree, sample_dir, tmp_path, capsys):
    """A darkened photo and an unreadable file are rows of their own; --no-image-checks leaves them out."""
    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(tree, data)
    photo = Image.open(sample_dir / "bird" / "owl.jpg").convert("RGB")
    photo.point(lambda v: int(v * 0.1)).save(data / "bird" / "dark_owl.jpg", quality=90)
    (data / "flower" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "audit.csv"
    with pytest.warns(cvkit.BadImageWarning):
        assert main(["audit", str(data), "-o", str(out), "--cv", "3"]) == 0
    printed = capsys.readouterr().out
    table = _table(out)
    assert list(table.columns) == TABLE_COLUMNS
    dark = table[table.problem == "dark"]
    assert dark.path.str.endswith("dark_owl.jpg").tolist() == [True]
    assert dark.reason.item().startswith("dark: its brightest 1% of pixels reach")
    assert float(dark.score.item()) < 40 and dark.label.item() == "bird"
    assert "image issues: " in printed and "dark_owl.jpg  dark: " in printed
    broken = table[table.problem == "unreadable"]
    assert broken.path.str.endswith("broken.jpg").tolist() == [True] and "not an image" in broken.reason.item()
    with pytest.warns(cvkit.BadImageWarning):
        assert main(["audit", str(data), "-o", str(out), "--cv", "3", "--overwrite", "--no-image-checks"]) == 0
    assert "dark" not in set(_table(out).problem)
