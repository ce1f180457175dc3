"""check_dataset (tools/check_dataset.py): counts and problems without training; status 1 when the data is unusable."""
import json

import cv2
import numpy as np
import pytest

from detection.cli import check_dataset


def _check(argv, capsys):
    """(exit status, stdout, stderr) of check_dataset.main(argv)."""
    try:
        check_dataset.main(argv)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def _dataset(tmp_path, images, annotations, sizes=None):
    """A COCO dataset YAML over ``images`` (file names, each written 120x120 unless ``sizes`` says otherwise)."""
    for name in images:
        width, height = (sizes or {}).get(name, (120, 120))
        cv2.imwrite(str(tmp_path / name), np.zeros((height, width, 3), np.uint8))
    gt = {"images": [{"id": i, "file_name": f, "width": 120, "height": 120} for i, f in enumerate(images, 1)],
          "annotations": annotations, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    return str(tmp_path / "d.yaml")


def _box(ann_id, image_id, bbox=(5, 5, 20, 20), category_id=1):
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": list(bbox), "iscrowd": 0}


def test_counts_sizes_problems_and_pictures(tmp_path, capsys):
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((120, 120, 3), np.uint8))
    (tmp_path / "c.jpg").write_bytes(b"truncated")
    gt = {"images": [{"id": i, "file_name": f, "width": 120, "height": 120}
                     for i, f in enumerate(("a.jpg", "b.jpg", "c.jpg"), 1)],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0},    # small
              {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 50, 50], "iscrowd": 0},    # medium
              {"id": 3, "image_id": 1, "category_id": 2, "bbox": [10, 10, 100, 100], "iscrowd": 0},  # large
              {"id": 4, "image_id": 1, "category_id": 1, "bbox": [100, 100, 40, 40], "iscrowd": 0},  # clipped
              {"id": 5, "image_id": 2, "category_id": 1, "bbox": [5, 5, -3, 4], "iscrowd": 0},     # dropped
              {"id": 6, "image_id": 3, "category_id": 1, "bbox": [5, 5, 20, 20], "iscrowd": 1}],   # crowd
          "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    status, out, err = _check([str(tmp_path / "d.yaml"), "--check-images", "--vis", "2",
                               "--output", str(tmp_path / "vis")], capsys)
    assert "d_train: 3 images, 2 classes" in out
    assert "cat  2" in out and "dog  2" in out and "ignored (difficult/crowd): 1" in out
    assert "sizes: small 3, medium 1, large 1" in out  # the clipped 20x20 box and the crowd box are small
    assert "problems: 1 boxes clipped, 1 dropped, 1 images without objects" in out
    assert "unreadable or mis-sized images: 1" in out and "c.jpg (missing or corrupt)" in out
    assert (tmp_path / "vis" / "d_train_ground_truth.png").stat().st_size > 1000  # drawn from a.jpg and b.jpg
    assert status == 1 and "error: d_train cannot be used as it is: 1 unreadable or mis-sized image (see " \
                           "above); the first: cannot read image" in err


def test_a_clean_dataset_passes(tmp_path, capsys):
    status, out, err = _check([_dataset(tmp_path, ["a.jpg"], [_box(1, 1)]), "--check-images"], capsys)
    assert status == 0 and err == ""
    assert "duplicate ids: 0" in out and "missing image files: 0" in out and "unreadable or mis-sized images: 0" in out


def test_missing_image_files_are_found_without_decoding_and_fail_the_check(tmp_path, capsys):
    yaml = _dataset(tmp_path, ["a.jpg", "b.jpg", "c.jpg"], [_box(1, 1), _box(2, 2)])
    (tmp_path / "b.jpg").unlink()
    (tmp_path / "c.jpg").unlink()
    status, out, err = _check([yaml, "--vis", "3", "--output", str(tmp_path / "vis")], capsys)
    assert "problems: 0 boxes clipped" in out  # the full report comes first
    assert f"missing image files: 2\n    {tmp_path / 'b.jpg'}\n    {tmp_path / 'c.jpg'}\n" in out
    assert (tmp_path / "vis" / "d_train_ground_truth.png").is_file()  # drawn from the image that is there
    assert status == 1 and err == (f"error: d_train cannot be used as it is: 2 missing image files (see above); "
                                   f"the first: {tmp_path / 'b.jpg'}\n")


def test_many_missing_files_are_counted_and_the_first_listed(tmp_path, capsys):
    yaml = _dataset(tmp_path, [f"{k}.jpg" for k in range(25)], [])
    for k in range(25):
        (tmp_path / f"{k}.jpg").unlink()
    status, out, _ = _check([yaml], capsys)
    assert "missing image files: 25" in out and out.count(".jpg\n") == 20
    assert "... and 5 more (when most are missing, the images folder is probably wrong)" in out and status == 1


def test_duplicate_ids_are_all_listed_and_fail_the_check(tmp_path, capsys):
    yaml = _dataset(tmp_path, ["a.jpg", "b.jpg"], [_box(1, 1), _box(1, 2), _box(2, 2)])
    gt = json.loads((tmp_path / "gt.json").read_text())
    gt["images"].append({"id": 1, "file_name": "b.jpg", "width": 120, "height": 120})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    status, out, err = _check([yaml], capsys)
    assert "duplicate ids: 2" in out
    assert "gt.json: image id 1 is used by 2 entries (images[0], images[2]); give each image its own id" in out
    assert "gt.json: annotation id 1 is used by 2 entries (annotations[0], annotations[1])" in out
    assert status == 1 and "2 duplicate ids" in err


def test_a_voc_split_listing_an_image_twice_fails_the_check(tmp_path, capsys):
    root = tmp_path / "VOC"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\na\n")
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><size><width>40</width><height>30</height></size><object><name>cat</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    cv2.imwrite(str(root / "JPEGImages" / "a.jpg"), np.zeros((30, 40, 3), np.uint8))
    (tmp_path / "d.yaml").write_text("format: voc\nroot: VOC\nsplit: train\nclasses: [cat]\n")
    status, out, _ = _check([str(tmp_path / "d.yaml"), "--check-images"], capsys)
    assert "duplicate ids: 1" in out and "train.txt: image 'a' is listed 2 times (lines 1, 2)" in out
    assert "unreadable or mis-sized images: 0" in out and status == 1


@pytest.mark.parametrize("check_images", [False, True])
def test_every_image_of_another_size_than_declared_is_listed_with_check_images(tmp_path, capsys, check_images):
    yaml = _dataset(tmp_path, ["a.jpg", "b.jpg", "c.jpg"], [_box(1, 1)], sizes={"a.jpg": (60, 60), "c.jpg": (120, 90)})
    status, out, err = _check([yaml] + ["--check-images"] * check_images, capsys)
    if not check_images:  # decoding is what finds them
        assert status == 0 and "mis-sized" not in out
        return
    assert "unreadable or mis-sized images: 2" in out
    assert "a.jpg is 60x60 pixels (width x height) but its annotations declare 120x120" in out
    assert "c.jpg is 120x90 pixels (width x height) but its annotations declare 120x120" in out
    assert status == 1 and "2 unreadable or mis-sized images" in err
