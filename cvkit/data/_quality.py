"""Image-quality checks: blurry, dark, bright, near-constant, small, odd-shaped, grayscale and rotated photos.

Why: a blurred, black or thumbnail-sized photo teaches a classifier nothing, and one photo in a
hundred is enough to notice in a report. These checks look only at decoded pixels and the image
header, so they run before any model exists (``dataset.audit()``, ``cvkit audit``), in milliseconds
per photo.

Why not CleanVision (``cleanvision`` 0.3.7, cleanlab's checker): its pins fit cvkit's, but it adds
``imagehash`` (with PyWavelets and SciPy), ``tabulate`` and ``fsspec``; it opens files with its own
``Image.open`` (no EXIF turn, none of cvkit's file checks, and an unreadable file has no reason to
report); its thresholds are fixed cut-offs on scores squashed into 0..1, so a set of studio cut-outs
on white and a set of dusk photos get the same rule; it calls an image grayscale only when the file
is stored in mode ``L`` (not a grey photo saved as RGB); and it has no orientation check. Here each
image is decoded the way cvkit's models see it (:func:`cvkit.data.open_image`, upright, draft-decoded
to about :data:`ANALYSIS_SIDE` pixels), an unreadable file is a row with its reason, and each check
compares an image with the *set's median* as well as with an absolute floor, and says so in words.

The checks (score; flagged when):

============== ====================================================== ===========================================
issue          score                                                  flagged when
============== ====================================================== ===========================================
blurry         variance of the Laplacian of the brightness (at most   below ``blur_ratio`` x the set's median, or
               256 px) divided by the brightness variance: edges per  below :data:`BLUR_FLOOR`
               unit of contrast, so a dark photo is not "blurry"
dark           brightness of the brightest 1% of pixels (0-255)       below ``dark_ratio`` x the median, or 40
bright         brightness of the darkest 1% of pixels (0-255)         its distance to white is below
                                                                      ``bright_ratio`` x the median distance, or 20
near_constant  spread (standard deviation) of the brightness (0-255)  below ``constant_ratio`` x the median, or 4
small          side of a square of the image's area, in pixels        below ``size_ratio`` x the median, or ``min_size``
odd_aspect     long side / short side                                 above ``max_aspect`` (and 1.5 x the median)
grayscale      colourfulness: 99th percentile of max-min channel      below :data:`GRAY_COLOURFULNESS` (or stored
                                                                      grey) while most of the set is in colour
orientation    the EXIF orientation tag                               not 1: cvkit turns the photo upright when
                                                                      it reads it; tools that ignore the tag don't
unreadable     (none)                                                 the file cannot be decoded: the reason
============== ====================================================== ===========================================

One cause, one flag: a photo pushed towards black or white loses its spread as well, so a low spread
counts as ``dark`` / ``bright`` when the mean brightness moved at least halfway to that end (and the
photo is not blank), else as ``near_constant``; a near-constant photo is not also called blurry, and
one flagged dark, bright or near-constant not also grayscale. Percentiles, not means, decide dark
and bright, so a small dark object on white is not "bright" and a lamp in the dark not "normal".

The ratios were chosen on ``bench/quality.py`` (planted blurred, darkened, brightened, shrunk and
flattened copies of real photos): see its figures in the README. Being relative, a rule adapts to
the set: in ``sample_data``, where a quarter of the photos are under 64 px a side, a 64 px photo is
not "small" (a 32 px one is).

The public functions, which take any input of images, are :func:`cvkit.find_image_issues` and
:func:`cvkit.data.image_quality` (``cvkit.data._image_issues``); ``ImageDataset.audit()`` calls this
module directly.

Example:
    >>> from cvkit import find_image_issues
    >>> issues = find_image_issues("sample_data")
    >>> list(issues.columns)
    ['path', 'label', 'issue', 'score', 'threshold', 'reason']
    >>> print(issues.reason.iloc[0])
    odd aspect: 320x87 px is 3.7:1; cvkit's models squeeze every photo into a square
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from cvkit._validation import Custom, Interval, validate_params
from cvkit.data._images import MAX_IMAGE_PIXELS, ImageReadError, open_image, read_file
from cvkit.options import decode_threads

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["measure_images", "flag_image_issues", "QUALITY_CONSTRAINTS", "ISSUES", "QUALITY_COLUMNS",
           "ANALYSIS_SIDE", "BLUR_FLOOR", "GRAY_COLOURFULNESS", "ORIENTATIONS"]

#: Every issue :func:`find_image_issues` can report, in the order its table lists them.
ISSUES = ("unreadable", "blurry", "dark", "bright", "near_constant", "small", "odd_aspect", "grayscale",
          "orientation")
#: Columns of :func:`find_image_issues`'s table.
QUALITY_COLUMNS = ["path", "label", "issue", "score", "threshold", "reason"]
#: Pixels measured are those of the image with its long side brought down to this (never up): about
#: what cvkit's models see (224 px), so blur too fine to survive that is not reported.
ANALYSIS_SIDE = 256
#: Sharpness below which an image is blurry whatever the rest of the set looks like.
BLUR_FLOOR = 0.004
#: Colourfulness (0-255) below which an image has no colour to speak of.
GRAY_COLOURFULNESS = 12.0
# Absolute floors of the other checks (brightness, 0-255): see the table above.
_DARK_FLOOR, _BRIGHT_FLOOR, _CONSTANT_FLOOR, _BLANK = 40.0, 20.0, 4.0, 3.0
#: What each EXIF orientation value means (the photo as stored must be turned like this to be upright).
ORIENTATIONS = {2: "mirrored", 3: "upside down (turned 180°)", 4: "upside down and mirrored",
                5: "on its side and mirrored", 6: "on its side (turned 90° clockwise to be upright)",
                7: "on its side and mirrored", 8: "on its side (turned 90° counter-clockwise to be upright)"}
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_MEASURES = ["width", "height", "orientation", "stored_grey", "sharpness", "laplacian_variance", "brightest",
             "darkest", "brightness", "contrast", "colourfulness", "side", "aspect", "error"]


def _fraction(x: float) -> str:
    """``x`` (a fraction of a median) as a person says it: "1/30 of it", "0.6 of it"."""
    if x <= 0:
        return "none of it"
    return f"1/{1 / x:.0f} of it" if x < 0.5 else f"{x:.2g} of it"


def _measure(item: Any, max_pixels: int | None) -> dict[str, Any]:
    """The scores of one image (a path, bytes or an RGB array); ``error`` holds why it is unreadable."""
    out: dict[str, Any] = dict.fromkeys(_MEASURES)
    try:
        if isinstance(item, np.ndarray):
            img, (w, h), orientation, mode = Image.fromarray(item), item.shape[1::-1], 1, "RGB"
        else:
            data = read_file(item) if isinstance(item, (str, os.PathLike)) else bytes(item)
            try:  # the header alone: stored size, mode and orientation tag (decoding checks the rest)
                header = Image.open(io.BytesIO(data))
                (w, h), mode, orientation = header.size, header.mode, int(header.getexif().get(0x0112, 1) or 1)
            except Exception:  # noqa: BLE001 - open_image below names what is wrong
                (w, h), mode, orientation = (0, 0), "", 1
            img = open_image(data, size=ANALYSIS_SIDE, max_pixels=max_pixels)
            if orientation in (5, 6, 7, 8):
                w, h = h, w
    except ImageReadError as exc:
        out["error"] = exc.reason
        return out
    except Exception as exc:  # noqa: BLE001 - a reader bug must not stop a check of thousands of photos
        out["error"] = f"cannot read image ({type(exc).__name__}: {exc})"
        return out
    scale = ANALYSIS_SIDE / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
    rgb = np.asarray(img, dtype=np.float32)
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1])
    lap_var = float(lap.var()) if lap.size else 0.0
    spread, mean = float(grey.std()), float(grey.mean())
    darkest, brightest = (float(v) for v in np.percentile(grey, [1, 99]))
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    out.update(width=int(w), height=int(h), orientation=orientation, stored_grey=mode in _GREY_MODES,
               laplacian_variance=lap_var, sharpness=lap_var / max(spread ** 2, 1e-6),
               brightest=brightest, darkest=darkest, brightness=mean, contrast=spread,
               colourfulness=0.0 if mode in _GREY_MODES else float(np.percentile(chroma, 99)),
               side=float(np.sqrt(float(w) * float(h))), aspect=max(w, h) / max(1, min(w, h)))
    return out


def measure_images(items: Sequence[Any], names: Sequence[str], labels: Sequence[str | None] | None = None,
                   skipped: Sequence[tuple[str, str]] = (), *, threads: int | None = None,
                   max_pixels: int | None = MAX_IMAGE_PIXELS) -> pd.DataFrame:
    """The scores of ``items`` (paths, bytes or RGB arrays) named ``names``: :func:`cvkit.data.image_quality`'s table.

    ``skipped`` ``(name, reason)`` pairs (images left out before, e.g. by a dataset's check) come
    last as unreadable rows. Decoding runs on ``threads`` threads (default
    :func:`cvkit.options.decode_threads`); only the scores are kept, so memory stays small.
    """
    import pandas as pd

    labels = list(labels) if labels is not None else [None] * len(items)
    with ThreadPoolExecutor(max_workers=decode_threads(threads), thread_name_prefix="cvkit-quality") as pool:
        rows = list(pool.map(lambda item: _measure(item, max_pixels), items))
    rows += [{**dict.fromkeys(_MEASURES), "error": reason} for _, reason in skipped]
    table = pd.DataFrame(rows, columns=_MEASURES)
    for column in _MEASURES[:-1]:  # numbers (NaN where unreadable), never objects
        values = table[column].tolist()
        table[column] = [bool(v) for v in values] if column == "stored_grey" else \
            np.array([np.nan if v is None else v for v in values], dtype=float)
    table.insert(0, "path", list(names) + [name for name, _ in skipped])
    table.insert(1, "label", [v or "" for v in labels] + [""] * len(skipped))
    return table


#: The declared constraints of the checks' parameters (:func:`cvkit._validation.validate_params`).
QUALITY_CONSTRAINTS = {
    "checks": [Custom(lambda v: isinstance(v, (list, tuple, set, frozenset)) and set(v) <= set(ISSUES),
                      f"a list of issue names from {', '.join(ISSUES)}"), None],
    "blur_ratio": [Interval(float, 0, 1, closed="neither")],
    "dark_ratio": [Interval(float, 0, 1, closed="neither")],
    "bright_ratio": [Interval(float, 0, 1, closed="neither")],
    "constant_ratio": [Interval(float, 0, 1, closed="neither")],
    "size_ratio": [Interval(float, 0, 1, closed="neither")],
    "min_size": [Interval(int, 1, None)],
    "max_aspect": [Interval(float, 1, None, closed="neither")],
    "threads": [Interval(int, 1, None), None],
}


def _rules(q: pd.DataFrame, ok: np.ndarray, p: dict[str, Any]) -> list[tuple[str, np.ndarray, float, np.ndarray, Any]]:
    """``(issue, score, threshold, flagged, reason(i))`` of each check over the readable rows ``ok``."""
    def median(column: str) -> float:
        values = q.loc[ok, column].to_numpy(float)
        return float(np.median(values)) if len(values) else float("nan")

    rules = []
    spread, mean = q.contrast.to_numpy(float), q.brightness.to_numpy(float)
    brightest, darkest = q.brightest.to_numpy(float), q.darkest.to_numpy(float)
    m_spread, m_mean = median("contrast"), median("brightness")
    t_constant = max(_CONSTANT_FLOOR, p["constant_ratio"] * m_spread)
    m_top, m_room = median("brightest"), 255.0 - median("darkest")
    t_dark = max(_DARK_FLOOR, p["dark_ratio"] * m_top)
    t_bright = 255.0 - max(_BRIGHT_FLOOR, p["bright_ratio"] * m_room)
    flat, dark, bright = ok & (spread < t_constant), ok & (brightest < t_dark), ok & (darkest > t_bright)
    # A photo pushed towards black or white loses its spread too, and a flattened light photo has no dark
    # pixels left: a low spread is the exposure's doing when the mean moved at least halfway to that end,
    # unless the photo is blank (a spread under _BLANK whatever its brightness).
    blank = spread < _BLANK
    dark &= ~flat | ((mean < m_mean / 2) & ~blank)
    bright &= ~flat | ((255.0 - mean < (255.0 - m_mean) / 2) & ~blank)
    flat &= ~dark & ~bright
    rules.append(("near_constant", spread, t_constant, flat, lambda i: (
        f"near-constant: brightness {mean[i]:.0f} ± {spread[i]:.1f} of 255, the set's median spread is "
        f"{m_spread:.0f}; {_fraction(spread[i] / m_spread)}")))

    sharp = q.sharpness.to_numpy(float)
    m_sharp, lap = median("sharpness"), q.laplacian_variance.to_numpy(float)
    t_blur = max(BLUR_FLOOR, p["blur_ratio"] * m_sharp)
    rules.append(("blurry", sharp, t_blur, ok & ~flat & (sharp < t_blur), lambda i: (
        f"blurry: sharpness {sharp[i]:.3g} (Laplacian variance {lap[i]:.1f} / brightness variance "
        f"{spread[i] ** 2:.0f}), the set's median is {m_sharp:.3g}; {_fraction(sharp[i] / m_sharp)}")))
    rules.append(("dark", brightest, t_dark, dark, lambda i: (
        f"dark: its brightest 1% of pixels reach {brightest[i]:.0f} of 255 (mean brightness "
        f"{mean[i]:.0f}); the set's medians are {m_top:.0f} (mean {m_mean:.0f})")))
    rules.append(("bright", darkest, t_bright, bright, lambda i: (
        f"bright: even its darkest 1% of pixels are at {darkest[i]:.0f} of 255 (mean brightness "
        f"{mean[i]:.0f}); the set's medians are {255 - m_room:.0f} (mean {m_mean:.0f})")))

    side, m = q.side.to_numpy(float), median("side")
    t_small = max(float(p["min_size"]), p["size_ratio"] * m)
    rules.append(("small", side, t_small, ok & (side < t_small), lambda i, m=m: (
        f"small: {q.width[i]:.0f}x{q.height[i]:.0f} px, the set's median is {m:.0f} px a side; "
        f"cvkit's models see {224} px")))

    aspect, m = q.aspect.to_numpy(float), median("aspect")
    t_aspect = max(float(p["max_aspect"]), 1.5 * m)
    rules.append(("odd_aspect", aspect, t_aspect, ok & (aspect > t_aspect), lambda i: (
        f"odd aspect: {q.width[i]:.0f}x{q.height[i]:.0f} px is {aspect[i]:.1f}:1; cvkit's models squeeze "
        "every photo into a square")))

    colour = q.colourfulness.to_numpy(float)
    grey = ok & (colour < GRAY_COLOURFULNESS)
    in_colour = ok.sum() > 0 and (ok & ~grey).sum() > ok.sum() / 2
    exposed = flat | dark | bright  # no room left for colour: those flags say more
    rules.append(("grayscale", colour, GRAY_COLOURFULNESS, grey & ~exposed & in_colour, lambda i: (
        ("grayscale: stored as a grey image" if q.stored_grey[i] else
         f"grayscale: colourfulness {colour[i]:.1f} of 255") +
        f", while {int((ok & ~grey).sum())} of the set's {int(ok.sum())} images are in colour")))

    tag = q.orientation.fillna(1).to_numpy(float)
    rules.append(("orientation", tag, 1.0, ok & (tag != 1), lambda i: (
        f"orientation: EXIF orientation {tag[i]:.0f}, stored {ORIENTATIONS.get(int(tag[i]), 'turned')}; "
        "cvkit reads it upright (read_image applies the tag), tools that ignore the tag do not")))
    return rules


def flag_image_issues(q: pd.DataFrame, *, checks: Sequence[str] | None = None, blur_ratio: float = 0.07,
                      dark_ratio: float = 0.4, bright_ratio: float = 0.4, constant_ratio: float = 0.2,
                      size_ratio: float = 0.25, min_size: int = 32, max_aspect: float = 3.0) -> pd.DataFrame:
    """The flags of a :func:`measure_images` table: :func:`cvkit.find_image_issues`'s table (same parameters)."""
    import pandas as pd

    params = {"checks": None if checks is None else list(checks), "blur_ratio": blur_ratio,
              "dark_ratio": dark_ratio, "bright_ratio": bright_ratio, "constant_ratio": constant_ratio,
              "size_ratio": size_ratio, "min_size": min_size, "max_aspect": max_aspect}
    validate_params("find_image_issues", params, QUALITY_CONSTRAINTS)
    wanted = set(ISSUES if checks is None else checks)
    ok = q.error.isna().to_numpy()
    rows: list[dict[str, Any]] = []
    if "unreadable" in wanted:
        rows += [{"index": i, "issue": "unreadable", "score": np.nan, "threshold": np.nan, "reason": q.error[i],
                  "_rank": 0.0} for i in np.flatnonzero(~ok)]
    for issue, score, threshold, flagged, reason in _rules(q, ok, params):
        if issue not in wanted:
            continue
        for i in np.flatnonzero(flagged):
            badness = score[i] / threshold if issue in ("odd_aspect", "bright", "orientation") else \
                -score[i] / threshold
            rows.append({"index": int(i), "issue": issue, "score": float(score[i]), "threshold": float(threshold),
                         "reason": reason(i), "_rank": -badness})
    table = pd.DataFrame(rows, columns=["index", "issue", "score", "threshold", "reason", "_rank"])
    table["_issue"] = table.issue.map({name: k for k, name in enumerate(ISSUES)})
    table = table.sort_values(["_issue", "_rank"], kind="stable")
    table.insert(1, "path", q.path.to_numpy()[table["index"].to_numpy(int)])
    table.insert(2, "label", q.label.to_numpy()[table["index"].to_numpy(int)])
    return table.set_index("index")[QUALITY_COLUMNS].rename_axis("index")
