"""Parameter and multiply-add counts: hand-computed cases, torchvision, the paper's Table 1, the tool."""
import json
from functools import partial

import pytest
import torchvision
from torch import nn

import backbones
from backbones import registry
from backbones.complexity import PAPER_GMACS, build_shapes_only, count_parameters, multiply_adds, stage_shapes
from backbones.resnet import ResNet, ResNetSpec
from detection.cli import analyze_backbones


def test_conv_and_linear_counts_match_the_formulas():
    # conv: Cout * Cin * k * k multiply-adds per output pixel; a bias adds parameters, not multiply-adds
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)  # 10x10 -> 5x5
    assert multiply_adds(conv, size=10) == 8 * 3 * 3 * 3 * 5 * 5
    assert count_parameters(conv) == 8 * 3 * 3 * 3 + 8
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    assert multiply_adds(linear, size=4) == 48 * 5
    assert count_parameters(linear) == 48 * 5 + 5


def test_resnet18_parameters_match_torchvision_and_the_classifier_is_fc():
    net = build_shapes_only("resnet18")
    assert count_parameters(net) == sum(p.numel() for p in torchvision.models.resnet18().parameters())
    assert count_parameters(net) - count_parameters(net, include_classifier=False) == 512 * 1000 + 1000


def test_shape_only_models_count_like_real_ones():
    real = backbones.build("resnet18", pretrained="none")
    real.train()
    assert multiply_adds(real) == multiply_adds(build_shapes_only("resnet18"))
    assert real.training  # restored after counting
    assert stage_shapes(real)["res5"] == (512, 7, 7) and real.out_features == ["res2", "res3", "res4", "res5"]


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_table_1_is_reproduced_within_5_percent(name):
    # stride_in_1x1=True is the paper's (Caffe) bottleneck layout; basic blocks ignore it
    gmacs = multiply_adds(build_shapes_only(name, stride_in_1x1=True)) / 1e9
    paper, _ = PAPER_GMACS[name]
    assert abs(gmacs - paper) / paper <= 0.05, (name, gmacs, paper)


def test_torchvision_bottleneck_layout_costs_more():
    paper = multiply_adds(build_shapes_only("resnet50", stride_in_1x1=True))
    torchvision_layout = multiply_adds(build_shapes_only("resnet50"))
    assert 1.05 < torchvision_layout / paper < 1.07  # ~4.09 vs ~3.86 GMACs


def _tool(*args, monkeypatch, capsys):
    analyze_backbones.main(list(args))
    return capsys.readouterr().out


def test_tool_json_has_a_row_per_name(monkeypatch, capsys):
    rows = json.loads(_tool("--json", "--names", "resnet50", "plain18", monkeypatch=monkeypatch, capsys=capsys))
    assert [r["name"] for r in rows] == ["resnet50", "plain18"]
    r50 = rows[0]
    assert r50["options"] == {"stride_in_1x1": True} and r50["gmacs"] < r50["gmacs_torchvision_layout"]
    assert r50["within_tolerance"] and r50["stage_shapes"]["res5"] == [2048, 7, 7]
    assert rows[1]["gmacs_torchvision_layout"] is None  # basic blocks: the layout does not matter


def test_tool_table_covers_the_registry_and_names_without_a_paper_figure(monkeypatch, capsys):
    # a registered name the paper has no figure for: shown with "—", left out of the count
    tiny = partial(ResNet, ResNetSpec("basic", (1, 1, 1, 1)))
    monkeypatch.setitem(registry._REGISTRY, "tiny", registry.Entry("tiny", tiny))
    out = _tool(monkeypatch=monkeypatch, capsys=capsys).splitlines()
    listed = [line.split()[0] for line in out[1:-1]]
    assert listed == backbones.names()
    assert out[listed.index("tiny") + 1].endswith("—  —")
    compared = len([n for n in backbones.names() if n in PAPER_GMACS])
    assert out[-1].startswith(f"{compared} of {compared} backbones with a paper figure are within 5%")


def test_unknown_name_is_a_one_line_error(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        analyze_backbones.main(["--names", "resnet5"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("error: unknown backbone 'resnet5'. Did you mean 'resnet50'? "
                                       f"Valid choices: {', '.join(backbones.names())}\n")
