"""check_dataset (tools/check_dataset.py): counts and problems without training."""
import json

import cv2
import numpy as np

from detection.cli import check_dataset


def test_counts_sizes_problems_and_pictures(tmp_path, monkeypatch, capsys):
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
    check_dataset.main([str(tmp_path / "d.yaml"), "--check-images", "--vis", "2", "--output", str(tmp_path / "vis")])
    out = capsys.readouterr().out
    assert "d_train: 3 images, 2 classes" in out
    assert "cat  2" in out and "dog  2" in out and "ignored (difficult/crowd): 1" in out
    assert "sizes: small 3, medium 1, large 1" in out  # the clipped 20x20 box and the crowd box are small
    assert "problems: 1 boxes clipped, 1 dropped, 1 images without objects" in out
    assert "unreadable images: 1" in out and "c.jpg (missing or corrupt)" in out
    assert (tmp_path / "vis" / "d_train_ground_truth.png").stat().st_size > 1000
