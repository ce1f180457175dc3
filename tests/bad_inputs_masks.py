"""Bad-input cases of instance-mask PNGs (see bad_input_table.py): format: masks (Penn-Fudan layout) and VOC's
SegmentationObject/ + SegmentationClass/ PNGs (voc with masks: true, on the real VOC 2007_000063)."""
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from bad_input_table import Case

VOC_SAMPLE = Path(__file__).resolve().parent / "data" / "voc_masks"  # tests/data/README.md
TRAIN = ["--device", "cpu", "--max-iter", "1", "--output", "run"]


def _penn_fudan(folder, yaml="classes: [person]\n", mask=None, mode=None):
    """PNGImages/a.png (64x48) and PedMasks/a_mask.png (one rectangle, or ``mask``), and m.yaml naming them."""
    (folder / "PNGImages").mkdir()
    (folder / "PedMasks").mkdir()
    Image.fromarray(np.full((48, 64, 3), 100, np.uint8)).save(folder / "PNGImages" / "a.png")
    if mask is None:
        mask = np.zeros((48, 64), np.uint8)
        mask[10:20, 10:30] = 1
    if mask is not False:
        Image.fromarray(mask, mode).save(folder / "PedMasks" / "a_mask.png")
    (folder / "m.yaml").write_text("format: masks\nimages: PNGImages\nmasks: PedMasks\nmask_suffix: _mask\n" + yaml)
    return "m.yaml"


def _classes(folder, top):
    """Two classes with a class-id PNG holding the id ``top``."""
    name = _penn_fudan(folder, yaml="classes: [person, bike]\nclass_masks: PedClasses\n")
    (folder / "PedClasses").mkdir()
    classes = np.zeros((48, 64), np.uint8)
    classes[10:20, 10:30] = top
    Image.fromarray(classes).save(folder / "PedClasses" / "a_mask.png")
    return name


def _voc(folder, yaml="masks: true\n", edit=None):
    """The real VOC sample as VOC/ with its Segmentation list, and v.yaml; ``edit(root)`` breaks it."""
    shutil.copytree(VOC_SAMPLE, folder / "VOC")
    if edit is not None:
        edit(folder / "VOC")
    (folder / "v.yaml").write_text("format: voc\nroot: VOC\nsplit: sample\n" + yaml)
    return "v.yaml"


def _crop_object_png(root):
    path = root / "SegmentationObject" / "2007_000063.png"
    image = Image.open(path)
    image.crop((0, 0, 400, 375)).save(path)


def _check(make):
    return lambda folder: [make(folder)]


def _train(make, *flags):
    return lambda folder: ["--dataset", make(folder), *flags, *TRAIN]


CASES = [
    Case("datasets", "an instance-mask PNG of another size than its image", "check_dataset",
         _check(lambda f: _penn_fudan(f, mask=np.zeros((40, 64), np.uint8))),
         "PedMasks/a_mask.png is 64x40 pixels (width x height) but its image PNGImages/a.png is 64x48"),
    Case("datasets", "an image without its instance-mask PNG", "train_det", _train(lambda f: _penn_fudan(f, mask=False)),
         "image PNGImages/a.png has no mask: PedMasks/a_mask.png does not exist"),
    Case("datasets", "a colour instance-mask PNG", "check_dataset",
         _check(lambda f: _penn_fudan(f, mask=np.tile(np.array([200, 0, 0], np.uint8), (48, 64, 1)))),
         "PedMasks/a_mask.png is a colour (RGB) image; it must hold one value per pixel"),
    Case("datasets", "instance-mask PNGs without classes", "check_dataset", _check(lambda f: _penn_fudan(f, yaml="")),
         "m.yaml: format masks needs classes:"),
    Case("datasets", "two classes and no class-id PNGs", "check_dataset",
         _check(lambda f: _penn_fudan(f, yaml="classes: [person, bike]\n")),
         "m.yaml: classes lists 2 names but there is no class_masks: folder to tell the objects' classes"),
    Case("datasets", "a class-id PNG with an id beyond the classes", "train_det", _train(lambda f: _classes(f, 3)),
         "class mask PedClasses/a_mask.png has class id 3 but classes lists 2 names (ids 1..2, 0 background)"),
    Case("datasets", "VOC masks: true without the SegmentationObject PNG", "train_det",
         _train(lambda f: _voc(f, edit=lambda r: (r / "SegmentationObject" / "2007_000063.png").unlink()), "--mask"),
         "VOC/SegmentationObject/2007_000063.png does not exist: the images of ImageSets/Segmentation/ need"),
    Case("datasets", "a VOC SegmentationObject PNG of another size than the XML's", "check_dataset",
         _check(lambda f: _voc(f, edit=_crop_object_png)),
         "SegmentationObject/2007_000063.png is 400x375 pixels (width x height) but "
         "VOC/Annotations/2007_000063.xml gives the image size 500x375"),
    Case("datasets", "VOC masks: yes as text", "check_dataset", _check(lambda f: _voc(f, yaml="masks: 'yes'\n")),
         "v.yaml: masks must be true (the images of ImageSets/Segmentation/<split>.txt with their "
         "SegmentationObject/ instance masks) or false, got 'yes'"),
    Case("datasets", "Mask R-CNN on VOC boxes without masks: true", "train_det", _train(lambda f: _voc(f, yaml=""),
                                                                                         "--mask"),
         "dataset v_train has no instance masks; train without --mask (a VOC folder: masks: true in the dataset "
         "YAML reads the instance masks of the images of ImageSets/Segmentation/<split>.txt)"),
]
