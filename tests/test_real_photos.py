"""Real photographs as users have them: EXIF orientation, colour modes other than 8-bit RGB, file names with
spaces and non-ASCII characters (detection.data.dataset.read_image_file, image_size, check_image_size; the
prediction path reads through the same function).

The photo is a real one (tests/data/README.md: COCO val2017 image 343934, stored at 160x120); its rotated,
grayscale, RGBA, palette, 16-bit and CMYK variants are made here, in tmp_path, with PIL and OpenCV. Images are
read as displayed, as detectron2's ``read_image`` (its ``_apply_exif_orientation``) and PIL's
``ImageOps.exif_transpose`` read them: what viewers show, and what COCO and annotation tools annotate.
"""
import importlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from backbones.errors import UserError
from detection.data.catalog import load_dataset_file
from detection.data.coco_format import load_coco
from detection.data.dataset import DetectionDataset, exif_orientation, image_size, read_image_file
from detection.predict.inputs import expand, frames

PHOTO = Path(__file__).parent / "data" / "coco_000000343934_160x120.jpg"
# its COCO annotation (one motorcycle, bbox [175.14, 175.68, 321.08, 240] at 640x480) at 160x120, x1 y1 x2 y2
MOTORCYCLE = np.array([175.14, 175.68, 175.14 + 321.08, 175.68 + 240]) / 4
# a name with spaces, accents and CJK characters
ODD_NAME = "moto à Tōkyō 東京 (1).jpg"


def stored():
    """The photo's pixels, RGB uint8 (120, 160, 3)."""
    return np.asarray(Image.open(PHOTO).convert("RGB"))


def save_with_orientation(path, orientation, **options):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.open(PHOTO).save(path, exif=exif, **options)
    return path


def pil_displayed(path):
    """PIL's reading of the file as displayed: exif_transpose, then convert("RGB")."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


# --- EXIF orientation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_detectron2_reads_it(tmp_path, orientation):
    from detectron2.data.detection_utils import read_image
    path = save_with_orientation(tmp_path / f"o{orientation}.jpg", orientation, quality=95)
    image = read_image_file(path)
    np.testing.assert_array_equal(image, read_image(str(path), format="RGB"))
    np.testing.assert_array_equal(image, pil_displayed(path))
    turned = orientation in (5, 6, 7, 8)
    assert image.shape == ((160, 120, 3) if turned else (120, 160, 3))
    assert image_size(path) == (image.shape[1], image.shape[0]) and exif_orientation(path) == orientation


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tiff"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_of_png_webp_and_tiff_is_applied_too(tmp_path, suffix, orientation):
    path = save_with_orientation(tmp_path / f"photo{suffix}", orientation, **({"lossless": True} if suffix ==
                                                                               ".webp" else {}))
    image = read_image_file(path)
    np.testing.assert_array_equal(image, pil_displayed(path))
    assert image_size(path) == (image.shape[1], image.shape[0])
    if orientation == 6:  # turned 90 degrees clockwise for display: lossless formats keep every stored pixel
        np.testing.assert_array_equal(image, np.rot90(stored(), k=-1))


def _coco_dataset(folder, file_name, width, height, box_xyxy):
    """A COCO JSON naming ``file_name`` with one motorcycle, and a dataset YAML for it; returns the YAML."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    (folder / "gt.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 4, "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}],
        "categories": [{"id": 4, "name": "motorcycle"}]}, ensure_ascii=False), encoding="utf-8")
    (folder / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    return folder / "d.yaml"


def test_a_photo_annotated_as_displayed_trains_on_the_pixels_its_boxes_name(tmp_path):
    save_with_orientation(tmp_path / "turned.jpg", 6, quality=95)
    # orientation 6: shown turned 90 degrees clockwise, so stored (x, y) is shown at (120 - y, x)
    x1, y1, x2, y2 = MOTORCYCLE
    shown_box = np.array([120 - y2, x1, 120 - y1, x2])
    dataset = DetectionDataset(load_dataset_file(_coco_dataset(tmp_path, "turned.jpg", 120, 160, shown_box)))
    image, target = dataset[0]
    assert tuple(image.shape) == (3, 160, 120)
    np.testing.assert_allclose(target["boxes"].numpy(), [shown_box], atol=1e-4)
    # the box holds the motorcycle's pixels: the stored crop, turned as displayed
    pixels = image.permute(1, 2, 0).numpy()  # the dataset's 8-bit pixels
    c1, r1, c2, r2 = np.round(shown_box).astype(int)
    sx1, sy1, sx2, sy2 = np.round(MOTORCYCLE).astype(int)
    crop = np.rot90(read_image_file(PHOTO)[sy1:sy2, sx1:sx2], k=-1)
    assert np.abs(pixels[r1:r2, c1:c2].astype(int) - crop).mean() < 3  # JPEG re-encoding only


def test_a_photo_annotated_on_its_stored_pixels_is_named_with_its_orientation(tmp_path):
    save_with_orientation(tmp_path / "turned.jpg", 6, quality=95)
    dataset = DetectionDataset(load_dataset_file(_coco_dataset(tmp_path, "turned.jpg", 160, 120, MOTORCYCLE)))
    with pytest.raises(UserError, match=r"turned.jpg is 120x160 pixels \(width x height\) but its annotations "
                                        r"declare 160x120: its EXIF orientation \(6\) shows the stored 160x120 "
                                        r"pixels turned by 90 degrees, .* so the annotations were made on the "
                                        r"unrotated pixels; annotate the photo as displayed, or set its orientation "
                                        r"tag to 1"):
        dataset[0]


def test_a_turned_size_without_an_orientation_tag_says_so(tmp_path):
    Image.open(PHOTO).transpose(Image.ROTATE_90).save(tmp_path / "turned.jpg")  # turned, no tag
    dataset = DetectionDataset(load_dataset_file(_coco_dataset(tmp_path, "turned.jpg", 160, 120, MOTORCYCLE)))
    with pytest.raises(UserError, match=r"declare 160x120, the same turned by 90 degrees, and the file has no EXIF "
                                        r"orientation tag: the photo was turned after annotating"):
        dataset[0]


def test_a_malformed_exif_block_is_read_as_no_orientation(tmp_path):
    data = bytearray(PHOTO.read_bytes())
    app1 = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03"  # an entry cut short
    data[2:2] = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    (tmp_path / "bad_exif.jpg").write_bytes(bytes(data))
    assert exif_orientation(tmp_path / "bad_exif.jpg") == 1 and image_size(tmp_path / "bad_exif.jpg") == (160, 120)
    np.testing.assert_array_equal(read_image_file(tmp_path / "bad_exif.jpg"), read_image_file(PHOTO))


# --- colour modes: all become 8-bit RGB ------------------------------------------------------------------------
def _alpha(rgb):
    """An alpha channel running from transparent (left) to opaque (right)."""
    return np.broadcast_to(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), rgb.shape[:2])


@pytest.mark.parametrize("mode, suffix", [("L", ".jpg"), ("L", ".png"), ("RGBA", ".png"), ("LA", ".png"),
                                          ("P", ".png"), ("P transparent", ".png")])
def test_grayscale_alpha_and_palette_images_become_rgb_as_pil_converts_them(tmp_path, mode, suffix):
    rgb = stored()
    if mode in ("RGBA", "LA"):
        base = Image.fromarray(rgb) if mode == "RGBA" else Image.fromarray(rgb).convert("L")
        image = Image.fromarray(np.dstack([np.asarray(base), _alpha(rgb)]), mode)
    elif mode.startswith("P"):
        image = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=64)
    else:
        image = Image.fromarray(rgb).convert(mode)
    path = tmp_path / f"photo{suffix}"
    image.save(path, **({"transparency": 0} if mode == "P transparent" else {}))
    read = read_image_file(path)
    assert read.dtype == np.uint8 and read.shape == (120, 160, 3)
    np.testing.assert_array_equal(read, pil_displayed(path))
    if mode == "RGBA":  # alpha dropped, not composited: the stored colours of the photo, even where transparent
        np.testing.assert_array_equal(read, rgb)
    if mode in ("L", "LA"):
        assert (read == read[..., :1]).all()  # gray in all three channels


def test_16_bit_pngs_are_scaled_to_8_bits_not_clipped(tmp_path):
    rgb = stored().astype(np.uint16)
    rgb16 = rgb * 256 + np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint16)  # low byte: noise
    assert cv2.imwrite(str(tmp_path / "rgb16.png"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image_file(tmp_path / "rgb16.png"), rgb16 >> 8)
    np.testing.assert_array_equal(read_image_file(tmp_path / "rgb16.png"), stored())
    np.testing.assert_array_equal(read_image_file(tmp_path / "rgb16.png"), pil_displayed(tmp_path / "rgb16.png"))
    # a 16-bit TIFF too, which OpenCV alone would turn into round(v / 257)
    assert cv2.imwrite(str(tmp_path / "rgb16.tiff"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image_file(tmp_path / "rgb16.tiff"), stored())
    plain = cv2.imdecode(np.fromfile(tmp_path / "rgb16.tiff", np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert (plain != stored()).mean() > 0.2
    gray16 = rgb16[..., 1]
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode == "I;16"
    read = read_image_file(tmp_path / "gray16.png")
    assert read.dtype == np.uint8 and read.shape == (120, 160, 3)
    np.testing.assert_array_equal(read, np.repeat((gray16 >> 8)[..., None].astype(np.uint8), 3, axis=2))
    # PIL's convert("RGB") (and so detectron2's read_image) clips a 16-bit grayscale: nearly all white
    assert (pil_displayed(tmp_path / "gray16.png") == 255).mean() > 0.9


def test_cmyk_jpegs_become_rgb_as_pil_converts_them(tmp_path):
    Image.fromarray(stored()).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    read = read_image_file(tmp_path / "cmyk.jpg")
    assert read.dtype == np.uint8 and read.shape == (120, 160, 3)
    assert np.abs(read.astype(int) - pil_displayed(tmp_path / "cmyk.jpg")).max() <= 1
    assert np.abs(read.astype(int) - stored()).mean() < 2  # the photo's colours, not inverted ink


# --- file names with spaces and non-ASCII characters -----------------------------------------------------------
def test_an_odd_file_name_is_read_loaded_through_coco_json_and_checked(tmp_path, capsys):
    folder = tmp_path / "mes photos été"
    folder.mkdir()
    shutil.copy(PHOTO, folder / ODD_NAME)
    np.testing.assert_array_equal(read_image_file(folder / ODD_NAME), read_image_file(PHOTO))
    assert image_size(folder / ODD_NAME) == (160, 120)
    yaml_path = _coco_dataset(folder, ODD_NAME, 160, 120, MOTORCYCLE)
    data = load_dataset_file(yaml_path)
    assert Path(data.records[0].file_name) == folder / ODD_NAME
    image, target = DetectionDataset(data)[0]
    assert tuple(image.shape) == (3, 120, 160)
    np.testing.assert_allclose(target["boxes"].numpy(), [MOTORCYCLE], atol=1e-4)
    assert load_coco(folder / "gt.json", folder).records[0].file_name == folder / ODD_NAME
    importlib.import_module("detection.cli.check_dataset").main([str(yaml_path), "--check-images"])
    assert "unreadable or mis-sized images: 0" in capsys.readouterr().out


def test_the_prediction_inputs_read_odd_names_and_exif_as_the_dataset_does(tmp_path):
    shutil.copy(PHOTO, tmp_path / ODD_NAME)
    save_with_orientation(tmp_path / "tourné 6.jpg", 6, quality=95)
    sources = expand(tmp_path)
    assert [s.name for s in sources] == sorted([ODD_NAME, "tourné 6.jpg"])
    for frame in frames(sources):
        assert frame.error is None
        np.testing.assert_array_equal(frame.image, read_image_file(tmp_path / frame.name))
    assert {f.name: f.image.shape for f in frames(sources)} == {ODD_NAME: (120, 160, 3),
                                                                 "tourné 6.jpg": (160, 120, 3)}


@pytest.mark.slow
def test_predict_tool_on_a_folder_of_odd_names_and_a_turned_photo(tmp_path, capsys):
    from detection.detector import build_detector
    from detection.engine.checkpoint import save_checkpoint
    torch.manual_seed(0)
    model = build_detector(mask=False, backbone="resnet18", num_classes=1, min_size=64, max_size=96,
                           rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20, box_representation_size=32,
                           box_detections_per_img=5).eval()
    save_checkpoint(tmp_path / "model.pth", model, ["motorcycle"], [4], 0, train_config={"data": {"train": "x"}})
    photos = tmp_path / "photos à voir"
    photos.mkdir()
    shutil.copy(PHOTO, photos / ODD_NAME)
    save_with_orientation(photos / "tourné 6.jpg", 6, quality=95)
    out = tmp_path / "prédictions"
    importlib.import_module("detection.cli.predict").main([str(tmp_path / "model.pth"), str(photos), "--output",
                                                           str(out), "--draw"])
    assert "predicted 2 images" in capsys.readouterr().out
    images = json.loads((out / "images.json").read_text(encoding="utf-8"))["images"]
    assert [(i["file_name"], i["width"], i["height"]) for i in images] == [(ODD_NAME, 160, 120),
                                                                          ("tourné 6.jpg", 120, 160)]
    drawn = out / "drawn"
    assert sorted(p.name for p in drawn.iterdir()) == sorted([ODD_NAME, "tourné 6.jpg"])
    assert read_image_file(drawn / "tourné 6.jpg").shape == (160, 120, 3)  # drawn as displayed
    results = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    assert results and {r["file_name"] for r in results} <= {ODD_NAME, "tourné 6.jpg"}


def test_a_float_tiff_is_named(tmp_path):
    assert cv2.imwrite(str(tmp_path / "float.tiff"), stored()[..., ::-1].astype(np.float32) / 255)
    with pytest.raises(UserError, match=r"float.tiff has float32 samples; save it with 8 or 16 bits per channel"):
        read_image_file(tmp_path / "float.tiff")


def test_an_unannotated_voc_split_takes_a_turned_photos_size_as_displayed(tmp_path):
    from detection.data.voc_format import load_voc
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "test.txt").write_text("000001\n")
    save_with_orientation(tmp_path / "JPEGImages" / "000001.jpg", 6, quality=95)
    data = load_voc(tmp_path, "test", annotated=False)
    assert (data.records[0].width, data.records[0].height) == (120, 160)
    assert DetectionDataset(data).read_image("000001").shape == (160, 120, 3)  # its size check passes
