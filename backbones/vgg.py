"""VGG-16 and VGG-19 (Simonyan & Zisserman): the paper's detection baseline and
its Table 1 comparison.

Parameter names follow torchvision's ``vgg16``/``vgg19`` (``features.N``,
``classifier.N``). Stages ``conv1..conv5`` end at the last ReLU of each conv
block, before its max-pool, so ``conv5`` is conv5_3 (conv5_4 in VGG-19) at
stride 16: the feature map Faster R-CNN's VGG-16 model pools RoIs from (pool5
is dropped there).
"""
from functools import partial

import torch
from torch import nn

from .base import Backbone, C4Split
from .pretrained import torchvision_weights
from .registry import register

# torchvision's configurations "D" (VGG-16) and "E" (VGG-19): channels per conv, "M" for a max-pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")


class VGG(Backbone):
    classifier_prefix = "classifier.6."  # fc8; fc6/fc7 do not depend on the class count
    def __init__(self, layers=VGG16_LAYERS, norm="bn", num_classes=1000,
                 out_features=("conv3", "conv4", "conv5")):
        """``norm`` is accepted for a uniform interface; these VGGs have no normalisation layers."""
        super().__init__()
        self.norm = norm
        modules, cin, start, stride = [], 3, 0, 1
        for spec in layers:
            if spec == "M":
                modules.append(nn.MaxPool2d(2, 2))
                continue
            modules += [nn.Conv2d(cin, spec, 3, padding=1), nn.ReLU(inplace=True)]
            cin = spec
        self.features = nn.Sequential(*modules)
        pools = [i for i, m in enumerate(modules) if isinstance(m, nn.MaxPool2d)]
        self._bounds = {}  # stage name -> (first, last + 1) index into features
        for k, end in enumerate(pools):
            # a stage = the previous block's pool (if any) + this block's convs
            self._bounds[f"conv{k + 1}"] = (start, end)
            self._add_stage(f"conv{k + 1}", [f"features.{i}" for i in range(start, end)],
                            _last_conv(modules[:end]), stride)
            start, stride = end, stride * 2
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes))
        self.out_features = out_features
        self._init_weights()

    def _forward_stage(self, name, x):
        start, end = self._bounds[name]
        for i in range(start, end):
            x = self.features[i](x)
        return x

    def _init_weights(self):  # torchvision's
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def classify(self, x):
        """ImageNet logits, exactly as torchvision's ``VGG.forward``."""
        x = self.features(x)
        return self.classifier(torch.flatten(self.avgpool(x), 1))

    def drop_classifier(self):
        del self.classifier
        return self

    def c4_split(self) -> C4Split:
        """Faster R-CNN's VGG-16 layout: RoI pooling on conv5's last conv (7x7), then fc6 and fc7.

        fc6/fc7 keep their ImageNet weights; fc8 is dropped. They return one
        vector per RoI: VGG has no conv stage to run per RoI.
        """
        fc6, fc7 = self.classifier[0], self.classifier[3]
        roi_stage = nn.Sequential(nn.Flatten(1), fc6, nn.ReLU(True), nn.Dropout(), fc7, nn.ReLU(True), nn.Dropout())
        self.drop_classifier()
        self._remove_stages_after("conv5")
        self.out_features = ["conv5"]
        return C4Split(trunk=self, roi_stage=roi_stage, roi_channels=fc7.out_features, pooler_resolution=7,
                       roi_output="vector")


def _last_conv(modules):
    return [m for m in modules if isinstance(m, nn.Conv2d)][-1].out_channels


# One builder, parametrised by configuration; torchvision's ImageNet weights for each.
for _name, _layers, _enum in (("vgg16", VGG16_LAYERS, "VGG16_Weights"), ("vgg19", VGG19_LAYERS, "VGG19_Weights")):
    _weights = {"torchvision": torchvision_weights(_enum, "IMAGENET1K_V1")}
    register(_name, pretrained=_weights)(partial(VGG, _layers))
