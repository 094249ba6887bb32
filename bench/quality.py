#!/usr/bin/env python3
"""Benchmark: do the image-quality checks find planted bad photos among real ones, and nothing else?

For each folder of class folders (default: ``bench/data/known_balanced_c``, real photos of up to
320 px, when ``scripts/build_bench_data.py`` has built it, and ``sample_data``, photo cut-outs of
29 to 320 px on white), copies of the photos are planted in a temporary folder (the data folders
are only read), saved as JPEG (quality 90):

==========  ===========================================  ===============================  =====================
check       how a copy is spoilt                          clear strengths                  mild strengths
==========  ===========================================  ===============================  =====================
blurry      Gaussian blur of sigma s pixels (full size)   s = 2, 4                          s = 1, 1.5
dark        every channel times f (towards black)        f = 0.15, 0.25                    f = 0.4, 0.55
bright      distance to white times f (towards white)    f = 0.15, 0.25                    f = 0.4, 0.55
small       shrunk to a long side of n pixels             n = 32, 64                        n = 96, 128
flattened   x -> mean + a (x - mean) per channel          a = 0.03, 0.06                    a = 0.12, 0.2
==========  ===========================================  ===============================  =====================

plus, at the clear level only, grayscale copies (saved as RGB), a 4:1 centre crop (odd_aspect) and a
copy stored on its side with EXIF orientation 6 (orientation). A *flattened* copy is a
``near_constant`` flag.

Each run audits one set: the folder's photos with a random 5% (at least 2) replaced by spoilt
copies for each check (strengths alternating), so about 70% of the set stays clean and the set's
medians are the clean photos'. ``--seeds`` runs per level. Per check: recall (spoilt copies
flagged with that issue), precision (flags of that issue that are copies spoilt for it: a clean
photo or a copy spoilt another way flagged with it counts against it), per strength recall, and the
unmodified photos that the checks flag on their own (listed: they are counted as false flags
although some are real, e.g. a thin object on white). Timing: images per second of
``find_image_issues`` on the whole folder.

Prints JSON. Takes about a minute on 2 CPU cores.

    python bench/quality.py [--seeds 10] [--data bench/data/known_balanced_c sample_data]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from cvkit import ImageDataset, find_image_issues
from cvkit.data import read_image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = [REPO / "bench/data/known_balanced_c", REPO / "sample_data"]
ISSUE = {"blurred": "blurry", "darkened": "dark", "brightened": "bright", "shrunk": "small",
         "flattened": "near_constant", "grey": "grayscale", "cropped": "odd_aspect", "rotated": "orientation"}
STRENGTHS = {
    "clear": {"blurred": (2, 4), "darkened": (0.15, 0.25), "brightened": (0.15, 0.25), "shrunk": (32, 64),
              "flattened": (0.03, 0.06), "grey": (None,), "cropped": (4.0,), "rotated": (6,)},
    "mild": {"blurred": (1, 1.5), "darkened": (0.4, 0.55), "brightened": (0.4, 0.55), "shrunk": (96, 128),
             "flattened": (0.12, 0.2)},
}
SHARE = 0.05  # of the photos replaced per check in a run


def spoil(pixels: np.ndarray, how: str, strength: float | None) -> Image.Image:
    """One spoilt copy of an RGB array, as the table in the module notes says."""
    img = Image.fromarray(pixels)
    x = pixels.astype(np.float64)
    if how == "blurred":
        return img.filter(ImageFilter.GaussianBlur(strength))
    if how == "darkened":
        return Image.fromarray(np.clip(x * strength + 0.5, 0, 255).astype(np.uint8))
    if how == "brightened":
        return Image.fromarray(np.clip(255 - (255 - x) * strength + 0.5, 0, 255).astype(np.uint8))
    if how == "shrunk":
        scale = strength / max(img.size)
        return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                          Image.Resampling.LANCZOS)
    if how == "flattened":
        mean = x.reshape(-1, 3).mean(axis=0)
        return Image.fromarray(np.clip(mean + strength * (x - mean) + 0.5, 0, 255).astype(np.uint8))
    if how == "grey":
        return img.convert("L").convert("RGB")
    if how == "cropped":
        w, h = img.size
        if w >= h:
            keep = max(1, round(w / strength))
            return img.crop((0, (h - keep) // 2, w, (h - keep) // 2 + keep))
        keep = max(1, round(h / strength))
        return img.crop(((w - keep) // 2, 0, (w - keep) // 2 + keep, h))
    raise ValueError(how)


def save(img: Image.Image, path: Path, orientation: int | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if orientation is None:
        img.save(path, quality=90)
    else:  # stored on its side, with the tag that turns it upright
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.transpose(Image.Transpose.ROTATE_90).save(path, quality=90, exif=exif.tobytes())
    return str(path)


def one_run(paths: list[str], pixels: list[np.ndarray], level: str, seed: int, tmp: Path) -> list[dict]:
    """Plant copies for one run; returns one record per image of the set: (path, planted check, strength)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))
    per = max(2, round(SHARE * len(paths)))
    records, used = [], []
    for how, strengths in STRENGTHS[level].items():
        # a 4:1 crop of a small photo would be small as well: crops are made of photos with a long side >= 200
        fits = [i for i in order if i not in used and (how != "cropped" or max(pixels[i].shape[:2]) >= 200)]
        chosen = fits[:per]
        used += chosen
        for j, i in enumerate(chosen):
            strength = strengths[j % len(strengths)]
            out = tmp / f"{level}{seed}" / how / f"{j}_{Path(paths[i]).stem}.jpg"
            if how == "rotated":
                path = save(Image.fromarray(pixels[i]), out, orientation=strength)
            else:
                path = save(spoil(pixels[i], how, strength), out)
            records.append({"path": path, "planted": ISSUE[how], "strength": strength, "original": paths[i]})
    records += [{"path": paths[i], "planted": None, "strength": None, "original": paths[i]}
                for i in order if i not in used]
    return records


def score(runs: list[tuple[list[dict], object]], checks: list[str]) -> dict:
    out = {}
    for issue in checks:
        tp = fp = fn = 0
        by_strength: dict[str, list[int]] = {}
        natural: set[str] = set()
        cross: dict[str, int] = {}
        for records, flags in runs:
            flagged = set(flags.path[flags.issue == issue])
            for r in records:
                hit = r["path"] in flagged
                if r["planted"] == issue:
                    tp += hit
                    fn += not hit
                    by_strength.setdefault(str(r["strength"]), []).append(hit)
                elif hit:
                    fp += 1
                    if r["planted"] is None:
                        natural.add(Path(r["path"]).name)
                    else:
                        cross[r["planted"]] = cross.get(r["planted"], 0) + 1
        if tp + fn == 0 and fp == 0:
            continue
        out[issue] = {"planted": tp + fn, "recall": round(tp / max(1, tp + fn), 3),
                      "precision": round(tp / max(1, tp + fp), 3), "false_flags": fp,
                      "recall_by_strength": {s: round(float(np.mean(v)), 3) for s, v in by_strength.items()},
                      "false_flags_on_spoilt_copies": cross, "clean_photos_flagged": sorted(natural)}
    return out


def bench_folder(folder: Path, seeds: int) -> dict:
    dataset = ImageDataset.from_directory(folder, verbose=False)
    paths = list(dataset.paths)
    pixels = [read_image(p) for p in paths]
    start = time.perf_counter()
    own = find_image_issues(dataset)
    seconds = time.perf_counter() - start
    result = {"folder": str(folder.relative_to(REPO)) if folder.is_relative_to(REPO) else str(folder),
              "images": len(paths), "images_per_second": round(len(paths) / seconds, 1),
              "flags_on_the_folder_itself": [f"{Path(p).name}: {r}" for p, r in zip(own.path, own.reason)]}
    with tempfile.TemporaryDirectory(prefix="cvkit-bench-quality-") as tmp:
        for level in STRENGTHS:
            runs = []
            for seed in range(seeds):
                records = one_run(paths, pixels, level, seed, Path(tmp))
                runs.append((records, find_image_issues([r["path"] for r in records])))
            checks = sorted({ISSUE[h] for h in STRENGTHS[level]} | {i for _, f in runs for i in f.issue})
            result[level] = score(runs, checks)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="runs per level (default 10)")
    parser.add_argument("--data", nargs="+", default=[str(p) for p in DEFAULT_DATA], help="folders of class folders")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    folders = [Path(p).resolve() for p in args.data]
    missing = [str(p) for p in folders if not p.is_dir()]
    if missing:
        print(f"skipped (not found; scripts/build_bench_data.py builds bench/data): {', '.join(missing)}",
              file=sys.stderr)
    results = [bench_folder(p, args.seeds) for p in folders if p.is_dir()]
    print(json.dumps({"seeds": args.seeds, "share_per_check": SHARE, "folders": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
