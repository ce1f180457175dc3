"""Bad-input cases of the evaluation programs (see bad_input_table.py): results files that do not fit the
ground truth they are scored on, and options out of range.

The ground truth is the smallest that works: two 100x100 images, one object each (a cat, a dog), as a COCO
JSON for ``eval_coco --annotations`` and as a VOC folder for ``eval_voc --voc-root``. Images are never read
by evaluation, so none are written.
"""
import json

from bad_input_table import Case

OBJECTS = [(1, 1, [10, 10, 50, 50]), (2, 2, [20, 20, 60, 60])]  # (image id, category id, COCO box x y w h)


def coco_gt(folder, masks=False, name="gt.json"):
    """The COCO ground truth; with ``masks``, each object also has its box as a polygon."""
    annotations = []
    for k, (image_id, category_id, (x, y, w, h)) in enumerate(OBJECTS, start=1):
        ann = {"id": k, "image_id": image_id, "category_id": category_id, "bbox": [x, y, w, h], "area": w * h,
               "iscrowd": 0}
        if masks:
            ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        annotations.append(ann)
    (folder / "images").mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in (1, 2)],
        "annotations": annotations, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}))
    return name


def rle(x, y, w, h, size=(100, 100)):
    """The box as a compressed RLE mask of an image of ``size`` (height, width), as a detector writes it."""
    import numpy as np
    from pycocotools import mask as mask_util
    mask = np.zeros((*size, 1), dtype=np.uint8, order="F")
    mask[y:y + h, x:x + w] = 1
    encoded = mask_util.encode(mask)[0]
    return {"size": encoded["size"], "counts": encoded["counts"].decode("ascii")}


def perfect(masks=False):
    """Each ground-truth object found, score 0.9."""
    return [{"image_id": i, "category_id": c, "bbox": box, "score": 0.9, **({"segmentation": rle(*box)} if masks
                                                                             else {})}
            for i, c, box in OBJECTS]


def results_json(entries, gt_masks=False, argv=(), text=None):
    """eval_coco on ``entries`` (or on ``text`` as the results file) against the COCO ground truth."""
    def setup(folder):
        gt = coco_gt(folder, masks=gt_masks)
        (folder / "results.json").write_text(json.dumps(entries) if text is None else text)
        return ["--annotations", gt, "--predictions", "results.json", *argv]
    return setup


def with_entry(n, **changes):
    """The perfect results with entry ``n`` changed."""
    entries = perfect()
    entries[n] = {**entries[n], **changes}
    return entries


def voc_folder(folder, root="VOC", split="test"):
    """The VOC ground truth; returns eval_voc's arguments for it (--classes cat dog)."""
    (folder / root / "Annotations").mkdir(parents=True)
    (folder / root / "ImageSets" / "Main").mkdir(parents=True)
    (folder / root / "ImageSets" / "Main" / f"{split}.txt").write_text("000001\n000002\n")
    for (image_id, category_id, (x, y, w, h)) in OBJECTS:  # VOC: 1-based inclusive pixels
        box = f"<xmin>{x + 1}</xmin><ymin>{y + 1}</ymin><xmax>{x + w}</xmax><ymax>{y + h}</ymax>"
        (folder / root / "Annotations" / f"00000{image_id}.xml").write_text(
            f"<annotation><size><width>100</width><height>100</height></size><object>"
            f"<name>{['cat', 'dog'][category_id - 1]}</name><difficult>0</difficult><bndbox>{box}</bndbox>"
            f"</object></annotation>")
    return ["--voc-root", root, "--split", split, "--classes", "cat", "dog"]


PERFECT_LINES = {"cat": "000001 0.9 11 11 60 60\n", "dog": "000002 0.9 21 21 80 80\n"}


def devkit(files, argv=()):
    """eval_voc on a folder ``results/`` holding ``files`` (name -> text or bytes)."""
    def setup(folder):
        args = voc_folder(folder)
        (folder / "results").mkdir()
        for name, content in files.items():
            path = folder / "results" / name
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        return [*args, "--predictions", "results", *argv]
    return setup


def perfect_files(split="test", comp="comp4", encode=lambda line: line):
    """The devkit results files of the perfect detections, as ``devkit`` takes them."""
    return {f"{comp}_det_{split}_{c}.txt": encode(line) for c, line in PERFECT_LINES.items()}


def perfect_devkit(argv=()):
    return devkit(perfect_files(), argv)


CASES = [
    # --- eval_voc: devkit results files -------------------------------------------------------------------
    Case("evaluation", "devkit results folder without any `comp4_det_<split>_<class>.txt` (e.g. `comp3_...`)",
         "eval_voc", devkit(perfect_files(comp="comp3")),
         "holds no devkit results files comp4_det_test_<class>.txt"),
    Case("evaluation", "devkit results files of another split", "eval_voc",
         devkit(perfect_files(split="val")), "pass --split val"),
    Case("evaluation", "devkit results folder missing one class's file", "eval_voc",
         devkit({"comp4_det_test_cat.txt": PERFECT_LINES["cat"]}),
         "results has no comp4_det_test_dog.txt: class dog is evaluated as having no detections", status=0),
    Case("evaluation", "devkit results file of a class the dataset does not have", "eval_voc",
         devkit({**perfect_files(), "comp4_det_test_person.txt": "000001 0.5 1 1 10 10\n"}),
         "comp4_det_test_person.txt: person is not one of the classes (cat, dog)", status=0),
    Case("evaluation", "devkit results file starting with a UTF-8 byte-order mark (as Windows tools write): "
         "read, the mark dropped", "eval_voc", devkit(perfect_files(encode=lambda line: "\ufeff" + line)), "",
         status=0),
    Case("evaluation", "devkit results file in UTF-16 (as PowerShell's `>` writes)", "eval_voc",
         devkit(perfect_files(encode=lambda line: line.encode("utf-16"))),
         "comp4_det_test_cat.txt is not UTF-8 text"),
    Case("evaluation", "devkit results line naming an image the split does not list", "eval_voc",
         devkit({"comp4_det_test_cat.txt": "2008_000001 0.9 11 11 60 60\n", "comp4_det_test_dog.txt": ""}),
         "image '2008_000001' is not in split test (2 images, such as '000001', '000002')"),
    Case("evaluation", "devkit results line with a non-numeric score", "eval_voc",
         devkit({"comp4_det_test_cat.txt": "000001 high 11 11 60 60\n", "comp4_det_test_dog.txt": ""}),
         "score and box must be numbers"),
    # --- eval_voc: options --------------------------------------------------------------------------------
    Case("evaluation", "`--iou-threshold` outside (0, 1]", "eval_voc", perfect_devkit(["--iou-threshold", "50"]),
         "--iou-threshold 50 is outside (0, 1]"),
    Case("evaluation", "`--iou-threshold nan`", "eval_voc", perfect_devkit(["--iou-threshold", "nan"]),
         "--iou-threshold nan is outside (0, 1]"),
    Case("evaluation", "`--iou-threshold 1` with `--exclusive-threshold`", "eval_voc",
         perfect_devkit(["--iou-threshold", "1", "--exclusive-threshold"]), "matches nothing"),
    # --- eval_coco: results JSON --------------------------------------------------------------------------
    Case("evaluation", "results JSON that is not a list", "eval_coco", results_json({"results": perfect()}),
         "must hold a COCO results list"),
    Case("evaluation", "a ground-truth JSON given as the results", "eval_coco",
         lambda folder: ["--annotations", coco_gt(folder), "--predictions", coco_gt(folder, name="val.json")],
         "val.json is a COCO ground-truth file"),
    Case("evaluation", "results JSON that is a folder", "eval_coco",
         lambda folder: (folder / "results").mkdir() or ["--annotations", coco_gt(folder), "--predictions",
                                                        "results"],
         "results is a folder, not a COCO results JSON"),
    Case("evaluation", "empty results list", "eval_coco", results_json([]), "holds no results", status=0),
    Case("evaluation", "result with a non-numeric score", "eval_coco", results_json(with_entry(1, score="high")),
         "entry 1 has a bad box or score"),
    Case("evaluation", "result whose image_id is a list", "eval_coco", results_json(with_entry(0, image_id=[1])),
         "entry 0 has image_id [1]; it must be a number or a string"),
    Case("evaluation", "results for another dataset's images", "eval_coco",
         results_json([{**r, "image_id": 397133 + r["image_id"]} for r in perfect()]),
         "none of its 2 results names an image of gt"),
    Case("evaluation", "result image ids as strings where the dataset's are numbers", "eval_coco",
         results_json([{**r, "image_id": str(r["image_id"])} for r in perfect()]),
         "its image ids are numbers: write 1, not '1'"),
    Case("evaluation", "result with a category the dataset does not have", "eval_coco",
         results_json(with_entry(1, category_id=18)), "names category 18, which is not in gt (its categories: 1 cat"),
    Case("evaluation", "only some results carry `segmentation`", "eval_coco",
         lambda folder: results_json(perfect(masks=True)[:1] + perfect()[1:])(folder),
         "1 of 2 results carry segmentation; evaluating boxes only", status=0),
    Case("evaluation", "result `segmentation` polygon of two points", "eval_coco",
         results_json([{**r, "segmentation": [[10, 10, 60, 10]]} for r in perfect()], gt_masks=True),
         "entry 0: segmentation polygon 0 is [10, 10, 60, 10]; a polygon is [x1, y1, x2, y2, x3, y3, ...]"),
    Case("evaluation", "result mask of another size than its image", "eval_coco",
         lambda folder: results_json([{**r, "segmentation": rle(5, 5, 10, 10, size=(50, 60))} for r in perfect()],
                                     gt_masks=True)(folder),
         "entry 0: segmentation size [50, 60] is not image 1's [height, width] [100, 100]"),
    Case("evaluation", "mask results on ground truth without masks", "eval_coco",
         lambda folder: results_json(perfect(masks=True))(folder),
         "gt has no ground-truth masks", status=0),
    Case("evaluation", "`--iou-type segm` on ground truth without masks", "eval_coco",
         lambda folder: results_json(perfect(masks=True), argv=["--iou-type", "segm"])(folder),
         "--iou-type segm needs ground-truth masks"),
]
