"""ResNet and its plain (shortcut-free) baselines, from one table of stage specs.

The table below is the paper's Table 1 (He et al., 2015): every depth is a
block type plus the number of blocks in conv2_x..conv5_x. Parameter names
follow torchvision's ``resnet*`` (conv1, bn1, layer1..layer4, downsample.0/1,
fc), so torchvision state dicts load unchanged.

Shortcuts (Sec. 3.3 and 4.1 of the paper):
  A: identity everywhere; where the shape grows, zero-pad the extra channels
     and subsample spatially (parameter-free).
  B: identity where shapes match, 1x1 projection where they grow (default,
     what torchvision and detectron2 use).
  C: 1x1 projection on every block.
Plain nets (``plain18``/``plain34``) are the same stacks with no shortcut.
"""
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, C4Split
from .errors import check_choice
from .norm import norm_layer
from .pretrained import torchvision_weights
from .registry import register
from .sources import detectron2_weights, msra_weights, timm_weights


@dataclass(frozen=True)
class ResNetSpec:
    block: str            # "basic" (two 3x3 convs) or "bottleneck" (1x1-3x3-1x1)
    depths: tuple         # blocks in conv2_x, conv3_x, conv4_x, conv5_x
    residual: bool = True  # False: the paper's plain baseline


# The paper's Table 1.
SPECS = {
    "resnet18": ResNetSpec("basic", (2, 2, 2, 2)),
    "resnet34": ResNetSpec("basic", (3, 4, 6, 3)),
    "resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3)),
    "resnet101": ResNetSpec("bottleneck", (3, 4, 23, 3)),
    "resnet152": ResNetSpec("bottleneck", (3, 8, 36, 3)),
    "plain18": ResNetSpec("basic", (2, 2, 2, 2), residual=False),
    "plain34": ResNetSpec("basic", (3, 4, 6, 3), residual=False),
}
STAGE_WIDTHS = (64, 128, 256, 512)   # bottleneck output is 4x this
STAGE_STRIDES = (1, 2, 2, 2)         # first block of each stage
SHORTCUTS = ("A", "B", "C")
EXPANSION = {"basic": 1, "bottleneck": 4}


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample spatially and zero-pad new channels; no parameters."""

    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


def make_shortcut(option, cin, cout, stride, norm):
    """The shortcut of one block: None (identity), zero-padding or projection."""
    grows = stride != 1 or cin != cout
    if option == "C" or (option == "B" and grows):
        return nn.Sequential(conv1x1(cin, cout, stride), norm(cout))
    if option == "A" and grows:
        return ZeroPadShortcut(cout, stride)
    return None


class ResidualBlock(nn.Module):
    """out = relu(branch(x) + shortcut(x)); plain nets drop the addition."""

    def __init__(self, shortcut, residual):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut  # torchvision's name for the shortcut
        self.residual = residual

    def forward(self, x):
        out = self.branch(x)
        if self.residual:
            # in place, as torchvision: the branch output is a fresh tensor nothing else holds, and
            # skipping a new full-size allocation per block is ~2% of a detector's step on CPU
            out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3x3 convs (ResNet-18/34)."""

    def __init__(self, cin, width, stride, norm, shortcut, residual, stride_in_1x1=False):
        super().__init__(shortcut, residual)
        self.conv1, self.bn1 = conv3x3(cin, width, stride), norm(width)
        self.conv2, self.bn2 = conv3x3(width, width), norm(width)
        self.last_norm = "bn2"

    def branch(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152).

    torchvision and the Facebook models put the stride in the 3x3 conv; MSRA's
    original Caffe models put it in the first 1x1 (``stride_in_1x1=True``).
    """

    def __init__(self, cin, width, stride, norm, shortcut, residual, stride_in_1x1=False):
        super().__init__(shortcut, residual)
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1, self.bn1 = conv1x1(cin, width, s1), norm(width)
        self.conv2, self.bn2 = conv3x3(width, width, s3), norm(width)
        self.conv3, self.bn3 = conv1x1(width, width * 4), norm(width * 4)
        self.last_norm = "bn3"

    def branch(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(Backbone):
    """A ResNet (or plain net) exposing stages ``stem, res2, res3, res4, res5``."""

    classifier_prefix = "fc."  # the class-count dependent weights

    def __init__(self, spec: ResNetSpec, norm="bn", shortcut="B", num_classes=1000,
                 stride_in_1x1=False, zero_init_residual=False,
                 out_features=("res2", "res3", "res4", "res5")):
        super().__init__()
        check_choice("shortcut option", shortcut, SHORTCUTS)
        self.spec, self.norm = spec, norm
        make_norm = norm_layer(norm)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = make_norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._add_stage("stem", ["conv1", "bn1"], 64, 4)

        cin, stride_total = 64, 4
        for i, (depth, width, stride) in enumerate(zip(spec.depths, STAGE_WIDTHS, STAGE_STRIDES)):
            cout = width * EXPANSION[spec.block]
            blocks = []
            for b in range(depth):
                s = stride if b == 0 else 1
                short = make_shortcut(shortcut, cin, cout, s, make_norm) if spec.residual else None
                blocks.append(BLOCKS[spec.block](cin, width, s, make_norm, short, spec.residual, stride_in_1x1))
                cin = cout
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))  # res{i+2} is torchvision's layer{i+1}
            stride_total *= stride
            self._add_stage(f"res{i + 2}", [f"layer{i + 1}"], cout, stride_total)

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes) if num_classes else None
        self.out_features = out_features
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual):
        # torchvision's initialisation, so from-scratch runs compare like for like
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:  # each block starts as the identity (Goyal et al., 2017)
            for m in self.modules():
                if isinstance(m, ResidualBlock) and m.residual:  # a plain block has no identity to start as
                    nn.init.zeros_(getattr(m, m.last_norm).weight)

    def _forward_stage(self, name, x):
        if name == "stem":
            return self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return getattr(self, f"layer{int(name[3:]) - 1}")(x)

    def classify(self, x):
        """ImageNet logits, exactly as torchvision's ``ResNet.forward``."""
        if self.fc is None:
            raise RuntimeError("this backbone's classifier was dropped")
        for name in self.stage_names:
            x = self._forward_stage(name, x)
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def drop_classifier(self):
        self.fc = None
        return self

    def c4_split(self) -> C4Split:
        """res5 becomes the per-RoI stage, as in the paper's Appendix A.

        RoIAlign at stride 16 gives 14x14 RoIs; res5's stride 2 makes them 7x7
        feature maps (the detector pools them for the box predictor and, in
        Mask R-CNN's C4 variant, feeds them to the mask predictor).
        """
        res5 = self.layer4
        channels = self.stage_shapes()["res5"].channels
        self.drop_classifier()
        del self.layer4
        self._remove_stages_after("res4")
        self.out_features = ["res4"]
        return C4Split(trunk=self, roi_stage=res5, roi_channels=channels, pooler_resolution=14, roi_output="map")


# Weight sources of each ResNet, declared next to its builder; the first is what
# pretrained=True loads. Source names are what --pretrained takes. URLs, colour
# order, mean/std, options and hash checking: backbones.pretrained and .sources.
def _weights(*sources):
    return {source.source: source for source in sources}


_D2 = "COCO-Detection/faster_rcnn_"
WEIGHTS = {
    "resnet18": _weights(torchvision_weights("ResNet18_Weights", "IMAGENET1K_V1"),
                         timm_weights("resnet18.a1_in1k")),
    "resnet34": _weights(torchvision_weights("ResNet34_Weights", "IMAGENET1K_V1"),
                         timm_weights("resnet34.a1_in1k")),
    "resnet50": _weights(
        torchvision_weights("ResNet50_Weights", "IMAGENET1K_V1"),
        torchvision_weights("ResNet50_Weights", "IMAGENET1K_V2", source="torchvision_v2"),
        msra_weights(50),
        detectron2_weights("detectron2_R50_FPN_3x", _D2 + "R_50_FPN_3x", "137849458/model_final_280758.pkl"),
        detectron2_weights("detectron2_R50_C4_3x", _D2 + "R_50_C4_3x", "137849393/model_final_f97cb7.pkl"),
        timm_weights("resnet50.a1_in1k")),
    "resnet101": _weights(
        torchvision_weights("ResNet101_Weights", "IMAGENET1K_V1"),
        torchvision_weights("ResNet101_Weights", "IMAGENET1K_V2", source="torchvision_v2"),
        msra_weights(101),
        detectron2_weights("detectron2_R101_FPN_3x", _D2 + "R_101_FPN_3x", "137851257/model_final_f6e8b1.pkl"),
        detectron2_weights("detectron2_R101_C4_3x", _D2 + "R_101_C4_3x", "138204752/model_final_298dad.pkl"),
        timm_weights("resnet101.a1_in1k")),
    "resnet152": _weights(
        torchvision_weights("ResNet152_Weights", "IMAGENET1K_V1"),
        torchvision_weights("ResNet152_Weights", "IMAGENET1K_V2", source="torchvision_v2"),
        timm_weights("resnet152.a1_in1k")),
}
for _name in SPECS:  # every row of the table; plain nets have no published weights
    register(_name, pretrained=WEIGHTS.get(_name))(partial(ResNet, SPECS[_name]))
