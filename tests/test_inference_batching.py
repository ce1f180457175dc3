"""The evaluation path (detection.engine.inference.predict): several images per forward pass give the same
predictions as one at a time, so does a checkpoint's model run channels_last on CPU (the tools' default), and
an image's masks are run-length encoded in one pycocotools call that gives the RLEs of the per-object encoding.

"The same" is to float rounding, not bit for bit: PyTorch's CPU convolutions pick their algorithm by batch
size and memory format (torchvision's resnet18 on 4 images vs each alone differs by ~3e-6 in its logits),
which moves boxes by ~1e-4 px and scores by ~5e-7 on shapes_val; labels and order stay the same, and a mask
pixel whose probability is within rounding of 0.5 may flip (2 of 392,615 foreground pixels, channels_last).
"""
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from detection.detector import build_detector
from detection.engine.inference import predict
from detection.evaluation.coco import encode_masks

CLASSES = ["circle", "square", "triangle", "star", "hexagon"]
SMALL = dict(backbone="resnet18", num_classes=5, min_size=128, max_size=160, rpn_pre_nms_top_n_test=100,
             rpn_post_nms_top_n_test=50, box_representation_size=64, mask_head_layers=(32,), box_detections_per_img=20)


def assert_same_predictions(got, expected):
    """The same detections in the same order, to float rounding (see the module docstring)."""
    assert list(got) == list(expected)
    differing, foreground = 0, 0
    for image_id, want in expected.items():
        have = got[image_id]
        np.testing.assert_array_equal(have["labels"], want["labels"])
        np.testing.assert_allclose(have["boxes"], want["boxes"], rtol=0, atol=1e-3)  # pixels of 192 x 192
        np.testing.assert_allclose(have["scores"], want["scores"], rtol=0, atol=1e-5)
        assert len(have["rles"]) == len(want["rles"])
        for a, b in zip(have["rles"], want["rles"]):
            a, b = mask_utils.decode(a), mask_utils.decode(b)
            differing, foreground = differing + int((a != b).sum()), foreground + int(b.sum())
    assert differing <= 1e-4 * foreground, (differing, foreground)


def per_object_rles(masks, threshold):
    """The reference: pycocotools' documented use, one Fortran (H, W, 1) uint8 array per object."""
    rles = []
    for mask in np.asarray(masks)[:, 0] > threshold:
        rle = mask_utils.encode(np.asfortranarray(mask[:, :, None], dtype=np.uint8))[0]
        rle["counts"] = rle["counts"].decode("ascii")
        rles.append(rle)
    return rles


def probability_masks(rng, n, height, width):
    """(n, 1, H, W) float32 probabilities: blobs of random boxes, plus an empty, a full and an at-threshold mask."""
    masks = np.zeros((n, 1, height, width), np.float32)
    for k in range(n):
        x0, y0 = rng.integers(0, width - 2), rng.integers(0, height - 2)
        x1, y1 = rng.integers(x0 + 1, width + 1), rng.integers(y0 + 1, height + 1)
        masks[k, 0, y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0))
    if n >= 3:
        masks[0] = 0.0
        masks[1] = 1.0
        masks[2, 0, :, : width // 2] = 0.5  # exactly the threshold: background (strict '>')
    return masks


@pytest.mark.parametrize("n, height, width", [(0, 40, 30), (1, 31, 47), (7, 64, 48), (40, 97, 120)])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_one_encode_call_per_image_gives_the_per_object_rles(n, height, width, as_tensor):
    masks = probability_masks(np.random.default_rng(n), n, height, width)
    expected = per_object_rles(masks, 0.5)
    given = torch.from_numpy(masks) if as_tensor else masks
    assert encode_masks(given, n, 0.5, "img") == expected
    assert encode_masks(given[:, 0], n, 0.5, "img") == expected  # (M, H, W) too
    if n >= 3:
        assert expected[0]["counts"] != expected[1]["counts"]  # a case that tells masks apart
        assert mask_utils.area(expected[2]) < mask_utils.area(expected[1])


def test_batch_sizes_1_and_4_give_the_same_predictions_on_shapes_val(small_shapes):
    from detection.run.data import evaluation_dataset
    dataset = evaluation_dataset("shapes_val", CLASSES, "test")
    torch.manual_seed(0)
    model = build_detector(mask=True, **SMALL).eval()
    one = predict(model, dataset, batch_size=1, progress=False)
    four = predict(model, dataset, batch_size=4, progress=False)
    assert list(one) == list(dataset.image_ids)
    assert sum(len(p["boxes"]) for p in one.values()) > 20  # random weights, but detections to compare
    assert_same_predictions(four, one)


def test_checkpoint_evaluation_on_cpu_runs_channels_last_with_the_same_predictions(small_shapes, tmp_path):
    """Evaluating a checkpoint on CPU converts its model to channels_last (NHWC: faster there,
    bench/inference_speed.py); the predictions are the NCHW model's to float rounding."""
    from detection.engine.checkpoint import save_checkpoint
    from detection.run.evaluate import checkpoint_and_dataset
    torch.manual_seed(0)
    model = build_detector(mask=True, **SMALL).eval()
    ckpt = save_checkpoint(tmp_path / "model_final.pth", model, CLASSES, [1, 2, 3, 4, 5], 0,
                           train_config={"data": {"train": "shapes"}})
    loaded, dataset = checkpoint_and_dataset(ckpt, "shapes_val", "cpu")
    conv = next(m for m in loaded.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    nchw = predict(model, dataset, progress=False)
    nhwc = predict(loaded, dataset, progress=False)
    assert sum(len(p["boxes"]) for p in nchw.values()) > 20
    assert_same_predictions(nhwc, nchw)
