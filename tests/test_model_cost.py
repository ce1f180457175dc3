"""The cost report of a whole detector (detection/model_cost.py, tools/analyze_model.py): FLOPs checked against
fvcore's counter and against the RPN head's multiply-adds worked out by hand, memory and latency measured."""
import json

import torch

from detection import build_detector
from detection.model_cost import analyse_model, count_flops, parameter_counts, synthetic_image


def small_detector(**options):
    torch.manual_seed(0)
    return build_detector(backbone="resnet18", num_classes=3, min_size=160, max_size=224, rpn_pre_nms_top_n_test=100,
                          rpn_post_nms_top_n_test=50, box_detections_per_img=10, **options).eval()


def test_flops_agree_with_fvcore_and_with_the_rpn_heads_arithmetic():
    from fvcore.nn import FlopCountAnalysis
    model = small_detector()
    image = synthetic_image(160, 200)
    flops = count_flops(model, image)
    assert flops["network_size"] == [160, 224]  # 160 x 200 padded to a multiple of 32
    assert flops["gflops"] == 2 * flops["gmacs"]
    # the backbone (ResNet-18 + FPN) is convolutions only; fvcore counts one "flop" per multiply-add
    batch = model.transform([image])[0].tensors
    fv = FlopCountAnalysis(model.backbone, batch).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert abs(flops["gflops_by_part"]["backbone"] * 1e9 - 2 * fv.by_operator()["conv"]) < 1e3
    # RPN head: a 3x3 conv 256 -> 256 and 1x1 convs to 3 objectness and 12 box outputs on every FPN level
    with torch.no_grad():
        levels = model.backbone(batch).values()
    macs = sum(f.shape[-2] * f.shape[-1] * 256 * (256 * 9 + 3 + 12) for f in levels)
    assert abs(flops["gflops_by_part"]["rpn"] * 1e9 - 2 * macs) < 1e3
    assert flops["gflops"] > flops["gflops_by_part"]["backbone"] + flops["gflops_by_part"]["rpn"]  # + RoI heads


def test_parameters_total_and_trainable():
    model = small_detector(norm="frozen_bn", freeze_at=2)
    counts = parameter_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    # freeze_at 2: the stem (conv1) and res2 (layer1); frozen BatchNorm has no parameters
    stem_res2 = sum(p.numel() for n, p in model.named_parameters()
                    if n.startswith(("backbone.body.conv1.", "backbone.body.layer1.")))
    assert stem_res2 > 0 and counts["trainable"] == counts["total"] - stem_res2


def test_report_measures_memory_and_latency_of_pytorch_and_onnx():
    model = small_detector(mask=True)
    report = analyse_model(model, (160, 200), runs=2, warmup=1, log=lambda text: None)
    assert model.roi_heads.score_thresh == 0.05  # restored
    assert report["flops"]["detections"] == 10  # the most detections: the mask head ran on all of them
    assert report["flops"]["gflops_by_part"]["mask head (in roi_heads)"] > 0
    assert [(r["runtime"].split()[0], r["device"]) for r in report["latency"] + report["latency_exported"]] == \
        [("pytorch", "cpu"), ("onnxruntime", "cpu")]
    assert all(r["median_ms"] > 0 and r["runs"] == 2 for r in report["latency"] + report["latency_exported"])
    peaks = [m["peak_mb"] for m in [*report["memory"].values(), *report["memory_exported"].values()]]
    assert len(peaks) == 2 and all(p > 1 for p in peaks)  # megabytes of activations, not zero


def test_analyze_model_program_writes_json(tmp_path, capsys):
    from detection.cli.analyze_model import main
    out = tmp_path / "cost.json"
    main(["--config", "configs/shapes_demo.yaml", "--backbone", "resnet18", "--input-size", "96x128", "--runs", "1",
          "--warmup", "0", "--no-export", "--no-memory", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["input_size"] == [96, 128] and report["model"]["backbone"] == "resnet18"
    assert report["flops"]["gflops"] > 0 and len(report["latency"]) == 1
    assert "GFLOPs" in capsys.readouterr().out
