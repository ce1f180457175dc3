"""Image-classification data for pretraining: an ImageFolder tree with the paper's augmentation.

Training (He et al. 2015, Sec. 3.4): "The image is resized with its shorter
side randomly sampled in [256, 480] for scale augmentation. A 224x224 crop is
randomly sampled from an image or its horizontal flip, with the per-pixel
mean subtracted. The standard color augmentation in [21] is used." [21] is
Krizhevsky et al. 2012 (AlexNet), whose colour augmentation is the PCA
lighting noise of :class:`PCALighting`. The mean/std normalisation is done on
the batch, with the backbone's ``pixel_mean``/``pixel_std``
(:func:`pretraining.trainer.normalise`), so samples are RGB in [0, 1].

Evaluation: the shorter side resized to 256, then the centre 224 crop or the
"standard 10-crop testing" (four corners and centre, and their horizontal
flips; :class:`torchvision.transforms.v2.TenCrop`), whose softmax scores are
averaged (:func:`pretraining.trainer.predict_scores`).

Augmentation draws from a generator seeded by (seed, epoch, sample index), so
a run is the same whatever the number of loader workers, and a resumed run
sees the images an uninterrupted one would.
"""
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from backbones.errors import UserError

# ImageNet's RGB principal components, for pixel values in [0, 1]: the eigenvalues and eigenvectors (as
# columns) of the covariance of ImageNet training pixels, as published with fb.resnet.torch's
# reimplementation of the paper's training (datasets/imagenet.lua) and used by torchvision-style ports.
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
                       (-0.5808, -0.0045, -0.8140),
                       (-0.5836, -0.6948, 0.4203))
IMAGE_EXTENSIONS = datasets.folder.IMG_EXTENSIONS


def pca_lighting(image, alpha, eigval=IMAGENET_PCA_EIGVAL, eigvec=IMAGENET_PCA_EIGVEC):
    """Add ``sum_j eigvec[:, j] * alpha[j] * eigval[j]`` to every pixel (Krizhevsky et al. 2012, Sec. 4.1).

    ``image``: (3, H, W) RGB float in [0, 1]; ``alpha``: 3 weights. No clipping, as in AlexNet.
    """
    eigval = torch.as_tensor(eigval, dtype=image.dtype)
    eigvec = torch.as_tensor(eigvec, dtype=image.dtype)
    shift = eigvec @ (torch.as_tensor(alpha, dtype=image.dtype) * eigval)
    return image + shift.view(3, 1, 1)


class PCALighting(torch.nn.Module):
    """AlexNet's "altering the intensities of the RGB channels" (Krizhevsky et al. 2012, Sec. 4.1).

    Per image, ``alpha ~ N(0, std)`` (std 0.1 in AlexNet and in the ResNet paper's recipe) weights the
    principal components of ImageNet's RGB pixel values; the same shift is added to every pixel.
    torchvision has no such transform.
    """

    def __init__(self, std=0.1, eigval=IMAGENET_PCA_EIGVAL, eigvec=IMAGENET_PCA_EIGVEC):
        super().__init__()
        self.std, self.eigval, self.eigvec = std, eigval, eigvec

    def forward(self, image):
        if self.std == 0:
            return image
        alpha = torch.randn(3) * self.std
        return pca_lighting(image, alpha, self.eigval, self.eigvec)

    def extra_repr(self):
        return f"std={self.std}"


class ScaleAugmentation(torch.nn.Module):
    """Resize the shorter side to a length drawn uniformly from the integers in [min_size, max_size]."""

    def __init__(self, min_size=256, max_size=480):
        super().__init__()
        self.min_size, self.max_size = min_size, max_size

    def forward(self, image):
        side = int(torch.randint(self.min_size, self.max_size + 1, ()).item())
        return F.resize(image, side, antialias=True)

    def extra_repr(self):
        return f"min_size={self.min_size}, max_size={self.max_size}"


def train_transform(crop_size=224, scale_min=256, scale_max=480, hflip=True, pca_lighting_std=0.1):
    """The paper's training augmentation; returns RGB float in [0, 1] of crop_size x crop_size."""
    steps = [v2.ToImage(), ScaleAugmentation(scale_min, scale_max), v2.RandomCrop(crop_size)]
    steps += [v2.RandomHorizontalFlip()] if hflip else []
    steps += [v2.ToDtype(torch.float32, scale=True), PCALighting(pca_lighting_std)]
    return v2.Compose(steps)


class _StackCrops(torch.nn.Module):
    def forward(self, crops):
        return torch.stack([torch.as_tensor(c) for c in crops])


def eval_transform(resize=256, crop_size=224, mode="center"):
    """Shorter side to ``resize``, then the centre crop (3, c, c) or the 10 crops stacked (10, 3, c, c)."""
    steps = [v2.ToImage(), v2.Resize(resize, antialias=True), v2.ToDtype(torch.float32, scale=True)]
    if mode == "10crop":
        steps += [v2.TenCrop(crop_size), _StackCrops()]
    else:
        steps += [v2.CenterCrop(crop_size)]
    return v2.Compose(steps)


def sample_seed(seed, epoch, index) -> int:
    """A per-sample seed: the same sample in the same epoch is augmented the same way in any run."""
    return ((seed * 1_000_003 + epoch) * 2_147_483_647 + index) % (1 << 63)


class UnreadableImageError(UserError):
    """An image file that cannot be decoded.

    A DataLoader worker's exception reaches the main process as a new exception of the same type whose
    message is the worker's whole traceback; this keeps only the message itself.
    """

    def __init__(self, message):
        marker = f"{type(self).__name__}: "
        if "Traceback" in message and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


def _load_rgb(path):
    from PIL import Image
    try:
        with open(path, "rb") as f:
            image = Image.open(f)
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(
            f"cannot read image {path} ({type(err).__name__}: {err}); replace it with a valid copy "
            f"(re-extract or re-download it) or delete it") from None


LAYOUT_HINT = "expected ROOT/{split}/<class name>/<image>.jpg, one folder per class (ImageNet's layout)"


def check_image_folder(root, split, classes=None) -> list:
    """The class folders of ``root/split``, or a UserError naming the missing folder and the fix.

    ``classes`` given (the training classes): the split must have exactly these class folders.
    """
    folder = Path(root) / split
    hint = LAYOUT_HINT.format(split=split)
    if not Path(root).is_dir():
        raise UserError(f"dataset folder {root} does not exist; {hint}")
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist; {hint}")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise UserError(f"{folder} has no class folders; {hint}")
    if classes is not None and found != list(classes):
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
        detail = "; ".join(x for x in (f"missing {', '.join(missing[:5])}" if missing else "",
                                       f"not in training: {', '.join(extra[:5])}" if extra else "") if x)
        raise UserError(f"the class folders of {folder} differ from those of the training split ({detail}); "
                        f"both splits need the same class folders")
    return found


class ImageFolderSet(torch.utils.data.Dataset):
    """``root/split/<class>/*`` as (RGB float image, class index), augmented with a seed per sample and epoch.

    ``classes``: the class order the split must have (the training split's, for the validation split).
    """

    def __init__(self, root, split, transform, classes=None, seed=0):
        self.class_names = check_image_folder(root, split, classes)
        # torchvision's ImageFolder listing (images found by extension, sorted), with our class list
        self.samples = datasets.folder.make_dataset(
            str(Path(root) / split), {name: i for i, name in enumerate(self.class_names)},
            extensions=IMAGE_EXTENSIONS, allow_empty=True)  # an empty class gets the message below
        counts = torch.bincount(torch.tensor([label for _, label in self.samples], dtype=torch.long),
                                minlength=len(self.class_names))
        for name, count in zip(self.class_names, counts.tolist()):
            if count == 0:
                raise UserError(f"class folder {Path(root) / split / name} holds no images "
                                f"({', '.join(IMAGE_EXTENSIONS)}); add its images or remove the folder")
        self.transform, self.seed, self.epoch = transform, seed, 0
        self.name = f"{Path(root).name}/{split}"

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        image = _load_rgb(path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, index))
            return self.transform(image), label


class Lighting(torch.utils.data.Dataset):
    """Another dataset's images with :class:`PCALighting` added (draws from the global torch RNG)."""

    def __init__(self, dataset, std):
        self.dataset, self.lighting = dataset, PCALighting(std)
        self.class_names = dataset.class_names

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, label = self.dataset[index]
        return self.lighting(image), label

    def state_dict(self):
        return self.dataset.state_dict() if hasattr(self.dataset, "state_dict") else {}

    def load_state_dict(self, state):
        if hasattr(self.dataset, "load_state_dict"):
            self.dataset.load_state_dict(state)
