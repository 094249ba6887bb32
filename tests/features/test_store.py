"""The feature cache's management: cache_info counts and sizes, clear_cache (all, or unused for N
days) touching only cvkit's own files, LRU eviction under a size limit, damaged files reported,
old-format files migrated in place with their features kept, two processes on one file, and the
``cvkit cache`` command.

Every cache lives in a pytest temp folder. A tiny Keras backbone stands in where the backbone does
not matter (features of real sample photos, computed in milliseconds); FeatureCache is used
directly, with random vectors, where no images are needed.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from cvkit.cli import main
from cvkit.features import _store as store
from cvkit.features._admin import CACHE_FILE_NAME, cache_info, clear_cache, is_cache_file_name
from cvkit.features._featurizer import ImageFeaturizer
from cvkit.features._store import FeatureCache, cache_max_bytes

DAY = 86400.0


def _name(tag: str) -> str:
    """A file name exactly like the ones ImageFeaturizer creates."""
    return f"features-v1-{tag}-224px-{hashlib.sha1(tag.encode()).hexdigest()[:16]}.sqlite"


def _vec(key: str, dim: int) -> np.ndarray:
    """A vector determined by its key, so any process can check what it reads."""
    seed = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def _fill(path: Path, keys, dim: int = 1280, **kwargs) -> None:
    with FeatureCache(path, dim, **kwargs) as cache:
        cache.put({k: _vec(k, dim) for k in keys})


def _snapshot(folder: Path) -> dict[str, str]:
    """Name -> SHA-1 of every file under ``folder`` (symlinks by their target name)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = os.fspath(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "link->" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def _disk_bytes(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal", "-shm") if os.path.exists(f"{path}{s}"))


class FakeClock:
    """Stands in for the ``time`` module inside cvkit.features._store, to age entries without waiting."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def tiny_backbone():
    """Factory of tiny seeded Keras feature models (RGB 32x32 in, ``dim`` features out)."""
    import keras
    made = {}

    def make(dim: int = 64):
        if dim not in made:
            inputs = keras.Input((32, 32, 3))
            x = keras.layers.Rescaling(1 / 255)(inputs)
            x = keras.layers.Conv2D(8, 3, kernel_initializer=keras.initializers.GlorotUniform(seed=1))(x)
            x = keras.layers.GlobalAveragePooling2D()(x)
            x = keras.layers.Dense(dim, activation="tanh",
                                   kernel_initializer=keras.initializers.GlorotUniform(seed=2))(x)
            made[dim] = keras.Model(inputs, x, name=f"tiny{dim}")
        return made[dim]
    return make


@pytest.fixture(scope="module")
def photos(sample_dir):
    """12 real sample photos, 3 per class."""
    return [str(p) for folder in sorted(d for d in sample_dir.iterdir() if d.is_dir())
            for p in sorted(folder.glob("*.jpg"))[:3]]


class CountingPredict:
    """Wraps a featurizer's traced function and counts the images it is given."""

    def __init__(self, featurizer):
        self.inner = featurizer._predict_fn()
        self.images = 0
        featurizer._predict = self

    def __call__(self, batch):
        self.images += len(batch)
        return self.inner(batch)


# ---------------------------------------------------------------------- info
def test_info_counts_what_was_featurized_and_changes_nothing(tiny_backbone, photos, tmp_path):
    folder = tmp_path / "cache"
    a = ImageFeaturizer(tiny_backbone(64), cache_dir=folder, verbose=False)
    a.transform(photos[:5])
    b = ImageFeaturizer(tiny_backbone(96), cache_dir=folder, verbose=False)
    b.transform(photos)
    assert is_cache_file_name(a.cache_path_.name) and CACHE_FILE_NAME.fullmatch(b.cache_path_.name)

    before = _snapshot(folder)
    info = cache_info(folder)
    assert _snapshot(folder) == before, "info must not create, change or remove any file"
    assert info.exists and info.folder == folder and not info.problems
    by_name = {f.name: f for f in info.files}
    assert set(by_name) == {a.cache_path_.name, b.cache_path_.name}
    assert by_name[a.cache_path_.name].entries == 5 and by_name[b.cache_path_.name].entries == len(photos)
    assert info.total_entries == 5 + len(photos)
    for f in info.files:
        assert f.bytes == _disk_bytes(f.path) > 0
        assert abs(f.modified.timestamp() - time.time()) < 120
        assert f.last_used is not None and abs(f.last_used.timestamp() - time.time()) < 120
    assert info.total_bytes == sum(f.bytes for f in info.files)
    text = str(info)
    assert repr(info) == text and os.fspath(folder) in text and a.cache_path_.name in text
    assert f"total: {5 + len(photos)} images" in text and "in 2 files" in text
    assert json.loads(json.dumps(info.to_dict()))["total_entries"] == 5 + len(photos)

    # Featurizing more photos shows up; a photo seen before does not add an entry.
    a.transform(photos[3:8])
    assert {f.name: f.entries for f in cache_info(folder).files}[a.cache_path_.name] == 8


def test_info_on_the_default_folder_before_any_featurizing(tmp_path, monkeypatch):
    monkeypatch.setenv("CVKIT_CACHE_DIR", str(tmp_path / "not-yet"))
    monkeypatch.setenv("CVKIT_CACHE_MAX_MB", "256")
    info = cache_info()
    assert not info.exists and info.files == [] and info.total_bytes == 0
    assert info.max_bytes_per_file == 256 * 2**20
    assert "does not exist yet" in str(info) and "limit 256 MB per file" in str(info)
    assert clear_cache() == 0 and not (tmp_path / "not-yet").exists()
    with pytest.raises(FileNotFoundError, match="no-such: no such cache folder"):
        cache_info(tmp_path / "no-such")  # a folder named explicitly must exist
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        clear_cache(tmp_path / "file")


# ---------------------------------------------------------------------- clear
def test_clear_frees_the_bytes_and_leaves_foreign_files_alone(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    _fill(folder / _name("a"), [f"a{i}" for i in range(30)])
    _fill(folder / _name("b"), [f"b{i}" for i in range(10)], dim=96)
    # What else a shared folder may hold, some of it named almost like a cache file.
    (folder / "notes.txt").write_text("my notes")
    (folder / "features-v1-mine.sqlite").write_bytes(b"someone else's file")
    (folder / (_name("c") + ".bak")).write_bytes(b"a backup")
    foreign_db = sqlite3.connect(folder / "other-tool.sqlite")
    foreign_db.execute("CREATE TABLE features (key TEXT, vec BLOB)")
    foreign_db.commit()
    foreign_db.close()
    (folder / _name("d")).mkdir()  # a folder with a cache file's name, and a file inside it
    (folder / _name("d") / _name("e")).write_bytes(b"inside a sub-folder")
    outside = tmp_path / "precious.txt"
    outside.write_text("not in the cache folder")
    (folder / _name("f")).symlink_to(outside)  # a link with a cache file's name: not followed
    foreign = {k: v for k, v in _snapshot(folder).items() if k not in (_name("a"), _name("b"))}

    # Another process still has one file open while the cache is cleared.
    still_open = FeatureCache(folder / _name("a"), 1280)
    info = cache_info(folder)
    assert sorted(f.name for f in info.files) == sorted([_name("a"), _name("b")]) and not info.problems
    freed = clear_cache(folder)
    assert freed == info.total_bytes > 30 * 5120
    assert _snapshot(folder) == foreign, "only cvkit's cache files are removed"
    assert outside.read_text() == "not in the cache folder"
    assert cache_info(folder).files == [] and clear_cache(folder) == 0
    # The open connection keeps working (its writes are just lost); a new cache starts empty.
    still_open.put({"late": _vec("late", 1280)})
    assert "late" in still_open.get(["late"])
    still_open.close()
    with FeatureCache(folder / _name("a"), 1280) as fresh:
        assert len(fresh) == 0
    assert _snapshot(folder).keys() - foreign.keys() == {_name("a")}


def test_clear_older_than_removes_only_entries_unused_that_long(tmp_path, monkeypatch):
    path = tmp_path / _name("aging")
    now = time.time()
    clock = FakeClock(now - 40 * DAY)
    monkeypatch.setattr(store, "time", clock)
    _fill(path, [f"old{i}" for i in range(60)])           # stored 40 days ago, never read since
    _fill(path, [f"read{i}" for i in range(20)])          # stored 40 days ago ...
    clock.now = now - 10 * DAY
    with FeatureCache(path, 1280) as cache:               # ... and read 10 days ago
        assert len(cache.get([f"read{i}" for i in range(20)])) == 20
    clock.now = now
    _fill(path, [f"new{i}" for i in range(20)])           # stored today
    monkeypatch.setattr(store, "time", time)

    before = _disk_bytes(path)
    freed = clear_cache(tmp_path, older_than_days=30)
    assert freed > 60 * 5120, "the removed vectors' space is given back to the file system"
    assert _disk_bytes(path) == before - freed
    with FeatureCache(path, 1280) as cache:
        assert len(cache) == 40
        kept = cache.get([f"read{i}" for i in range(20)] + [f"new{i}" for i in range(20)] + ["old0", "old59"])
        assert sorted(kept) == sorted([f"read{i}" for i in range(20)] + [f"new{i}" for i in range(20)])
        assert all(np.array_equal(v, _vec(k, 1280)) for k, v in kept.items())
    # That lookup just marked them used: none is older than 5 days now.
    assert clear_cache(tmp_path, older_than_days=5) == 0
    assert cache_info(tmp_path).total_entries == 40
    with pytest.raises(ValueError, match="older_than_days must be a number >= 0 or None, got -1"):
        clear_cache(tmp_path, older_than_days=-1)


# ---------------------------------------------------------------------- size limit
def test_lru_eviction_keeps_the_size_under_the_limit_and_the_recent_keys(tmp_path):
    limit = 2**20
    batch = 10
    path = tmp_path / _name("lru")
    cache = FeatureCache(path, 1280, max_bytes=limit)
    hot = [f"hot{i}" for i in range(10)]
    cache.put({k: _vec(k, 1280) for k in hot})
    order = []
    for b in range(50):  # 510 vectors of 5 KB: about 3 MB written into a 1 MB cache
        keys = [f"k{b:02d}-{i}" for i in range(batch)]
        order.extend(keys)
        cache.put({k: _vec(k, 1280) for k in keys})
        assert len(cache.get(hot)) == len(hot), "keys read after every put are never evicted"
        assert cache.size_bytes() <= limit + batch * 6000, "at most one put's worth over the limit"
    kept = cache.get(order)
    assert 100 < len(kept) < 0.5 * len(order), "evicted, but not far below the limit"
    # Least recently used first: what is left is the newest stretch of the keys stored.
    first = min(order.index(k) for k in kept)
    assert sorted(kept) == sorted(order[first:])
    assert all(np.array_equal(v, _vec(k, 1280)) for k, v in kept.items())
    cache.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert os.path.getsize(path) <= limit * 1.15, "the file itself stays near the limit"
    # shrink_to evicts on demand, oldest first.
    with FeatureCache(path, 1280) as cache:
        n_before = len(cache)
        cache.get(hot)  # read last: now the most recently used
        assert cache.shrink_to(limit // 2) > 0
        assert limit // 2 - 3 * 6000 < cache.size_bytes() <= limit // 2 and len(cache) < n_before
        assert len(cache.get(hot)) == len(hot)
        assert order[first] not in cache.get([order[first]])


def test_featurizer_honours_the_size_limit_from_env_or_parameter(tiny_backbone, photos, tmp_path, monkeypatch):
    model = tiny_backbone(4096)  # 16 KB per vector: a few photos fill a 0.1 MB cache
    monkeypatch.setenv("CVKIT_CACHE_MAX_MB", "0.1")
    fz = ImageFeaturizer(model, batch_size=2, cache_dir=tmp_path / "env", verbose=False)
    X = fz.transform(photos)
    assert fz.cache_max_bytes_ == int(0.1 * 2**20)
    with FeatureCache(fz.cache_path_, 4096) as cache:
        assert 2 <= len(cache) < len(photos) and cache.size_bytes() <= 0.1 * 2**20 + 2 * 17000
        newest = cache.get([hashlib.sha1(open(p, "rb").read()).hexdigest() for p in photos[-2:]])
        assert len(newest) == 2  # the last batch stored survives
    assert np.isfinite(X).all()

    # The parameter wins over the environment; 0 means no limit.
    unlimited = ImageFeaturizer(model, cache_dir=tmp_path / "param", verbose=False, cache_max_mb=0)
    assert np.allclose(unlimited.transform(photos), X, atol=1e-6)
    assert unlimited.cache_max_bytes_ is None
    assert cache_info(tmp_path / "param").total_entries == len(photos)
    assert cache_max_bytes(2) == 2 * 2**20
    monkeypatch.delenv("CVKIT_CACHE_MAX_MB")
    assert cache_max_bytes() == store.DEFAULT_CACHE_MAX_MB * 2**20
    monkeypatch.setenv("CVKIT_CACHE_MAX_MB", "lots")
    with pytest.raises(ValueError, match="CVKIT_CACHE_MAX_MB must be a number >= 0, got 'lots'"):
        ImageFeaturizer(model, cache_dir=tmp_path, verbose=False).fit()
    with pytest.raises(ValueError, match="cache_max_mb must be a number >= 0 or None, got -5"):
        ImageFeaturizer(model, cache_dir=tmp_path, verbose=False, cache_max_mb=-5).fit()


# ---------------------------------------------------------------------- damaged files
def test_damaged_files_are_reported_and_never_crash(tiny_backbone, photos, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    _fill(folder / _name("good"), [f"g{i}" for i in range(7)])
    (folder / _name("garbage")).write_bytes(b"\x89PNG not a database at all" * 40)
    (folder / _name("empty")).write_bytes(b"")
    with sqlite3.connect(folder / _name("alien")) as db:
        db.execute("CREATE TABLE something (x)")
    db.close()
    _fill(folder / _name("cut"), [f"c{i}" for i in range(200)])
    data = (folder / _name("cut")).read_bytes()
    (folder / _name("cut")).write_bytes(data[: len(data) // 3])  # a disk that filled up, a copy cut short
    (folder / (_name("gone") + "-wal")).write_bytes(b"leftover")
    (folder / "notes.txt").write_text("keep me")

    info = cache_info(folder)
    assert [f.name for f in info.files] == [_name("good")] and info.files[0].entries == 7
    reasons = {p.name: p.reason for p in info.problems}
    assert reasons[_name("garbage")] == "not a SQLite database"
    assert reasons[_name("empty")].startswith("empty file")
    assert "not a cvkit feature cache" in reasons[_name("alien")]
    assert "damaged SQLite file" in reasons[_name("cut")] and "malformed" in reasons[_name("cut")]
    assert "leftover -wal" in reasons[_name("gone")]
    text = str(info)
    assert "unusable files" in text and f"{_name('garbage')} (1.0 KB): not a SQLite database" in text

    # clear --older-than keeps healthy fresh entries but removes what cannot be used anyway.
    freed = clear_cache(folder, older_than_days=30)
    assert freed == sum(p.bytes for p in info.problems)
    assert sorted(os.listdir(folder)) == sorted([_name("good"), "notes.txt"])
    assert cache_info(folder).total_entries == 7

    # A featurizer whose cache file is damaged still returns every feature, with one clear warning.
    fz = ImageFeaturizer(tiny_backbone(64), cache_dir=folder, verbose=False).fit()
    fz.cache_path_.write_bytes(b"junk" * 100)
    with pytest.warns(RuntimeWarning, match="feature cache disabled.*file is not a database.*cvkit cache clear"):
        X = fz.transform(photos[:4])
    reference = ImageFeaturizer(tiny_backbone(64), cache=False, verbose=False).transform(photos[:4])
    assert np.array_equal(X, reference)
    assert "not a SQLite database" in str(cache_info(folder))


def test_a_cache_failing_mid_run_warns_and_the_run_completes(tiny_backbone, photos, tmp_path, monkeypatch):
    fz = ImageFeaturizer(tiny_backbone(64), batch_size=2, cache_dir=tmp_path, verbose=False)
    expected = fz.transform(photos[:4])

    def broken(self, *args):
        raise sqlite3.DatabaseError("database disk image is malformed")
    monkeypatch.setattr(FeatureCache, "get", broken)
    monkeypatch.setattr(FeatureCache, "put", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = fz.transform(photos[:6])
    ours = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(ours) == 1 and "cannot read" in ours[0] and "malformed" in ours[0]
    assert np.array_equal(X[:4], expected) and np.isfinite(X).all()


# ---------------------------------------------------------------------- migration
def _old_format(path: Path, items: dict[str, np.ndarray]) -> None:
    """A cache file as cvkit wrote it before last-used times: one table, no user_version."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
    db.executemany("INSERT OR REPLACE INTO features (key, vec) VALUES (?, ?)",
                   [(k, np.ascontiguousarray(v, dtype="<f4").tobytes()) for k, v in items.items()])
    db.commit()
    db.close()


def test_old_format_files_are_migrated_in_place_and_keep_their_features(tiny_backbone, photos, tmp_path):
    model = tiny_backbone(64)
    reference = ImageFeaturizer(model, cache=False, verbose=False).transform(photos)
    fz = ImageFeaturizer(model, cache_dir=tmp_path, verbose=False).fit()
    keys = [hashlib.sha1(open(p, "rb").read()).hexdigest() for p in photos]
    _old_format(fz.cache_path_, dict(zip(keys[:8], reference[:8])))
    # A second old file nobody opens again, last written 60 days ago.
    stale = tmp_path / _name("stale")
    _old_format(stale, {f"s{i}": _vec(f"s{i}", 1280) for i in range(50)})
    for p in (fz.cache_path_, stale):
        os.utime(p, (time.time() - 60 * DAY,) * 2)

    info = cache_info(tmp_path)  # read-only: reports old files without migrating them
    assert {f.name: (f.entries, f.last_used) for f in info.files} == {fz.cache_path_.name: (8, None),
                                                                      stale.name: (50, None)}
    counter = CountingPredict(fz)
    X = fz.transform(photos)
    assert counter.images == len(photos) - 8, "the 8 features of the old file are hits"
    assert np.array_equal(X[:8], reference[:8]) and np.allclose(X, reference, atol=1e-6)
    with sqlite3.connect(fz.cache_path_) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM last_used").fetchone()[0] == len(photos)
    db.close()

    # The migrated entries were just used; the stale file's, migrated by clear, date from its mtime.
    stale_bytes = _disk_bytes(stale)
    freed = clear_cache(tmp_path, older_than_days=30)
    assert stale_bytes - _disk_bytes(stale) == freed > 50 * 5120
    assert {f.name: f.entries for f in cache_info(tmp_path).files} == {fz.cache_path_.name: len(photos),
                                                                        stale.name: 0}
    counter.images = 0
    assert np.array_equal(fz.transform(photos), X) and counter.images == 0


def test_two_processes_share_one_old_format_file_with_a_size_limit(tmp_path):
    path = tmp_path / _name("shared")
    _old_format(path, {f"seed{i}": _vec(f"seed{i}", 1280) for i in range(20)})
    script = textwrap.dedent(f"""
        import hashlib, sys
        import numpy as np
        from cvkit.features._store import FeatureCache
        def vec(key):
            seed = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
            return np.random.default_rng(seed).standard_normal(1280).astype(np.float32)
        tag = sys.argv[1]
        cache = FeatureCache({os.fspath(path)!r}, 1280, max_bytes=600_000)
        for b in range(40):
            keys = [f"{{tag}}-{{b}}-{{i}}" for i in range(5)]
            cache.put({{k: vec(k) for k in keys}})
            got = cache.get(keys + [f"seed{{i}}" for i in range(20)])
            assert all(np.array_equal(v, vec(k)) for k, v in got.items()), "wrong vector read"
            assert all(k in got for k in keys), "a vector just stored is missing"
        cache.close()
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": os.fspath(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for tag in ("p1", "p2")]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == "ok", err
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        n_features = db.execute("SELECT COUNT(*) FROM features").fetchone()[0]
        assert db.execute("SELECT COUNT(*) FROM last_used").fetchone()[0] == n_features
    db.close()
    with FeatureCache(path, 1280) as cache:
        assert 40 < len(cache) < 220 and cache.size_bytes() <= 600_000 + 2 * 5 * 6000


# ---------------------------------------------------------------------- cvkit cache
def test_cli_info_and_clear(tmp_path, capsys):
    folder = tmp_path / "cache"
    folder.mkdir()
    _fill(folder / _name("one"), [f"k{i}" for i in range(12)])
    (folder / "notes.txt").write_text("keep")

    assert main(["cache", "info", "--cache-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert _name("one") in out and "total: 12 images" in out
    assert main(["cache", "--cache-dir", str(folder)]) == 0  # info is the default action
    assert "total: 12 images" in capsys.readouterr().out
    assert main(["cache", "info", "--json", "--cache-dir", str(folder)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_entries"] == 12 and report["files"][0]["name"] == _name("one")

    assert main(["cache", "clear", "--older-than", "30", "--cache-dir", str(folder)]) == 0
    assert "cleared features unused for 30 days: freed 0 B" in capsys.readouterr().out
    size = cache_info(folder).total_bytes
    assert main(["cache", "clear", "--cache-dir", str(folder)]) == 0
    assert f"cleared all cached features: freed {size / 1024:.1f} KB in {folder}" in capsys.readouterr().out
    assert os.listdir(folder) == ["notes.txt"]


def test_cli_errors_exit_2_with_a_clear_message(tmp_path, capsys):
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "missing")]) == 2
    assert f"cvkit cache: error: {tmp_path / 'missing'}: no such cache folder" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "a-file")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["cache", "clear", "--older-than", "-2", "--cache-dir", str(tmp_path)]) == 2
    assert "--older-than must be a number of days >= 0" in capsys.readouterr().err
    assert (tmp_path / "a-file").read_text() == "x"


def test_cvkit_cache_from_the_shell(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    _fill(folder / _name("shell"), ["x", "y", "z"])
    script = Path(sys.executable).parent / "cvkit"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "cvkit.cli"]
    env = {**os.environ, "CVKIT_CACHE_DIR": str(folder)}
    run = subprocess.run([*cmd, "cache", "info"], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert "total: 3 images" in run.stdout and os.fspath(folder) in run.stdout
