"""Which of the paper's claims a suite's numbers support, compared seed by seed.

Each claim is a set of comparisons "A is better than B" on one measure: a pretraining error (lower is
better) or a detection metric (higher is better). A comparison is made per seed, on the runs of the same
seed (same data order and initial heads), and reads:

- **holds**: A is better in every seed measured;
- **fails**: A is not better on average (mean difference <= 0);
- **mixed**: better on average, not in every seed.

A claim is *supported* when every comparison holds, *contradicted* when every one fails, *partly supported*
otherwise, and *not measured* without numbers. With 3 seeds "every seed" is a low bar; the report prints
the differences so the reader can weigh them.
"""
from dataclasses import dataclass

from .experiments import METRICS
from .pretraining_curves import final_errors, pretraining_runs
from .seeds import Spread, by_seed

ERRORS = {"val_error": "pretraining validation top-1 error", "train_error": "pretraining training top-1 error"}


@dataclass(frozen=True)
class Comparison:
    better: str          # a backbone (pretraining errors) or an experiment (detection metrics)
    worse: str
    measure: str         # "val_error" | "train_error" | a METRICS key


@dataclass(frozen=True)
class Claim:
    text: str
    comparisons: tuple



SHAPES_CLAIMS = (
    Claim("Residual nets have lower error than plain nets of the same depth (Table 2, Fig. 4), and transfer "
          "better (Sec. 4.3)",
          (Comparison("resnet18", "plain18", "val_error"), Comparison("resnet34", "plain34", "val_error"),
           Comparison("resnet18_pretrained", "plain18_pretrained", "voc_map50"),
           Comparison("resnet34_pretrained", "plain34_pretrained", "voc_map50"))),
    Claim("Degradation: the deeper plain net has higher training and validation error (plain-34 vs plain-18, "
          "Fig. 4 left)",
          (Comparison("plain18", "plain34", "train_error"), Comparison("plain18", "plain34", "val_error"))),
    Claim("Deeper residual nets are better: 34 over 18 layers (Fig. 4 right) and 50 over 34 (Table 3), in "
          "pretraining and in detection (Table 2 of the COCO results: 101 over 50)",
          (Comparison("resnet34", "resnet18", "val_error"), Comparison("resnet50", "resnet34", "val_error"),
           Comparison("resnet34_pretrained", "resnet18_pretrained", "voc_map50"),
           Comparison("resnet50_pretrained", "resnet34_pretrained", "voc_map50"))),
    Claim("Pretrained features help the detector (the premise of Sec. 4.3 and Appendix A: ImageNet "
          "pretraining, then fine-tuning)",
          (Comparison("resnet18_pretrained", "resnet18_scratch", "voc_map50"),
           Comparison("resnet18_pretrained", "resnet18_scratch", "coco_ap"))),
    Claim("This study's pretraining recipe: the bottleneck ResNet-50 converges at least as well as ResNet-18 "
          "(not the paper's claim: a check that deeper nets are not under-trained here)",
          (Comparison("resnet50", "resnet18", "val_error"),)),
)

CLAIMS = {"shapes": SHAPES_CLAIMS}  # the claims each suite's report judges


def per_seed(measure: str, name: str, outcomes, runs_root, seeds) -> dict:
    """``{seed: value}`` of one side of a comparison."""
    if measure in ERRORS:
        return final_errors(pretraining_runs(runs_root, seeds, name))[measure.split("_")[0]]
    return by_seed(outcomes).get((name, measure), {})


def _sides(comparison, outcomes, runs_root, seeds):
    return (per_seed(comparison.measure, comparison.better, outcomes, runs_root, seeds),
            per_seed(comparison.measure, comparison.worse, outcomes, runs_root, seeds))


def compare(comparison: Comparison, outcomes, runs_root, seeds):
    """The per-seed improvements of ``better`` over ``worse`` (positive: the claimed direction) and a verdict."""
    return _judge(comparison, *_sides(comparison, outcomes, runs_root, seeds))


def _judge(comparison, a: dict, b: dict):
    sign = -1 if comparison.measure in ERRORS else 1
    diffs = tuple(sign * (a[s] - b[s]) for s in sorted(set(a) & set(b)))
    if not diffs:
        return diffs, "not measured"
    mean = sum(diffs) / len(diffs)
    if all(d > 0 for d in diffs):
        return diffs, "holds"
    return diffs, "fails" if mean <= 0 else "mixed"


def _line(comparison, a: dict, b: dict, diffs, verdict) -> str:
    what = ERRORS.get(comparison.measure) or METRICS[comparison.measure]
    if not diffs:
        return f"  - {comparison.better} vs {comparison.worse}, {what}: not measured"
    a, b = Spread(tuple(a.values())), Spread(tuple(b.values()))
    word = "lower" if comparison.measure in ERRORS else "higher"
    spread = Spread(diffs)
    agree = sum(d > 0 for d in diffs)
    return (f"  - {comparison.better} vs {comparison.worse}, {what}: {a.text()} vs {b.text()}; "
            f"{spread.text()} points {word} ({agree} of {len(diffs)} seeds): **{verdict}**")


def claims_section(claims, outcomes, runs_root, seeds) -> list:
    """Markdown lines: each claim's verdict, then each comparison with its numbers."""
    lines = []
    for claim in claims:
        results = []
        for c in claim.comparisons:
            a, b = _sides(c, outcomes, runs_root, seeds)
            results.append((c, a, b, *_judge(c, a, b)))
        verdicts = [r[-1] for r in results if r[-1] != "not measured"]
        if not verdicts:
            overall = "not measured"
        elif all(v == "holds" for v in verdicts) and len(verdicts) == len(results):
            overall = "supported"
        elif all(v == "fails" for v in verdicts):
            overall = "contradicted"
        else:
            overall = "partly supported"
        lines.append(f"- {claim.text}: **{overall}**")
        lines += [_line(*r) for r in results]
    return lines + [""]
