#!/usr/bin/env python3
"""Rebuild ``sample_data/`` from Debian's ``tuxpaint-stamps-default`` package (GPL-2).

Four classes of real photo cut-outs: bird, flower, fruit, vegetable. Each PNG is flattened onto
white, scaled so its longest side is at most 320 px, and saved as JPEG. ``tags.tsv`` lists the
same images in ML.NET's headerless ``relative/path<TAB>label`` form.

Usage (needs apt-get and dpkg-deb, i.e. a Debian/Ubuntu machine):
    python scripts/build_sample_data.py [--out sample_data] [--deb path/to/package.deb]
"""
from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PACKAGE = "tuxpaint-stamps-default"
STAMPS = "usr/share/tuxpaint/stamps"
CLASSES = {"bird": "animals/birds", "flower": "plants/flowers", "fruit": "food/fruit",
           "vegetable": "food/vegetables"}
MAX_SIDE = 320
QUALITY = 88


def fetch_deb(workdir: Path) -> Path:
    """Download the .deb with apt-get (no root needed for `apt-get download`)."""
    subprocess.run(["apt-get", "download", PACKAGE], cwd=workdir, check=True)
    debs = sorted(workdir.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        sys.exit(f"apt-get download {PACKAGE} produced no .deb in {workdir}")
    return debs[-1]


def flatten(src: Path) -> Image.Image:
    img = Image.open(src)
    img.load()
    img = img.convert("RGBA")
    white = Image.new("RGB", img.size, (255, 255, 255))
    white.paste(img, mask=img.getchannel("A"))
    scale = MAX_SIDE / max(white.size)
    if scale < 1:
        size = (max(1, round(white.width * scale)), max(1, round(white.height * scale)))
        white = white.resize(size, Image.Resampling.LANCZOS)
    return white


def build(out: Path, deb: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        deb = deb or fetch_deb(tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True)
        stamps = tmp / "root" / STAMPS
        if out.exists():
            shutil.rmtree(out / "images", ignore_errors=True)
        rows = []
        for label, sub in CLASSES.items():
            files = sorted(p for p in glob.glob(str(stamps / sub / "**" / "*.png"), recursive=True)
                           if "cartoon" not in Path(p).relative_to(stamps).parts)
            (out / label).mkdir(parents=True, exist_ok=True)
            for f in files:
                name = Path(f).stem.lower().replace(" ", "_") + ".jpg"
                dst = out / label / name
                flatten(Path(f)).save(dst, "JPEG", quality=QUALITY, optimize=True)
                rows.append(f"{label}/{name}\t{label}")
            print(f"{label}: {len(files)} images from {sub}")
        (out / "tags.tsv").write_text("\n".join(sorted(rows)) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in out.rglob("*.jpg"))
    print(f"{len(rows)} images, {total / 1e6:.2f} MB in {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "sample_data")
    ap.add_argument("--deb", type=Path, default=None, help="use this .deb instead of downloading it")
    args = ap.parse_args()
    build(args.out, args.deb)


if __name__ == "__main__":
    main()
