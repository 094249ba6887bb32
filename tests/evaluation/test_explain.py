"""``cvkit.explain``: heat maps that point where the class is, at the photo's size, for the class asked.

The quadrant tests train real classifiers on constructed photos whose class is a texture placed in
one quadrant (stripes or checks, the rest plain grey): a map is right when its peak lies in that
quadrant. The session's classifier (``fitted``, real sample photos) checks shapes, targets, the
exactness of CAM against Grad-CAM, and model folders.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

import cvkit
from cvkit.evaluation import Explanation, explain
from cvkit.evaluation.plots import overlay_heatmap, plot_heatmaps
from cvkit.models import ModelFormatError
from tests.support.models import litert_only_copy

SIDE = 224
QUADRANTS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def _textured(kind: str, quadrant: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A grey photo with a stripes or checks texture filling most of one quadrant."""
    image = np.clip(rng.normal(128, 6, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
    half, pad = SIDE // 2, 8
    yy, xx = np.mgrid[: half - 2 * pad, : half - 2 * pad]
    pattern = (xx // 6) % 2 if kind == "stripes" else ((yy // 14 + xx // 14) % 2)
    patch = np.where(pattern[..., None] == 1, np.array([250, 210, 30]), np.array([20, 20, 120])).astype(np.uint8)
    top, left = quadrant[0] * half + pad, quadrant[1] * half + pad
    image[top:top + half - 2 * pad, left:left + half - 2 * pad] = patch
    return image


def _textured_set(n_per_class: int, seed: int) -> tuple[np.ndarray, list[str], list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    images, labels, where = [], [], []
    for k in range(n_per_class):
        for kind in ("checks", "stripes"):
            quadrant = QUADRANTS[(k + (kind == "stripes")) % 4]
            images.append(_textured(kind, quadrant, rng))
            labels.append(kind)
            where.append(quadrant)
    return np.stack(images), labels, where


def _peak_quadrant(heat: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(y >= heat.shape[0] / 2), int(x >= heat.shape[1] / 2)


@pytest.fixture(scope="module")
def textures():
    """``(train images, labels, test images, labels, quadrants)`` of the constructed texture photos."""
    images, labels, _ = _textured_set(12, seed=0)
    test, test_labels, where = _textured_set(4, seed=1)
    return images, labels, test, test_labels, where


@pytest.mark.slow
@pytest.mark.parametrize("calibration, method", [("temperature", "cam"), ("sigmoid", "gradcam")])
def test_a_map_peaks_in_the_quadrant_that_decides_the_class(textures, calibration, method):
    # the default head is linear (exact CAM); a sigmoid-calibrated head is not (auto: Grad-CAM)
    images, labels, test, test_labels, where = textures
    clf = cvkit.FeatureClassifier(verbose=False, calibration=calibration, cache=False).fit(images, labels)
    assert (clf.predict(test) == np.array(test_labels)).all()
    found = explain(clf, test, target=test_labels)
    assert found.method == method
    assert [_peak_quadrant(m) for m in found.maps] == where
    occluded = explain(clf, test, target=test_labels, method="occlusion")
    assert occluded.method == "occlusion"
    assert [_peak_quadrant(m) for m in occluded.maps] == where
    # the map of the other class finds its evidence anywhere but on this texture
    other = explain(clf, test, target=["stripes" if t == "checks" else "checks" for t in test_labels])
    assert all(_peak_quadrant(m) != q for m, q in zip(other.maps, where))


@pytest.mark.slow
def test_a_fine_tuned_model_and_its_folder_give_exact_cam_maps_that_point_at_the_texture(textures, tmp_path):
    images, labels, test, test_labels, where = textures
    ft = cvkit.FineTuneClassifier(epochs=0, verbose=0, cache=False).fit(images, labels)
    found = explain(ft, test, target=test_labels)
    assert found.method == "cam"  # the softmax Dense over average-pooled features: exact
    assert [_peak_quadrant(m) for m in found.maps] == where
    loaded = cvkit.load_model(ft.save(tmp_path / "ft"))  # LiteRT runs it; explain loads its Keras graph
    again = explain(loaded, test, target=test_labels)
    assert again.method == "cam"
    assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(found.maps, again.maps))


@pytest.mark.slow
def test_maps_have_each_photo_s_size_after_exif_rotation_and_are_finite_in_0_1(fitted, tmp_path):
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 150 wide x 100 high, shown 100 wide x 150 high
    Image.open("sample_data/bird/owl.jpg").convert("RGB").resize((150, 100)).save(rotated, exif=exif)
    array = cvkit.read_image("sample_data/fruit/apple_fuji.jpg", size=(90, 60))
    items = ["sample_data/bird/owl.jpg", str(rotated), array]
    found = explain(fitted, items)
    assert isinstance(found, Explanation) and len(found) == 3
    assert [m.shape for m in found.maps] == [(cvkit.read_image(items[0]).shape[:2]), (150, 100), (60, 90)]
    for heat in found.maps:
        assert heat.dtype == np.float32 and np.isfinite(heat).all()
        assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert found.predicted[:1] == ["bird"] and found.targets == found.predicted
    assert np.allclose(found.scores, fitted.predict_proba(items).max(axis=1), atol=1e-4)
    assert explain(fitted, items[:1], size="input").maps[0].shape == (224, 224)
    assert explain(fitted, items[:1], size=(64, 32)).maps[0].shape == (32, 64)


@pytest.mark.slow
def test_target_by_name_by_index_and_per_image(fitted):
    paths = ["sample_data/bird/owl.jpg", "sample_data/fruit/apple_fuji.jpg"]
    by_name = explain(fitted, paths, target="flower")
    by_index = explain(fitted, paths, target=fitted.classes_.index("flower"))
    assert by_name.targets == by_index.targets == ["flower", "flower"]
    assert all(np.array_equal(a, b) for a, b in zip(by_name.maps, by_index.maps))
    proba = fitted.predict_proba(paths)
    assert np.allclose(by_name.scores, proba[:, fitted.classes_.index("flower")], atol=1e-4)
    mixed = explain(fitted, paths, target=["vegetable", None])
    assert mixed.targets == ["vegetable", "fruit"]
    assert not np.array_equal(mixed.maps[0], explain(fitted, paths[:1]).maps[0])  # another class, another map
    with pytest.raises(ValueError, match="'cat' is not a class of this model"):
        explain(fitted, paths, target="cat")
    with pytest.raises(ValueError, match="index 4 is out of range"):
        explain(fitted, paths, target=4)
    with pytest.raises(ValueError, match="3 values for 2 images"):
        explain(fitted, paths, target=["bird"] * 3)
    with pytest.raises(ValueError, match="method must be one of"):
        explain(fitted, paths, method="lime")


@pytest.mark.slow
def test_cam_equals_grad_cam_on_a_linear_head(fitted, sample_split):
    # Grad-CAM differentiates the logit through TensorFlow; on global average pooling and a linear head
    # its weights are W[:, c] / (h * w), so after the ReLU it is CAM itself: a check of both
    paths = list(sample_split[1].paths[:6])
    cam = explain(fitted, paths, method="cam", size="input")
    grad = explain(fitted, paths, method="gradcam", size="input")
    assert explain(fitted, paths[:1]).method == "cam"
    assert cam.targets == grad.targets
    for a, b in zip(cam.maps, grad.maps):
        assert np.abs(a - b).max() < 1e-4


def test_a_model_folder_without_a_keras_graph_says_so_and_occlusion_still_works(model_dir, tmp_path):
    folder = litert_only_copy(model_dir, tmp_path / "litert-only")
    model = cvkit.load_model(folder)
    with pytest.raises(ModelFormatError, match=r"only a LiteRT graph \(model.tflite\), no Keras graph"):
        explain(model, ["sample_data/bird/owl.jpg"])
    with pytest.raises(ModelFormatError, match="method='occlusion'"):
        explain(str(folder), ["sample_data/bird/owl.jpg"], method="gradcam")
    found = explain(model, ["sample_data/bird/owl.jpg"], method="occlusion")
    assert found.method == "occlusion" and found.maps[0].max() == pytest.approx(1.0)


def test_a_loaded_folder_gives_the_classifier_s_maps(fitted, model):
    paths = ["sample_data/bird/owl.jpg", "sample_data/flower/anemone_red.jpg"]
    ours, theirs = explain(fitted, paths), explain(model, paths)
    assert theirs.method == "cam" and theirs.targets == ours.targets
    assert all(np.allclose(a, b, atol=1e-3) for a, b in zip(ours.maps, theirs.maps))


def test_an_unreadable_image_gets_no_map_and_one_warning(fitted, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = explain(fitted, ["sample_data/bird/owl.jpg", str(bad)])
    assert found.maps[1] is None and found.targets[1] is None and np.isnan(found.scores[1])
    assert found.skipped and found.skipped[0][0].endswith("broken.jpg")
    assert sum("broken.jpg" in str(w.message) for w in caught) == 1
    assert found.overlays()[1] is None and found.overlays()[0].shape[2] == 3


def test_overlay_blends_a_map_onto_a_photo_and_plots_a_grid(fitted):
    image = cvkit.read_image("sample_data/bird/owl.jpg")
    heat = np.zeros((7, 7), np.float32)
    heat[0, 0] = 1.0
    assert np.array_equal(overlay_heatmap(image, heat, alpha=0.0), image)
    blended = overlay_heatmap(image, heat, alpha=1.0)
    assert blended.shape == image.shape and blended.dtype == np.uint8
    assert blended[0, 0, 0] > 100 and blended[-1, -1, 2] > 100  # jet: red at the peak, blue where nothing
    with pytest.raises(ValueError, match="uint8 RGB"):
        overlay_heatmap(image.astype(np.float32), heat)
    found = explain(fitted, ["sample_data/bird/owl.jpg", "sample_data/fruit/apple_fuji.jpg"])
    fig = found.plot(ncols=2)
    assert len(fig.axes) == 2 and "cam" in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes] == found.titles()
    assert len(plot_heatmaps(found.maps, images=found.images()).axes) == 2


def test_top_losses_can_show_the_map_of_the_predicted_class(fitted, sample_split):
    report = cvkit.evaluate(fitted, sample_split[1])
    plain, mapped = report.plot_top_losses(4), report.plot_top_losses(4, heatmaps=fitted)
    assert "heat map (cam) of the predicted class" in " ".join(mapped._suptitle.get_text().split())
    assert [ax.get_title() for ax in mapped.axes] == [ax.get_title() for ax in plain.axes]
    first_plain, first_mapped = plain.axes[0].images[0].get_array(), mapped.axes[0].images[0].get_array()
    assert first_plain.shape == first_mapped.shape and not np.array_equal(first_plain, first_mapped)


def test_a_folder_of_the_first_format_has_its_head_in_the_graph_and_exact_maps(repo_dir):
    # format 1: one Keras graph from pixels to probabilities (the backbone nested, a softmax Dense after it)
    model = cvkit.load_model(repo_dir / "tests" / "fixtures" / "model_v0_1")
    found = explain(model, ["sample_data/bird/owl.jpg"])
    assert found.method == "cam" and found.targets == list(model.predict(["sample_data/bird/owl.jpg"]))
    assert found.maps[0].shape == cvkit.read_image("sample_data/bird/owl.jpg").shape[:2]
    assert np.allclose(found.scores, model.predict_proba(["sample_data/bird/owl.jpg"]).max(axis=1), atol=1e-4)
