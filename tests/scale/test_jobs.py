"""Resumable scale-out jobs, run in this process (``engine="local"``): the same parts and manifest
as on Ray, so the bookkeeping is tested here quickly and the cluster tests stay few."""
from __future__ import annotations

import json

import pytest

from tests.support.models import SAMPLE_DATA, trained_model_dir

pytest.importorskip("pyarrow", reason="scale-out jobs need the extra: pip install 'cvkit[ray]' (CI installs it)")


def test_csv_output_is_batch_score_csv_and_parts_are_removed(tmp_path):
    from cvkit.models import batch_score
    from cvkit.scale import score_images
    images = SAMPLE_DATA / "tags.tsv"
    batch_score(trained_model_dir(), images, tmp_path / "local.tsv", verbose=False)
    summary = score_images(trained_model_dir(), images, tmp_path / "scaled.tsv", engine="local", chunk_size=40,
                           verbose=False)
    assert (tmp_path / "scaled.tsv").read_text() == (tmp_path / "local.tsv").read_text()
    assert summary.n_images == 104 and summary.accuracy is not None and summary.n_reused == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.tsv", "scaled.tsv"]
    with pytest.raises(FileExistsError, match="scaled.tsv: exists"):
        score_images(trained_model_dir(), images, tmp_path / "scaled.tsv", engine="local", verbose=False)


def test_restart_reuses_parts_and_refuses_other_inputs(tmp_path):
    from cvkit.scale import score_images
    from cvkit.scale._jobs import MANIFEST_NAME
    out = tmp_path / "preds.parquet"
    bird = SAMPLE_DATA / "bird"
    first = score_images(trained_model_dir(), bird, out, engine="local", chunk_size=8, verbose=False)
    parts = sorted(out.glob("part-*.parquet"))
    assert first.n_images == len(list(bird.glob("*.jpg"))) and len(parts) >= 3
    # as if stopped half-way: the manifest is unfinished and one part is lost
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    (out / MANIFEST_NAME).write_text(json.dumps({**manifest, "complete": False}))
    parts[1].unlink()
    again = score_images(trained_model_dir(), bird, out, engine="local", chunk_size=8, verbose=False)
    assert again.n_reused == first.n_images - 8 and again.n_images == first.n_images
    assert again.label_counts == first.label_counts, "reused parts still count in the summary"
    with pytest.raises(FileExistsError, match="holds a finished job"):
        score_images(trained_model_dir(), bird, out, engine="local", chunk_size=8, verbose=False)
    (out / MANIFEST_NAME).write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(ValueError, match="other input images"):
        score_images(trained_model_dir(), SAMPLE_DATA / "fruit", out, engine="local", chunk_size=8, verbose=False)
    with pytest.raises(ValueError, match="another chunk size"):
        score_images(trained_model_dir(), bird, out, engine="local", chunk_size=16, verbose=False)
    redone = score_images(trained_model_dir(), bird, out, engine="local", chunk_size=16, overwrite=True,
                          verbose=False)
    assert redone.n_reused == 0 and len(list(out.glob("part-*.parquet"))) == -(-first.n_images // 16)


def test_refuses_a_folder_that_is_not_a_job_and_bad_arguments(tmp_path):
    from cvkit.scale import featurize_images, score_images
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(FileExistsError, match="not a cvkit job"):
        score_images(trained_model_dir(), SAMPLE_DATA / "bird", mine, engine="local", verbose=False)
    assert (mine / "notes.txt").read_text() == "the user's" and len(list(mine.iterdir())) == 1
    with pytest.raises(ValueError, match="engine must be one of 'local', 'ray', got 'spark'"):
        score_images(trained_model_dir(), SAMPLE_DATA, tmp_path / "x.csv", engine="spark")
    with pytest.raises(ValueError, match="workers must be a positive int"):
        score_images(trained_model_dir(), SAMPLE_DATA, tmp_path / "x.csv", workers=0)
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        score_images(trained_model_dir(), SAMPLE_DATA, tmp_path / "x.csv", engine="local", chunk_size=0)
    with pytest.raises(ValueError, match="features go to Parquet"):
        featurize_images("efficientnet_lite0", SAMPLE_DATA, tmp_path / "features.csv", engine="local")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_a_glob_names_the_images(tmp_path):
    from cvkit.scale._jobs import job_pairs
    rows, has_labels = job_pairs(str(SAMPLE_DATA / "*" / "c*.jpg"))
    paths = [p for p, _ in rows]
    assert len(rows) == len(paths) > 2 and paths == sorted(paths) and not has_labels
    assert all(p.endswith(".jpg") and "/c" in p for p in paths)
    with pytest.raises(FileNotFoundError, match="no image file matches"):
        job_pairs(str(tmp_path / "*.jpg"))


def test_run_options_are_checked_first_and_reach_the_workers_environment(tmp_path, monkeypatch):
    import os

    from cvkit.options import RunOptions
    from cvkit.scale import score_images
    from cvkit.scale._cluster import limit_threads
    with pytest.raises(ValueError, match="runtime must be one of 'auto', 'litert', 'keras', got 'gpu'"):
        score_images(trained_model_dir(), SAMPLE_DATA, tmp_path / "x.csv", engine="local", runtime="gpu")
    with pytest.raises(ValueError, match="int8.*LiteRT"):
        score_images(trained_model_dir(), SAMPLE_DATA, tmp_path / "x.csv", engine="local", runtime="keras",
                     precision="int8")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(os, "environ", dict(os.environ))  # what a Ray worker does to its own process
    env = limit_threads(2, RunOptions(runtime="keras"))
    assert env == {"OMP_NUM_THREADS": "2", "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1",
                   "CVKIT_RUNTIME": "keras", "CVKIT_PRECISION": "float32", "CVKIT_NUM_THREADS": "2"}
    assert RunOptions.from_env().runtime == "keras" and RunOptions.from_env().threads == 2
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        limit_threads(0)


def test_progress_is_verbose_now_and_inputs_must_be_files(tmp_path):
    from cvkit.scale import score_images
    from cvkit.scale._jobs import job_pairs
    with pytest.warns(FutureWarning, match="'progress' was renamed 'verbose'"):
        summary = score_images(trained_model_dir(), SAMPLE_DATA / "bird" / "crow.jpg", tmp_path / "one.csv",
                               engine="local", progress=False)
    assert summary.n_images == 1 and (tmp_path / "one.csv").is_file()
    with pytest.raises(TypeError, match="item 1: a scale-out job reads image files"):
        job_pairs([str(SAMPLE_DATA / "bird" / "crow.jpg"), b"bytes"])


def test_an_unreadable_manifest_is_named(tmp_path):
    from cvkit.scale import score_images
    from cvkit.scale._jobs import MANIFEST_NAME
    out = tmp_path / "preds.parquet"
    score_images(trained_model_dir(), SAMPLE_DATA / "fruit", out, engine="local", chunk_size=16, verbose=False)
    (out / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=f"{MANIFEST_NAME}: not a cvkit job manifest.*choose another output"):
        score_images(trained_model_dir(), SAMPLE_DATA / "fruit", out, engine="local", chunk_size=16, verbose=False)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file left"
