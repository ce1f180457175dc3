"""Colour order and input normalisation of weights trained on BGR images.

Our detector feeds RGB images in [0, 1] and normalises them as
(x - mean) / std. Caffe-trained weights (MSRA's ResNets, detectron2's models
built on them) expect BGR images in [0, 255] normalised as (x - mean_bgr) /
std_bgr. Both are made to agree exactly:

- the first conv's input channels are reversed, so that it reads RGB in the
  order BGR weights expect: conv(w[:, ::-1], rgb) == conv(w, bgr);
- mean and std are reversed to RGB order and divided by 255, so
  (x_rgb01 - mean / 255) / (std / 255) == x_rgb255 - mean, channel by channel.
"""
import torch

from .common import ConversionError


def first_conv_name(state_dict: dict) -> str:
    """The conv that reads the image: the one 4-d weight with 3 input channels."""
    names = [k for k, v in state_dict.items() if k.endswith("weight") and v.dim() == 4 and v.shape[1] == 3]
    if len(names) != 1:
        raise ConversionError(f"cannot tell which conv reads the image (candidates: {names}); "
                              f"the colour order of these weights cannot be converted")
    return names[0]


def swap_rgb_bgr(state_dict: dict) -> dict:
    """Reverse the input channels of the first conv (BGR weights -> RGB, and back)."""
    state = dict(state_dict)
    name = first_conv_name(state)
    state[name] = torch.flip(state[name], dims=[1])
    return state


def rgb01_from_bgr255(mean_bgr, std_bgr):
    """BGR, 0-255 mean/std -> the RGB, 0-1 mean/std of our detector's normalisation."""
    return tuple(m / 255 for m in reversed(mean_bgr)), tuple(s / 255 for s in reversed(std_bgr))
