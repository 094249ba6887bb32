#!/usr/bin/env python3
"""Build ``bench/data/``: folders of real photos for cvkit's benchmarks, from Debian packages.

``sample_data/`` (bird, flower, fruit, vegetable) is too small and too easy to tune or judge imbalance handling and
out-of-distribution (OOD) checks on, so this script adds five sets, each a folder of class folders of JPEGs (flattened
on white, longest side <= 320 px, quality 88, as ``build_sample_data.py`` does):

* ``known_imbalanced_a``  mammals in 4 groups, 6:1, for tuning (tuxpaint photo cut-outs plus GCompris photos).
* ``known_imbalanced_b``  landmarks and scenes, 7:1, from other packages: hold it out of all tuning.
* ``known_balanced_c``    tools, fish, everyday objects, renewable energy, 16-20 a class: a balanced control.
* ``unknown_far``         household things, tools, instruments, vehicles, planets: OOD, far from sample_data and a.
* ``unknown_near``        insects, sea creatures, reptiles, other mammals, mushrooms, nuts, trees: OOD, but near.

Sources, picked by hand (no drawings, silhouettes, people, faint or tiny stamps): tuxpaint-stamps-default,
gcompris-qt-data (images inside its Qt .rcc files), scratch, tuxpaint-data. No image is in two sets: exact duplicates
(same bytes), look-alikes (16x16 difference hashes within 12 bits) and base file names already used by another set
are dropped, and sample_data's stamps are never reused. ``manifest.json`` gives each set's purpose, classes, counts,
packages (version, license) and every image's source; copyright files and GCompris' per-image credits go to
``licenses/``. Output is the same, byte for byte, on every run.

Usage (needs dpkg-deb, and apt-get unless --deb-dir already holds the four .debs; a Debian/Ubuntu machine):
    python scripts/build_bench_data.py [--out bench/data] [--deb-dir DIR]
"""
import argparse
import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from PIL import Image

MAX_SIDE, QUALITY, DHASH_BITS = 320, 88, 12  # look-alikes: at most 12 of 256 hash bits differ
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
# tag: (Debian package, folder of its images, license as its usr/share/doc/PKG/copyright gives it)
PACKAGES = {
    "tux": ("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps", "GPL-2"),
    "gc": ("gcompris-qt-data", "usr/share/gcompris-qt/rcc",
           "GPL-3+ (package); each photo Public Domain, CC0, CC-BY or CC-BY-SA: see licenses/gcompris/*/README"),
    "scratch": ("scratch", "usr/share/scratch/Media", "CC-BY-SA-3.0 (Media/*)"),
    "tuxdata": ("tuxpaint-data", "usr/share/tuxpaint/templates", "GPL-2+"),
}
GC_RCC = ["categorization", "erase", "explore_farm_animals", "explore_monuments", "explore_world_animals"]
SAMPLE_DATA_DIRS = ["animals/birds", "plants/flowers", "food/fruit", "food/vegetables"]  # tuxpaint folders
M, GCW, GCF, GCE = ("animals/mammals", "gc:explore_world_animals/resource/animals",
                    "gc:explore_farm_animals/resource/animals", "gc:erase/resource")
CAT, MON, SCR, MUS = ("gc:categorization/resource/images", "gc:explore_monuments/resource", "scratch:Backgrounds",
                      "tux:hobbies/music")
# A source is "pkg:dir" (each image right in dir), "pkg:dir:a b" (only the stems a, b) or "pkg:dir:-a -b" (all but
# a, b). Files named *_mirror / *-mirror (mirrored copies of another stamp) are always left out.
DATASETS = [
    ("known_imbalanced_a", "Imbalanced known set (6:1) for tuning class weights, thresholds and OOD scores: mammals, "
     "mostly tuxpaint photo cut-outs like sample_data's, plus full-frame GCompris photos.", {}, {
        "hoofed": [f"tux:{M}/bovines", f"tux:{M}/camel", f"tux:{M}/deer", f"tux:{M}/equines",
                   f"tux:{M}:giraffe hippopotamus pig pig_golden pig_golden2 rhino_black wildboar",
                   f"{GCW}:bison giraffe moose", f"{GCF}:cow horse pig sheep",
                   f"{GCE}:alpaca calf camels giraffe goat horse nubian_ibex rhinoceros"],
        "carnivore": [f"tux:{M}/cats", f"tux:{M}/dogs", f"tux:{M}/bears", f"tux:{M}:badger ferret",
                      f"tux:{M}/aquatic:otter sea_lion", f"{GCW}:jaguar panda polar_bear", f"{GCF}:cat dog",
                      f"{GCE}:cheetah kitten meerkats red_panda"],
        "rodent_rabbit": [f"tux:{M}/rodents", f"tux:{M}:rabbit_little", f"{GCE}:pika squirrel"],
        "primate": [f"tux:{M}/apes", f"{GCW}:lemur", f"{GCE}:gibbon gorilla long_nosed_monkey macaque"],
    }),
    ("known_imbalanced_b", "Second imbalanced known set (7:1) of full-frame photos of landmarks and scenes, from "
     "other packages and classes: hold it out of all tuning, for final checks only.", {"landmark": 35}, {
        "landmark": [f"{MON}/{c}" for c in ("egypt", "france", "germany", "india", "usa", "wonders")]
        + [f"{CAT}/monuments"],
        "outdoor": [f"{SCR}/Outdoors:-graffiti -night-city-with-street -night-city -school1 -school2 -train-tracks3"],
        "nature": [f"{SCR}/Nature:-desert -flowers -stars -underwater -woods -woods-and-bench",
                   "tuxdata::-jellyfish -lighthouse -sheep -spiders_web -wool_mill_machine"],
        "indoor": [f"{SCR}/Indoors:chalkboard clothing-store hall kitchen the-movies-inside"],
        "sports_field": [f"{SCR}/Sports:-basketball-court1-b -basketball-court2"],
    }),
    ("known_balanced_c", "Roughly balanced known set (16-20 a class) of full-frame GCompris photos, a control for "
     "the imbalanced sets.", {"*": 20}, {
        "tool": [f"{CAT}/tools"], "fish": [f"{CAT}/fishes"], "everyday_object": [f"{CAT}/others:-igloo"],
        "renewable_energy": [f"{CAT}/renewable"]}),
    ("unknown_far", "OOD set far from sample_data and known_imbalanced_a: man-made things, tuxpaint photo cut-outs "
     "like sample_data's (its tools and household things are not OOD for known_balanced_c).", {}, {
        "household": [f"tux:household{d}" for d in ("", "/arttools", "/dishes", "/dishes/utensils")] + [
                      "tux:clothes:clothespin_new clothespin_old", "tux:town:uk_post_box usps_mailbox",
                      "tux:town/roadsigns:traffic_cone"],
        "tool": ["tux:household/tools"],
        "instrument": [f"{MUS}/brass", f"{MUS}/percussion", f"{MUS}/string", f"{MUS}/wind"],
        "sport": ["tux:sports:-rugby_goal_posts"],
        "vehicle": ["tux:vehicles"] + [f"tux:vehicles/{d}" for d in (
            "auto", "construction", "cycle", "emergency:-sedan_police", "flight", "flight/planes", "masstransit",
            "race", "ship")] + ["tux:military/vehicles"],
        "space": ["tux:space", "tux:space/moon", "tux:space/planets:-0_sun"],
        "other_object": ["tux:hobbies", "tux:medical:-tooth", "tux:military:final-roll-call", "tux:military/ammunition",
                         "tux:town/monuments:inukshuk-photo"],
    }),
    ("unknown_near", "OOD set near sample_data's and known_imbalanced_a's classes: other animals, fungi, nuts, trees "
     "and herbs (its fish-like sea creatures are not OOD for known_balanced_c).", {}, {
        "insect_bug": ["tux:animals/insects:-bee", f"{GCE}:bee butterfly caterpillar",
                       "scratch:Costumes/Animals:insect1-a insect2 grasshopper2", "tuxdata::spiders_web"],
        "sea_creature": ["tux:animals/shellfish", "tux:animals/fish:lionfish lobster seahorse", f"{GCE}:crab",
                         "tuxdata::jellyfish"],
        "reptile_amphibian": ["tux:animals/amphibians", "tux:animals/lizards", f"{GCW}:chameleon crocodile dragon",
                              f"{GCE}:chamaeleon"],
        "other_mammal": [f"tux:{M}:elephant", f"tux:{M}/aquatic:dolphin orca", "tux:animals/marsupials",
                         f"{GCW}:hedgehog kangaroo koala narwhal", f"{GCE}:dolphin flying_fox",
                         "scratch:Costumes/Animals:elephant"],
        "mushroom_nut": ["tux:plants/mushrooms", "tux:food/nuts:-walnut_shelled", "tux:food/spices"],
        "tree_herb": ["tux:plants/trees:-rambutan", "tux:plants:lavender thyme"],
    }),
]


def rcc_entries(path: Path):
    """Yield (path, bytes) for each file in a Qt binary resource (.rcc) file (format versions 1-3, zlib)."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt .rcc file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])

    def walk(index: int, prefix: str):
        o = tree + index * (22 if version >= 2 else 14)
        name_off, flags = struct.unpack(">IH", b[o:o + 6])
        n = names + name_off
        name = b[n + 6:n + 6 + 2 * struct.unpack(">H", b[n:n + 2])[0]].decode("utf-16-be") if index else ""
        if flags & 2:  # a directory
            count, child = struct.unpack(">II", b[o + 6:o + 14])
            for i in range(count):
                yield from walk(child + i, f"{prefix}{name}/")
            return
        d = data + struct.unpack(">I", b[o + 10:o + 14])[0]
        raw = b[d + 4:d + 4 + struct.unpack(">I", b[d:d + 4])[0]]
        if flags & 4:
            raise ValueError(f"{path}: entry {prefix}{name} is zstd-compressed; this reader handles zlib only")
        yield prefix + name, zlib.decompress(raw[4:]) if flags & 1 else raw

    yield from walk(0, "")


def get_debs(deb_dir: Path | None, tmp: Path) -> dict:
    """Find each package's .deb in deb_dir (or tmp), downloading the missing ones there with apt-get."""
    if not shutil.which("dpkg-deb"):
        sys.exit("error: dpkg-deb not found; run this on Debian/Ubuntu")
    (where := deb_dir or tmp).mkdir(parents=True, exist_ok=True)
    debs = {}
    for tag, (pkg, _, _) in PACKAGES.items():
        if not list(where.glob(f"{pkg}_*.deb")):
            if not shutil.which("apt-get"):
                sys.exit(f"error: no {pkg}_*.deb in {where}, and apt-get is not there to download it")
            subprocess.run(["apt-get", "download", pkg], cwd=where, check=True)
        found = sorted(where.glob(f"{pkg}_*.deb"))
        if not found:
            sys.exit(f"error: apt-get download {pkg} left no .deb in {where}")
        debs[tag] = found[-1]
    return debs


def unpack(debs: dict, tmp: Path) -> dict:
    """Extract each .deb; GCompris' images (and credit READMEs) come out of its .rcc files into gc/."""
    roots = {}
    for tag, (pkg, sub, _) in PACKAGES.items():
        (tmp / pkg).mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[tag]), str(tmp / pkg)], check=True)
        roots[tag] = tmp / pkg / sub
    for name in GC_RCC:
        for path, blob in rcc_entries(roots["gc"] / f"{name}.rcc"):
            dest = tmp / "gc" / path.removeprefix("/gcompris/src/activities/")
            if dest.suffix.lower() in IMAGE_EXT or dest.name == "README":
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(blob)
    roots["gc"] = tmp / "gc"
    return roots


def flatten(src: Path) -> Image.Image:
    img = Image.open(src).convert("RGBA")  # convert() loads, so a broken file fails here
    white = Image.new("RGB", img.size, (255, 255, 255))
    white.paste(img, mask=img.getchannel("A"))
    if (scale := MAX_SIDE / max(white.size)) < 1:
        size = (max(1, round(white.width * scale)), max(1, round(white.height * scale)))
        white = white.resize(size, Image.Resampling.LANCZOS)
    return white


def dhash(img: Image.Image, n: int = 16) -> int:
    """Difference hash: n*n bits, one per pair of horizontal neighbours in an (n+1) x n grey thumbnail."""
    px = img.convert("L").resize((n + 1, n), Image.Resampling.LANCZOS).tobytes()
    return sum(1 << (r * n + c) for r in range(n) for c in range(n) if px[r * n + r + c] > px[r * n + r + c + 1])


def key(path: Path) -> str:  # the base file name that no two sets may share
    return path.stem.lower().replace(" ", "_")


def candidates(spec: str, roots: dict) -> list[Path]:
    tag, folder, *rest = spec.split(":")
    stems = rest[0].split() if rest else []
    keep, drop = {s for s in stems if s[0] != "-"}, {s[1:] for s in stems if s[0] == "-"}
    files = sorted(p for p in (roots[tag] / folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXT
                   and not re.search(r"[_-]mirror$", p.stem) and p.stem not in drop and (not keep or p.stem in keep))
    if keep - {p.stem for p in files}:
        print(f"warning: {spec}: not found: {' '.join(sorted(keep - {p.stem for p in files}))}")
    return files


def pick(name: str, specs: list[str], roots: dict, seen: dict, owner: dict, hashes: list) -> list[tuple]:
    """One class's images, as (source, image, sha256, dhash) tuples, less duplicates of anything taken before."""
    kept = []
    for spec in specs:
        tag = spec.split(":")[0]
        for src in candidates(spec, roots):
            rel = f"{tag}:{src.relative_to(roots[tag])}"
            digest = hashlib.sha256(src.read_bytes()).hexdigest()
            if digest in seen or digest in [k[2] for k in kept]:
                print(f"skip {rel}: same bytes as {seen.get(digest, 'another image of this class')}")
                continue
            if owner.get(key(src), name) != name:
                print(f"skip {rel}: its name is already used in {owner[key(src)]}")
                continue
            try:
                img = flatten(src)
            except Exception as e:  # noqa: BLE001 - whatever the decoder raises, the file is skipped
                print(f"skip {rel}: unreadable ({e})")
                continue
            h = dhash(img)
            if twin := next((w for g, w in hashes + [(k[3], k[0]) for k in kept]
                             if bin(g ^ h).count("1") <= DHASH_BITS), None):
                print(f"skip {rel}: looks like {twin}")
                continue
            kept.append((rel, img, digest, h))
    return kept


def build(out: Path, deb_dir: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        debs = get_debs(deb_dir, tmp / "debs")
        roots = unpack(debs, tmp / "x")
        version = {t: subprocess.run(["dpkg-deb", "-f", str(d), "Version"], check=True, text=True,
                                     capture_output=True).stdout.strip() for t, d in debs.items()}
        for sub in [d[0] for d in DATASETS] + ["licenses"]:
            shutil.rmtree(out / sub, ignore_errors=True)
        seen, owner, hashes = {}, {}, []  # sha256 -> where; name -> set; (dhash, where): all taken so far
        for sub in SAMPLE_DATA_DIRS:  # sample_data's stamps are taken first, so no set reuses them
            for p in sorted((roots["tux"] / sub).rglob("*.png")):
                owner.setdefault(key(p), "sample_data")
                seen[hashlib.sha256(p.read_bytes()).hexdigest()] = f"sample_data ({p.name})"
                if "cartoon" not in p.parts:
                    hashes.append((dhash(flatten(p)), f"sample_data ({p.name})"))
        manifest = {"generated_by": "scripts/build_bench_data.py", "max_side": MAX_SIDE, "jpeg_quality": QUALITY,
                    "datasets": []}
        for name, purpose, caps, classes in DATASETS:
            counts, files, used = {}, {}, set()
            for label, specs in classes.items():
                kept = pick(name, specs, roots, seen, owner, hashes)
                cap = caps.get(label, caps.get("*"))
                if cap and len(kept) > cap:  # a fixed, evenly spaced choice
                    kept = [kept[i * len(kept) // cap] for i in range(cap)]
                (out / name / label).mkdir(parents=True)
                for rel, img, digest, h in kept:
                    tag, n = rel.split(":")[0], 1
                    stem = base = f"{tag}_{key(Path(rel))}"
                    while f"{label}/{stem}.jpg" in files:
                        n, stem = n + 1, f"{base}_{n + 1}"
                    img.save(out / name / label / f"{stem}.jpg", "JPEG", quality=QUALITY, optimize=True)
                    files[f"{label}/{stem}.jpg"] = rel
                    seen[digest] = f"{name} ({rel})"
                    owner.setdefault(key(Path(rel)), name)
                    hashes.append((h, f"{name} ({rel})"))
                    used.add(tag)
                counts[label] = len(kept)
            ratio = round(max(counts.values()) / max(1, min(counts.values())), 2)
            print(f"{name}: {sum(counts.values())} images, {counts}, largest:smallest {ratio}:1")
            manifest["datasets"].append({"name": name, "purpose": purpose, "classes": counts, "total": sum(
                counts.values()), "imbalance_ratio": ratio, "files": dict(sorted(files.items())), "sources": [
                {"package": PACKAGES[t][0], "version": version[t], "license": PACKAGES[t][2]} for t in sorted(used)]})
        copies = [(tmp / "x" / p / "usr/share/doc" / p / "copyright", Path(p, "copyright"))
                  for p, _, _ in PACKAGES.values()]
        copies += [(r, "gcompris" / r.relative_to(roots["gc"])) for r in roots["gc"].rglob("README")]
        for src, rel in sorted(copies):
            (out / "licenses" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, out / "licenses" / rel)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in out.rglob("*.jpg"))
    print(f"{sum(d['total'] for d in manifest['datasets'])} images, {size / 1e6:.2f} MB in {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "bench/data",
                    help="output folder (default: bench/data in the repo)")
    ap.add_argument("--deb-dir", type=Path, default=None,
                    help="folder of already-downloaded .debs; any missing one is downloaded into it")
    build(**vars(ap.parse_args()))


if __name__ == "__main__":
    main()
