"""What a whole detector costs: parameters, FLOPs, peak memory and latency per image.

    >>> from detection.model_cost import analyse_model
    >>> report = analyse_model(model, input_size=(800, 1333), runs=5)

- **Parameters**: all of them, and those with ``requires_grad`` (the frozen
  stem/res2 and frozen BatchNorm are not trainable when fine-tuning).
- **FLOPs**: ``torch.utils.flop_counter.FlopCounterMode`` (PyTorch's own
  counter, the one ``backbones.complexity`` counts Table 1 with) over one
  eval-mode forward pass of the whole detector on one image: resize,
  backbone, FPN, RPN, RoI heads (on every proposal the RPN keeps) and, for
  Mask R-CNN, the mask head on the final detections. It counts
  convolutions, transposed convolutions and matrix products (FC layers) as
  2 FLOPs per multiply-add, so ``GFLOPs = 2 x GMACs`` (both are reported);
  BatchNorm, activations, pooling, RoIAlign, NMS, interpolation and
  additions are not counted. The mask head's share depends on the number of
  detections, which is reported beside it.
- **Peak memory** of one inference, CPU: in a fresh Python process that
  builds the model and the image, the resident-set high-water mark is reset
  (Linux: ``/proc/self/clear_refs``), one forward pass runs, and the peak is
  ``VmHWM`` after it minus ``VmRSS`` before it: everything the pass made
  resident (activations, workspaces, the allocator's and oneDNN's caches),
  not the weights. ``tracemalloc`` would not see PyTorch's allocator. The
  same for onnxruntime on the exported graph. CUDA: ``torch.cuda.
  max_memory_allocated`` minus the memory allocated before the pass
  (tensors only; the CUDA context and cached blocks are not counted).
- **Latency**: the median wall time of ``runs`` single-image forward passes
  after ``warmup`` passes, for PyTorch eager (fp32; on CUDA also fp16 under
  ``torch.autocast``) and the exported ONNX graph in onnxruntime (CPU; CUDA
  when onnxruntime has its CUDA provider). On the CPU both use the same
  number of threads (``torch.get_num_threads()``).

The image is a smooth random one (seeded), resized by the model's transform
as any input is: ``input_size`` is the image's size, ``network_size`` the
padded size the backbone ran at. The score threshold is set to 0 while
measuring, so every image gives ``box_detections_per_img`` detections (100
by default) and the mask head runs on all of them: the cost at the most
detections the model returns, the same for random and trained weights.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from backbones.complexity import count_parameters
from backbones.errors import UserError

PARTS = ("backbone", "rpn", "roi_heads")  # torchvision's GeneralizedRCNN submodules, for the FLOP breakdown
FLOPS_METHOD = ("torch.utils.flop_counter.FlopCounterMode: convolutions, transposed convolutions and matrix "
                "products, 2 FLOPs per multiply-add; not counted: norms, activations, pooling, RoIAlign, NMS, "
                "interpolation, additions")
CPU_MEMORY_METHOD = ("fresh process: VmHWM after one forward pass minus VmRSS before it (high-water mark reset "
                     "through /proc/self/clear_refs); activations, workspaces and caches, not the weights")
CUDA_MEMORY_METHOD = "torch.cuda.max_memory_allocated during one forward pass minus memory_allocated before it"


def synthetic_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth random 3 x H x W RGB image in [0, 1] (the same for a given seed and size)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 12, 12, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[0]


def parameter_counts(model) -> dict:
    return {"total": count_parameters(model),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def count_flops(model, image) -> dict:
    """FLOPs of one eval-mode forward pass (see the module docstring), in total and per part."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        detections = model([image])[0]
        network = model.transform([image])[0].tensors.shape[-2:]
    total = counter.get_total_flops()
    counts = counter.get_flop_counts()
    prefix = type(model).__name__
    by_part = {part: sum(counts.get(f"{prefix}.{part}", {}).values()) / 1e9 for part in PARTS}
    if getattr(model, "roi_heads", None) is not None and model.roi_heads.has_mask():
        by_part["mask head (in roi_heads)"] = sum(
            sum(counts.get(f"{prefix}.roi_heads.{m}", {}).values()) for m in ("mask_head", "mask_predictor")) / 1e9
    return {"gflops": total / 1e9, "gmacs": total / 2e9, "gflops_by_part": by_part,
            "detections": len(detections["boxes"]), "network_size": list(network), "method": FLOPS_METHOD}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _peak_in_this_process(run) -> float:
    """MB the process's resident set grew to during ``run()`` above what it held before."""
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    run()
    return (_status_kb("VmHWM") - before) / 1024


def _memory_child():
    """The fresh process of :func:`cpu_peak_memory`: a JSON spec on stdin, the peak in MB on stdout."""
    spec = json.loads(sys.stdin.read())
    torch.set_num_threads(spec["threads"])
    image = synthetic_image(*spec["size"])
    if spec["kind"] == "onnx":
        from .export import load_exported
        exported = load_exported(spec["path"], threads=spec["threads"])
        run = lambda: exported(image)  # noqa: E731
    else:
        from .detector import DetectorConfig, build_detector
        torch.manual_seed(0)
        model = build_detector(DetectorConfig.from_dict(spec["config"]), load_pretrained=False).eval()
        if spec.get("state_dict"):
            model.load_state_dict(torch.load(spec["state_dict"], map_location="cpu", weights_only=True))

        def run():
            with torch.no_grad():
                model([image])
    print(json.dumps({"peak_mb": _peak_in_this_process(run)}))


def cpu_peak_memory(kind: str, size, threads: int, config: Optional[dict] = None, state_dict=None,
                    path=None) -> Optional[float]:
    """Peak MB of one CPU inference in a fresh process (``kind`` "pytorch": the model ``config`` describes,
    with ``state_dict`` (a file) when given; "onnx": the graph at ``path``); None where /proc/self/clear_refs
    cannot be written (not Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    spec = {"kind": kind, "size": list(size), "threads": threads, "config": config,
            "state_dict": str(state_dict) if state_dict else None, "path": str(path) if path else None}
    done = subprocess.run([sys.executable, "-c", "from detection.model_cost import _memory_child; _memory_child()"],
                          input=json.dumps(spec), capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        raise RuntimeError(f"the memory measurement failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def cuda_peak_memory(run) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def median_latency(run, runs: int, warmup: int, cuda: bool = False) -> dict:
    """Median (and min, max) milliseconds of ``runs`` calls of ``run()`` after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "runs": runs,
            "warmup": warmup}


def _eager_runs(model, image, device):
    """(name, dtype, run) for PyTorch eager on ``device``: fp32, and fp16 under autocast on CUDA."""
    model = model.to(device).eval()
    image = image.to(device)

    def fp32():
        with torch.no_grad():
            model([image])
    yield "fp32", fp32
    if device.type == "cuda":
        def fp16():
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
                model([image])
        yield "fp16 (autocast)", fp16


def analyse_model(model, input_size=None, device="cpu", runs: int = 5, warmup: int = 1, export: bool = True,
                  memory: bool = True, state_dict=None, log=print) -> dict:
    """The cost report of ``model`` (a detector of :func:`detection.build_detector`); see the module docstring.

    ``input_size``: (H, W) of the image (default: the configured test size, ``min_size`` x ``max_size``).
    ``state_dict``: a file holding the model's weights, for the fresh process that measures CPU memory
    (default: the model's configuration with random weights; the cost does not depend on the values,
    except the mask head's through the number of detections).
    """
    config = model.config
    if input_size is None:
        low = config.min_size if isinstance(config.min_size, int) else config.min_size[-1]
        input_size = (low, config.max_size)
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device here; use --device cpu")
    threads = torch.get_num_threads()
    image = synthetic_image(*input_size)
    model = model.cpu().eval()
    kept_threshold = model.roi_heads.score_thresh
    model.roi_heads.score_thresh = 0.0  # the most detections (see the module docstring)
    try:
        return _analyse(model, config, input_size, image, device, threads, runs, warmup, export, memory, state_dict,
                        log)
    finally:
        model.roi_heads.score_thresh = kept_threshold


def _analyse(model, config, input_size, image, device, threads, runs, warmup, export, memory, state_dict, log):
    log(f"counting FLOPs at {input_size[0]}x{input_size[1]} ...")
    report = {
        "model": {"backbone": config.backbone, "neck": config.neck, "mask": config.mask,
                  "num_classes": config.num_classes, "min_size": config.min_size, "max_size": config.max_size},
        "input_size": list(input_size),
        "parameters": parameter_counts(model),
        "flops": count_flops(model, image),
        "memory": {},
        "latency": [],
        "machine": {"cpu_count": os.cpu_count(), "threads": threads, "platform": platform.platform(),
                    "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
    }
    if memory and device.type == "cpu":
        log("measuring peak memory (a fresh process) ...")
        peak = cpu_peak_memory("pytorch", input_size, threads, config={**config.to_dict(), "box_score_thresh": 0.0},
                               state_dict=state_dict)
        report["memory"]["pytorch eager cpu fp32"] = {"peak_mb": peak, "method": CPU_MEMORY_METHOD}
    for dtype, run in _eager_runs(model, image, device):
        if memory and device.type == "cuda":
            report["memory"][f"pytorch eager cuda {dtype}"] = {"peak_mb": cuda_peak_memory(run),
                                                               "method": CUDA_MEMORY_METHOD}
        log(f"timing PyTorch eager {device.type} {dtype} ({warmup} warm-up, {runs} runs) ...")
        report["latency"].append({"runtime": "pytorch eager", "device": device.type, "dtype": dtype,
                                  **median_latency(run, runs, warmup, cuda=device.type == "cuda")})
    model.cpu()
    if export:
        report.update(_onnx_costs(model, image, input_size, device, runs, warmup, threads, memory, log))
    return report


def _onnx_costs(model, image, input_size, device, runs, warmup, threads, memory, log) -> dict:
    from .export import export_model, load_exported
    import onnxruntime
    latency, peaks = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        log("exporting to ONNX ...")
        start = time.perf_counter()
        path = export_model(model, "onnx", Path(tmp) / "model.onnx", image)
        seconds = time.perf_counter() - start
        devices = ["cpu"] + (["cuda"] if device.type == "cuda"
                             and "CUDAExecutionProvider" in onnxruntime.get_available_providers() else [])
        for where in devices:
            exported = load_exported(path, device=where, threads=threads if where == "cpu" else None)
            log(f"timing onnxruntime {where} fp32 ({warmup} warm-up, {runs} runs) ...")
            latency.append({"runtime": f"onnxruntime {onnxruntime.__version__}", "device": where, "dtype": "fp32",
                            **median_latency(lambda: exported(image), runs, warmup)})
        if memory:
            log("measuring onnxruntime's peak memory (a fresh process) ...")
            peaks["onnxruntime cpu fp32"] = {"peak_mb": cpu_peak_memory("onnx", input_size, threads, path=path),
                                             "method": CPU_MEMORY_METHOD}
    return {"export_seconds": seconds, "latency_exported": latency, "memory_exported": peaks}


def format_report(report: dict) -> str:
    """The report as text for people."""
    m, f, p = report["model"], report["flops"], report["parameters"]
    name = f"{m['backbone']}-{m['neck'].upper()} {'Mask' if m['mask'] else 'Faster'} R-CNN"
    h, w = report["input_size"]
    lines = [f"{name}, {m['num_classes']} classes, image {h}x{w} (network input {f['network_size'][0]}x"
             f"{f['network_size'][1]}, padded)",
             f"  parameters: {p['total'] / 1e6:.2f} M ({p['trainable'] / 1e6:.2f} M trainable)",
             f"  FLOPs: {f['gflops']:.1f} GFLOPs = {f['gmacs']:.1f} GMACs x 2 ("
             + ", ".join(f"{k} {v:.1f}" for k, v in f["gflops_by_part"].items())
             + f"; {f['detections']} detections)",
             f"    counted with {f['method']}"]
    if f["detections"] == 0:
        lines.append("  warning: no detections, so the RoI heads ran on nothing and their cost is missing "
                     "(random weights whose features are not finite?)")
    memory = {**report["memory"], **report.get("memory_exported", {})}
    for key, value in memory.items():
        peak = "n/a (needs Linux /proc)" if value["peak_mb"] is None else f"{value['peak_mb']:.0f} MB"
        lines.append(f"  peak memory, {key}: {peak}")
    if memory:
        lines.append(f"    measured as: {next(iter(memory.values()))['method']}")
    for row in report["latency"] + report.get("latency_exported", []):
        lines.append(f"  latency, {row['runtime']} {row['device']} {row['dtype']}: {row['median_ms']:.0f} ms/image "
                     f"(median of {row['runs']} after {row['warmup']} warm-up; min {row['min_ms']:.0f}, "
                     f"max {row['max_ms']:.0f})")
    if "export_seconds" in report:
        lines.append(f"  ONNX export took {report['export_seconds']:.0f} s")
    mach = report["machine"]
    lines.append(f"  machine: {mach['cpu_count']} CPU cores, {mach['threads']} threads, torch {mach['torch']}"
                 + (f", {mach['gpu']}" if mach["gpu"] else ""))
    return "\n".join(lines)
