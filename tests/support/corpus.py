"""A bad-input corpus generated on the fly: every kind of awkward file a user's folder can hold."""
from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _rgb(w: int = 48, h: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def two_colour(w: int = 40, h: int = 20) -> Image.Image:
    """Left half red, right half blue."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (255, 0, 0)
    arr[:, w // 2:] = (0, 0, 255)
    return Image.fromarray(arr)


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (no pixel data): a decompression bomb probe."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def make_corpus(root: Path) -> dict[str, Path]:
    """Write the corpus under ``root``; returns named paths. Classes: good, odd, bad, nested, empty."""
    good, odd, bad = root / "good", root / "odd", root / "bad"
    for d in (good, odd, bad, root / "nested" / "deeper", root / "empty_class", root / ".hidden_dir"):
        d.mkdir(parents=True, exist_ok=True)
    p: dict[str, Path] = {}

    p["jpeg"] = good / "plain.jpg"; _rgb(seed=1).save(p["jpeg"], quality=90)
    p["unicode"] = good / "ünïcødé naïve café.jpg"; _rgb(seed=2).save(p["unicode"])
    p["space_png"] = good / "with space.PNG"; _rgb(seed=3).save(p["space_png"])
    p["upper_jpeg"] = good / "UPPER.JPEG"; _rgb(seed=4).save(p["upper_jpeg"], format="JPEG")
    p["bmp"] = good / "x.bmp"; _rgb(seed=5).save(p["bmp"])
    p["gif"] = good / "x.gif"; _rgb(seed=6).convert("P").save(p["gif"])
    p["webp"] = good / "x.webp"; _rgb(seed=7).save(p["webp"])
    p["tiff"] = good / "x.TIFF"; _rgb(seed=8).save(p["tiff"])

    p["cmyk"] = odd / "cmyk.jpg"
    Image.new("RGB", (32, 32), (200, 30, 30)).convert("CMYK").save(p["cmyk"], "JPEG", quality=95)
    p["gray16"] = odd / "gray16.png"
    ramp = (np.linspace(0, 65535, 64 * 16).reshape(16, 64)).astype(np.uint16)
    Image.fromarray(ramp).save(p["gray16"])
    p["palette_alpha"] = odd / "palette_alpha.png"
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 128, 0] + [255, 0, 0] * 255)
    pal.paste(1, (0, 0, 10, 20))  # left half: index 1 (red); right half index 0 (transparent)
    pal.save(p["palette_alpha"], transparency=0)
    p["rotated"] = odd / "exif_rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    two_colour(40, 20).save(p["rotated"], "JPEG", quality=95, exif=exif)
    p["rgba"] = odd / "rgba.png"
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.save(p["rgba"])
    p["gray"] = odd / "gray.jpg"; _rgb(seed=9).convert("L").save(p["gray"])

    buf = io.BytesIO(); _rgb(64, 64, seed=10).save(buf, "JPEG", quality=90)
    p["truncated"] = bad / "truncated.jpg"; p["truncated"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    p["zero"] = bad / "zero_bytes.jpg"; p["zero"].write_bytes(b"")
    p["text"] = bad / "text_file.jpg"; p["text"].write_text("this is not an image\n")
    p["bomb"] = bad / "bomb.png"; p["bomb"].write_bytes(huge_png_header(40_000, 40_000))

    p["nested"] = root / "nested" / "deeper" / "deep.jpg"; _rgb(seed=11).save(p["nested"])
    p["hidden_file"] = good / ".hidden.jpg"; _rgb(seed=12).save(p["hidden_file"])
    p["hidden_dir_img"] = root / ".hidden_dir" / "x.jpg"; _rgb(seed=13).save(p["hidden_dir_img"])
    p["appledouble"] = good / "._plain.jpg"; p["appledouble"].write_bytes(b"\x00\x05\x16\x07junk")
    p["notes"] = good / "notes.txt"; p["notes"].write_text("not an image")
    p["ds_store"] = good / ".DS_Store"; p["ds_store"].write_bytes(b"\x00\x00\x00\x01Bud1")
    return p


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (plus its mtime), to prove nothing was modified."""
    out = {}
    for f in sorted(root.rglob("*")):
        if f.is_file():
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest() + f":{f.stat().st_mtime_ns}"
    return out
