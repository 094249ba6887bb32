"""Batch scoring into CSV: one row per image, bad images reported not fatal, flat memory."""
from __future__ import annotations

import csv
import hashlib
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.models import SAMPLE_DATA, test_split, trained_model_dir


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
    """Eight sample photos in two sub-folders, plus a text file, a truncated JPEG and an empty PNG."""
    root = tmp_path_factory.mktemp("to_score")
    split = test_split()
    for i, path in enumerate(split.paths[:8]):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        shutil.copy(path, sub / Path(path).name)
    (root / "a" / "notes.jpg").write_text("not an image")
    good = Path(split.paths[0]).read_bytes()
    (root / "b" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "empty.png").write_bytes(b"")
    (root / "readme.txt").write_text("ignored: not an image extension")
    (root / ".hidden").mkdir()
    shutil.copy(split.paths[1], root / ".hidden" / "skip.jpg")
    return root


def read_rows(path, delimiter=","):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def test_folder_to_csv_one_row_per_image_with_errors(model, messy_folder, tmp_path):
    from cvkit.models import batch_score
    from cvkit.models._inference import score_sources
    out = tmp_path / "predictions.csv"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in messy_folder.rglob("*") if p.is_file()}
    with pytest.warns(UserWarning, match="3 of 11 image"):
        summary = batch_score(model, messy_folder, out, batch_size=4, verbose=False)
    rows = read_rows(out)
    assert summary.n_images == 11 == len(rows)
    assert summary.n_errors == 3
    assert list(rows[0]) == ["path", "label", "score", "score_bird", "score_flower", "score_fruit",
                             "score_vegetable", "novelty", "error"]
    bad = {Path(r["path"]).name: r for r in rows if r["error"]}
    assert set(bad) == {"notes.jpg", "truncated.jpg", "empty.png"}
    assert "not an image" in bad["notes.jpg"]["error"] and bad["notes.jpg"]["label"] == ""
    assert "empty" in bad["empty.png"]["error"]
    good = [r for r in rows if not r["error"]]
    assert not any(".hidden" in r["path"] for r in rows)
    expected = score_sources(model, [r["path"] for r in good])
    for row, answer in zip(good, expected):
        assert row["label"] == answer["label"]
        assert float(row["score"]) == pytest.approx(answer["score"], abs=1e-5)
        probs = [float(row[f"score_{c}"]) for c in model.classes_]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert float(row["novelty"]) == pytest.approx(answer["novelty"], rel=1e-5)
    assert all(r["novelty"] == "" for r in bad.values())  # no score for an unreadable image
    assert sum(summary.label_counts.values()) == 8
    assert not out.with_name(out.name + ".partial").exists()
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in messy_folder.rglob("*") if p.is_file()}
    assert after == before, "batch scoring must never modify the images"


def test_table_with_labels_gives_true_label_column_and_tsv(model, tmp_path):
    from cvkit.models import batch_score
    table = tmp_path / "to_score.csv"
    split = test_split()
    pairs = zip(split.paths[:5], split.image_labels[:5])
    lines = ["ImagePath,Label"] + [f"{p},{label}" for p, label in pairs]
    lines.append(f"{tmp_path / 'missing.jpg'},bird")
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "predictions.tsv"
    with pytest.warns(UserWarning, match="1 of 6"):
        summary = batch_score(model, table, out, verbose=False)
    rows = read_rows(out, delimiter="\t")
    assert [r["true_label"] for r in rows] == split.image_labels[:5] + ["bird"]
    assert rows[-1]["error"] == "file not found"
    assert summary.n_errors == 1 and summary.n_images == 6
    assert sum(r["label"] == r["true_label"] for r in rows[:5]) >= 3


def test_headerless_ml_net_table_relative_paths(model, tmp_path):
    from cvkit.models import batch_score
    summary = batch_score(model, SAMPLE_DATA / "tags.tsv", tmp_path / "p.csv", verbose=False)
    rows = read_rows(tmp_path / "p.csv")
    assert summary.n_images == len(rows) == len((SAMPLE_DATA / "tags.tsv").read_text().splitlines())
    assert summary.n_errors == 0
    accuracy = np.mean([r["label"] == r["true_label"] for r in rows])
    assert accuracy > 0.6  # includes the training images


def test_refuses_to_overwrite_the_input_table_or_write_an_image(model, tmp_path):
    from cvkit.models import batch_score
    table = tmp_path / "list.csv"
    table.write_text("path\n" + str(test_split().paths[0]) + "\n")
    original = table.read_bytes()
    with pytest.raises(ValueError, match="overwrite the input"):
        batch_score(model, table, table, verbose=False)
    with pytest.raises(ValueError, match="looks like an image"):
        batch_score(model, table, tmp_path / "out.jpg", verbose=False)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        batch_score(model, tmp_path / "nowhere", tmp_path / "out.csv", verbose=False)
    assert table.read_bytes() == original


def _write_images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(base).save(folder / "0.jpg", quality=80)
    data = (folder / "0.jpg").read_bytes()
    for i in range(1, n):
        (folder / f"{i}.jpg").write_bytes(data)


class MeanColourModel:
    """A small real classifier (softmax over mean colour at 32x32) with the loaded-model API.

    The memory test is about batch scoring's own bookkeeping, so it uses a model that costs
    nothing per image: thousands of images then take seconds rather than minutes.
    """

    classes_ = ["dark", "red", "green", "blue"]
    input_size_ = (32, 32)

    def predict_proba(self, images):
        mean = np.asarray(images, dtype=np.float32).mean(axis=(1, 2)) / 255.0
        logits = np.concatenate([1.0 - mean.mean(axis=1, keepdims=True), mean], axis=1) * 4
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def test_memory_stays_flat_as_the_image_count_grows(tmp_path):
    """Peak Python-side memory for 2000 images is about that for 200: nothing accumulates."""
    from cvkit.models import batch_score
    model = MeanColourModel()
    _write_images(tmp_path / "small", 200)
    _write_images(tmp_path / "large", 2000)
    batch_score(model, tmp_path / "small", tmp_path / "warmup.csv", batch_size=16, verbose=False)
    peaks = {}
    for name in ("small", "large"):
        tracemalloc.start()
        summary = batch_score(model, tmp_path / name, tmp_path / f"{name}.csv", batch_size=16,
                              verbose=False)
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert summary.n_errors == 0
    rows = read_rows(tmp_path / "large.csv")
    assert len(rows) == 2000 and {r["label"] for r in rows} == {rows[0]["label"]}
    # 2000 decoded 32x32 images kept in memory would be ~6 MB more; paths are ~0.3 MB
    assert peaks["large"] < peaks["small"] + 1_500_000, peaks


def test_command_line_entry(model, messy_folder, tmp_path, capsys):
    from cvkit.cli import main
    out = tmp_path / "cli.csv"
    with pytest.warns(UserWarning):
        code = main(["score", str(trained_model_dir()), str(messy_folder), "-o", str(out),
                     "--no-progress", "--batch-size", "5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "scored 8 of 11 images" in printed and "3 image(s) could not be read" in printed
    assert "(ran on litert float32)" in printed  # the default runtime, named in the summary
    assert len(read_rows(out)) == 11
    with pytest.warns(UserWarning):  # --runtime keras: the same rows, and the summary says so
        assert main(["score", str(trained_model_dir()), str(messy_folder), "-o", str(tmp_path / "k.csv"),
                     "--no-progress", "--runtime", "keras"]) == 0
    assert "(ran on keras float32)" in capsys.readouterr().out
    keras_rows, litert_rows = read_rows(tmp_path / "k.csv"), read_rows(out)
    assert [r["label"] for r in keras_rows] == [r["label"] for r in litert_rows]
    assert main(["score", str(trained_model_dir()), str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    assert "cvkit score: error:" in capsys.readouterr().err


def test_renamed_parameters_keep_working_with_a_future_warning(tmp_path):
    from cvkit.models import batch_score
    from cvkit.serving import batch_score as from_serving
    assert from_serving is batch_score  # notebooks import it from cvkit.serving
    _write_images(tmp_path / "images", 3)
    with pytest.warns(FutureWarning, match="'workers' was renamed 'decode_threads'"):
        old = batch_score(MeanColourModel(), tmp_path / "images", tmp_path / "old.csv", workers=1, verbose=False)
    with pytest.warns(FutureWarning, match="'progress' was renamed 'verbose'"):
        batch_score(MeanColourModel(), tmp_path / "images", tmp_path / "old2.csv", progress=False)
    new = batch_score(MeanColourModel(), tmp_path / "images", tmp_path / "new.csv", decode_threads=1, verbose=False)
    assert old.n_images == new.n_images == 3
    assert (tmp_path / "old.csv").read_text() == (tmp_path / "new.csv").read_text()
    with pytest.raises(ValueError, match="give decode_threads= only"):
        batch_score(MeanColourModel(), tmp_path / "images", tmp_path / "x.csv", decode_threads=2, workers=1)
    with pytest.raises(ValueError, match="decode_threads must be a positive int or None, got 0"):
        batch_score(MeanColourModel(), tmp_path / "images", tmp_path / "x.csv", decode_threads=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        batch_score(MeanColourModel(), tmp_path / "images", tmp_path / "x.csv", batch_size=0)
    assert not (tmp_path / "x.csv").exists()


def test_a_failed_run_leaves_the_old_csv_and_no_temporary_file(tmp_path):
    from cvkit.models import batch_score
    _write_images(tmp_path / "images", 40)
    out = tmp_path / "predictions.csv"
    out.write_text("an earlier run\n")

    class Failing(MeanColourModel):
        calls = 0

        def predict_proba(self, images):
            Failing.calls += 1
            if Failing.calls == 2:
                raise RuntimeError("out of memory")
            return super().predict_proba(images)

    with pytest.raises(RuntimeError, match="out of memory"):
        batch_score(Failing(), tmp_path / "images", out, batch_size=8, verbose=False)
    assert out.read_text() == "an earlier run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "predictions.csv"]


def test_any_image_input_scores_alike(model, tmp_path):
    """A glob, a split manifest (its test side) and a dataset give the rows of the same paths."""
    from cvkit.data import load_split
    from cvkit.models import batch_score
    from tests.support.models import trained_run_dir
    split = trained_run_dir() / "split.json"
    batch_score(model, split, tmp_path / "manifest.csv", verbose=False)
    batch_score(model, load_split(split)[1], tmp_path / "dataset.csv", verbose=False)
    assert (tmp_path / "manifest.csv").read_text() == (tmp_path / "dataset.csv").read_text()
    assert len(read_rows(tmp_path / "manifest.csv")) == len(test_split())
    batch_score(model, str(SAMPLE_DATA / "bird" / "c*.jpg"), tmp_path / "glob.csv", verbose=False)
    rows = read_rows(tmp_path / "glob.csv")
    assert [Path(r["path"]).name for r in rows] == sorted(p.name for p in (SAMPLE_DATA / "bird").glob("c*.jpg"))
    assert "true_label" not in rows[0]
