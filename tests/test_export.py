"""Exported detectors (ONNX in onnxruntime, TorchScript) against the PyTorch model on real photographs.

The bar (issue 15): boxes within 1e-3 relative, the same labels, scores within 1e-4, on two COCO val2017
photographs of different sizes and orientations (tests/data/README.md), one of which is the traced example:
the exported graph must take any image size. Weights are random with a fixed seed and the score threshold 0,
so every image gives box_detections_per_img detections to compare (asserted: parity on nothing proves nothing).
"""
import numpy as np
import pytest
import torch

from backbones.errors import UserError
from detection import build_detector
from detection.data.dataset import read_image_file
from detection.engine.checkpoint import save_checkpoint
from detection.engine.run_folder import MANIFEST, written_files
from detection.export import export_model, load_exported, measure_parity
from detection.export.parity import BOX_RTOL, SCORE_ATOL

DATA = __import__("pathlib").Path(__file__).parent / "data"
# landscape 214x320 (traced) and portrait 640x427: different sizes, sides and aspect ratios
PHOTOS = ("coco_000000128372_320x214.jpg", "coco_000000404249.jpg")
DETECTIONS = 50  # box_detections_per_img of the test models


def photo(name):
    return torch.from_numpy(read_image_file(DATA / name)).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def photos():
    images = [photo(n) for n in PHOTOS]
    assert images[0].shape[1:] == (214, 320) and images[1].shape[1:] == (640, 427)
    return images


def small_detector(neck="fpn", mask=False):
    torch.manual_seed(0)
    return build_detector(backbone="resnet18", neck=neck, mask=mask, num_classes=3, min_size=320, max_size=512,
                          box_score_thresh=0.0, box_detections_per_img=DETECTIONS, rpn_pre_nms_top_n_test=300,
                          rpn_post_nms_top_n_test=100).eval()


def assert_parity(model, exported, images):
    for image in images:
        result = measure_parity(model, exported, image)
        assert result["detections"] == DETECTIONS, result  # there is something to compare
        assert result["exported_detections"] == DETECTIONS, result
        assert result["same_labels"], result
        assert result["max_box_rel"] <= BOX_RTOL, result
        assert result["max_score_abs"] <= SCORE_ATOL, result
        if model.config.mask:
            assert result["max_mask_abs"] <= 1e-3, result
        assert result["ok"]


@pytest.mark.parametrize("neck,mask", [("fpn", False),
                                       pytest.param("fpn", True, marks=pytest.mark.slow),
                                       pytest.param("c4", False, marks=pytest.mark.slow),
                                       pytest.param("c4", True, marks=pytest.mark.slow)])
def test_onnx_matches_pytorch_on_photographs_of_two_sizes(tmp_path, photos, neck, mask):
    model = small_detector(neck, mask)
    path = export_model(model, "onnx", tmp_path / "model.onnx", photos[0], class_names=["a", "b", "c"])
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # written whole: no temporary file left
    exported = load_exported(path)
    assert exported.format == "onnx" and exported.class_names == ["a", "b", "c"]
    assert exported.outputs == (("boxes", "labels", "scores") + (("masks",) if mask else ()))
    assert_parity(model, exported, photos)
    # numpy input gives the same as a tensor
    a, b = exported(photos[1]), exported(photos[1].numpy())
    assert torch.equal(a["boxes"], b["boxes"])


def test_the_exported_resize_is_eager_pytorchs(photos):
    """The traced resize rounds the size as eager PyTorch does (in float32, 214 * (320 / 214) gives 319)."""
    from detection.export.graph import ExportableDetector
    transform = ExportableDetector(small_detector()).model.transform
    traced = torch.jit.trace(lambda x: transform.resize(x)[0], (photos[1],), check_trace=False)
    for image in photos:
        expected = small_detector().transform.resize(image)[0]
        got = traced(image)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() < 1e-4


@pytest.mark.slow
def test_export_program_torchscript_in_a_run_folder(tmp_path, capsys):
    """tools/export.py on a checkpoint: the file is recorded in the run folder; parity is printed and met."""
    from detection.cli.export import main
    model = small_detector()
    (tmp_path / MANIFEST).write_text("model_final.pth\n")
    save_checkpoint(tmp_path / "model_final.pth", model, ["cat", "dog", "bus"], [1, 2, 3], iteration=1)
    main([str(tmp_path / "model_final.pth"), "--format", "torchscript",
          "--image", str(DATA / PHOTOS[0]), str(DATA / PHOTOS[1])])
    out = capsys.readouterr().out
    written = tmp_path / "model_final.torchscript.pt"
    assert written.is_file() and "model_final.torchscript.pt" in written_files(tmp_path)
    assert out.count(f"{DETECTIONS} detections: max box difference") == 2, out
    exported = load_exported(written)
    assert exported.format == "torchscript" and exported.class_names == ["cat", "dog", "bus"]
    assert_parity(model, exported, [photo(n) for n in PHOTOS])


def test_detectron2_compat_models_are_refused_by_name(tmp_path, photos):
    torch.manual_seed(0)
    model = build_detector(backbone="resnet18", num_classes=3, min_size=320, compat="detectron2").eval()
    with pytest.raises(UserError, match="compat: detectron2"):
        export_model(model, "onnx", tmp_path / "model.onnx", photos[0])
    assert not list(tmp_path.iterdir())


def test_exported_model_rejects_a_wrong_image_shape(tmp_path, photos):
    model = small_detector()
    path = export_model(model, "onnx", tmp_path / "m.onnx", photos[0])
    with pytest.raises(UserError, match="3 x H x W"):
        load_exported(path)(np.zeros((214, 320, 3), dtype=np.float32))
