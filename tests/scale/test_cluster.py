"""Scale-out on Ray Data: a real local cluster of two worker nodes, no mocks.

One cluster (a head with no CPUs, two worker nodes with one CPU each, so each Ray worker runs on
its own node) serves the whole module. Rows must equal local ``batch_score``'s, bad images must
be error rows, both nodes must work, a killed job must resume without scoring an image twice, and
cluster-computed features must land in the feature cache.
"""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.models import SAMPLE_DATA, trained_model_dir

pytest.importorskip("ray", reason="the Ray tests need the extra: pip install 'cvkit[ray]' (CI installs it)")
pytestmark = pytest.mark.slow  # a real Ray cluster: about a minute

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(request):
    """A Ray cluster on loopback: head (0 CPUs) + two worker nodes (1 CPU each)."""
    from ray.cluster_utils import Cluster
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray_cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    request.addfinalizer(ray_cluster.shutdown)
    for _ in range(2):
        ray_cluster.add_node(num_cpus=1)
    ray_cluster.wait_for_nodes()
    return ray_cluster


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """sample_data's class folders copied, plus a truncated JPEG and a text file named .jpg."""
    root = tmp_path_factory.mktemp("archive") / "photos"
    shutil.copytree(SAMPLE_DATA, root, ignore=shutil.ignore_patterns("*.tsv", "*.md", "*.txt"))
    good = (SAMPLE_DATA / "bird" / "crow.jpg").read_bytes()
    (root / "bird" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "fruit" / "notes.jpg").write_text("not an image at all")
    return root


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def parquet_rows(folder):
    import pyarrow.parquet as pq
    return pq.read_table(folder).to_pylist()


def run_cli(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "cvkit.cli", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def resumed_job(cluster, photos, tmp_path_factory):
    """``cvkit score --engine ray`` on the cluster, killed once a few parts exist, then run again.

    Returns ``(output folder, parts written before the kill, the second run's stdout)``.
    """
    out = tmp_path_factory.mktemp("resumed") / "preds.parquet"
    args = ["score", trained_model_dir(), photos, "-o", out, "--engine", "ray", "--address", cluster.address,
            "--workers", "2", "--chunk-size", "4", "--no-progress"]
    first = run_cli(*args, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, f"the first run ended early: {first.communicate()[1][-2000:]}"
    os.killpg(first.pid, signal.SIGKILL)  # the driver and anything it started, mid-job
    first.communicate(timeout=30)
    written = len(list(out.glob("part-*.parquet")))
    second = run_cli(*args)
    stdout, stderr = second.communicate(timeout=240)
    assert second.returncode == 0, stderr[-3000:]
    return out, written, stdout


def test_two_nodes_score_like_batch_score_with_error_rows(resumed_job, photos, tmp_path):
    from cvkit.models import batch_score
    from cvkit.scale._jobs import read_part_info
    out, _, stdout = resumed_job
    local = tmp_path / "local.csv"
    with pytest.warns(UserWarning, match="2 of 106"):
        batch_score(trained_model_dir(), photos, local, verbose=False)
    expected = read_csv(local)
    rows = parquet_rows(out)
    assert [r["path"] for r in rows] == [r["path"] for r in expected], "parts read back in input order"
    assert list(rows[0]) == list(expected[0]), "same columns as batch_score"
    for got, want in zip(rows, expected):
        assert got["label"] == want["label"] and got["true_label"] == want["true_label"]
        assert got["error"] == want["error"]
        for column in [c for c in want if c.startswith("score")]:
            if want[column]:
                assert got[column] == pytest.approx(float(want[column]), abs=1e-5)
            else:
                assert got[column] is None
    bad = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    assert set(bad) == {"truncated.jpg", "notes.jpg"} and all(bad.values())
    assert "scored 104 of 106 images" in stdout and "2 image(s) could not be read" in stdout

    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 27  # 106 images in chunks of 4
    nodes = {read_part_info(p)["node"] for p in parts}
    assert len(nodes) == 2, "both worker nodes scored chunks"


def test_a_ray_job_applies_the_folders_rule_like_batch_score(cluster, tmp_path):
    from cvkit.models import batch_score, save_thresholds, save_unknown_threshold
    from cvkit.scale import score_images
    folder = shutil.copytree(trained_model_dir(), tmp_path / "model")
    save_thresholds(folder, 0.998)  # about half of the bird photos score below it
    save_unknown_threshold(folder, keep=0.95)
    images = sorted(str(p) for p in (SAMPLE_DATA / "bird").glob("*.jpg"))
    rng = np.random.default_rng(0)
    for i in range(3):  # images of no class: answered "unknown"
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(tmp_path / f"noise{i}.png")
        images.append(str(tmp_path / f"noise{i}.png"))
    batch_score(folder, images, tmp_path / "local.csv", verbose=False)
    summary = score_images(folder, images, tmp_path / "ray.csv", address=cluster.address, workers=2, chunk_size=8,
                           verbose=False)
    local, ray = read_csv(tmp_path / "local.csv"), read_csv(tmp_path / "ray.csv")
    assert [r["label"] for r in ray] == [r["label"] for r in local]
    np.testing.assert_allclose([float(r["novelty"]) for r in ray], [float(r["novelty"]) for r in local], rtol=1e-5)
    assert 0 < sum(r["label"] == "no decision" for r in ray) < len(ray), "some answers withheld, not all"
    assert [r["label"] for r in ray[-3:]] == ["unknown"] * 3
    assert "decision rule: threshold 0.998, unknown above novelty" in str(summary)


def test_killed_job_resumes_without_duplicates(resumed_job, cluster):
    out, written, stdout = resumed_job
    assert 3 <= written < 27, f"the job should be stopped half-way, {written} of 27 parts were written"
    reused = int(stdout.split("reused ")[1].split()[0])
    assert reused >= 4 * written - 2, stdout  # every part the killed run finished was kept
    rows = parquet_rows(out)
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == 106, "no image twice, none missing"
    assert sum(bool(r["error"]) for r in rows) == 2
    assert not list(out.glob(".part-*")), "no temporary part left behind"

    again = run_cli("score", trained_model_dir(), SAMPLE_DATA / "bird", "-o", out, "--engine", "ray",
                    "--address", cluster.address, "--no-progress")
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 2 and "finished job" in stderr


def test_cluster_features_load_into_the_cache(cluster, photos, tmp_path):
    import pyarrow.parquet as pq

    from cvkit.features import ImageFeaturizer
    from cvkit.features._tables import cache_features, features_table, read_features
    from cvkit.scale import featurize_images
    subset = sorted((photos / "flower").glob("*.jpg"))[:12] + [photos / "fruit" / "notes.jpg"]
    out = tmp_path / "features.parquet"
    with pytest.warns(UserWarning, match="1 of 13"):
        summary = featurize_images("efficientnet_lite0", [str(p) for p in subset], out, address=cluster.address,
                                   workers=1, chunk_size=4, verbose=False)
    assert summary.n_images == 13 and summary.n_errors == 1 and sum(summary.nodes.values()) == 13
    table = read_features(out)
    assert table["features"].shape == (13, 1280) and table["errors"][-1] and table["keys"][-1] is None
    assert np.isnan(table["features"][-1]).all() and not np.isnan(table["features"][:-1]).any()

    # computed on the cluster = computed here (a private cache, so nothing is looked up)
    here = ImageFeaturizer(cache_dir=tmp_path / "fresh", verbose=False).transform([str(p) for p in subset[:-1]])
    np.testing.assert_allclose(table["features"][:-1], here, atol=1e-5)

    # a copy with one vector marked: after loading it, featurizing is a lookup that returns the mark
    marked = table["features"].copy()
    marked[0] = 7.0
    pq.write_table(features_table(table["paths"], table["keys"], marked, table["errors"], table["identity"]),
                   tmp_path / "marked.parquet")
    cache_dir = tmp_path / "cache"
    assert cache_features(tmp_path / "marked.parquet", cache_dir=cache_dir) == 12
    found = ImageFeaturizer(cache_dir=cache_dir, verbose=False).transform([str(p) for p in subset[:3]])
    assert (found[0] == 7.0).all(), "the first image's features came from the loaded table"
    np.testing.assert_allclose(found[1:], table["features"][1:3], atol=1e-5)


def test_without_ray_the_error_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "import cvkit.scale, cvkit.cli._score\n"
            "assert 'ray' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "from cvkit.cli._main import main\n"
            f"sys.exit(main(['score', 'model', 'sample_data', '-o', r'{tmp_path / 'x.csv'}', '--engine', 'ray']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    assert "pip install 'cvkit[ray]'" in done.stderr and "Traceback" not in done.stderr
