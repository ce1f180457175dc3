"""Published ResNet weights beyond torchvision's, as declarations for the registry.

- ``msra``: MSRA's original Caffe ResNets (He et al.) as converted for
  Detectron, the ImageNet initialisation of detectron2's model zoo.
- ``detectron2_*``: detectron2 model-zoo detectors; their backbone is used.
- ``timm_a1_in1k``: timm's ResNet Strikes Back (A1 recipe) ImageNet weights.

Both Facebook kinds follow detectron2's config for MSRA-based models:
PIXEL_MEAN [103.530, 116.280, 123.675] and PIXEL_STD [1, 1, 1] on BGR 0-255
pixels, RESNETS.STRIDE_IN_1X1 True. None of these publishers puts a hash in
its file names and the files could not be fetched where this was written, so
``sha256`` is left unknown rather than made up: backbones.download records
the hash at first download and checks it from then on.
"""
from .pretrained import CAFFE_MEAN, CAFFE_STD, IMAGENET_MEAN, IMAGENET_STD, PretrainedWeights

FACEBOOK = "https://dl.fbaipublicfiles.com/detectron2/"
HUGGING_FACE = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"
_MSRA_CONVENTIONS = dict(mean=CAFFE_MEAN, std=CAFFE_STD, input_space="BGR", options={"stride_in_1x1": True})


def msra_weights(depth: int) -> PretrainedWeights:
    """detectron2's ImageNetPretrained/MSRA/R-<depth>.pkl (Caffe2 blob names)."""
    return PretrainedWeights(source="msra", url=f"{FACEBOOK}ImageNetPretrained/MSRA/R-{depth}.pkl",
                             layout="caffe2", cache_name=f"MSRA-R-{depth}.pkl", **_MSRA_CONVENTIONS)


def detectron2_weights(source: str, config: str, file: str) -> PretrainedWeights:
    """The model-zoo checkpoint of detectron2 config ``config`` (``model_id/model_final_*.pkl``)."""
    return PretrainedWeights(source=source, url=f"{FACEBOOK}{config}/{file}", layout="detectron2",
                             **_MSRA_CONVENTIONS)  # model_final_<hash>.pkl names are unique


def timm_weights(model: str) -> PretrainedWeights:
    """timm's hub weights ``model`` (e.g. ``resnet50.a1_in1k``); RGB, ImageNet mean/std."""
    tag = model.split(".", 1)[1]
    return PretrainedWeights(source=f"timm_{tag}", url=HUGGING_FACE.format(model), mean=IMAGENET_MEAN,
                             std=IMAGENET_STD, layout="timm", cache_name=f"timm-{model}.safetensors")
