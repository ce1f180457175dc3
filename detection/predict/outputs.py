"""The files ``tools/predict.py`` writes: what the next tool in a user's chain reads.

In ``--output``:

- ``predictions.json``: a COCO results list (``bbox`` x y w h in original
  pixels, the checkpoint's category ids, ``segmentation`` RLE for Mask
  R-CNN), each entry also naming its ``file_name``; ``image_id`` is the index
  into ``images.json``;
- ``images.json``: ``images`` (id, file_name, width, height[, frame]) and
  ``categories``: with ``predictions.json``, what pycocotools and
  ``eval_coco`` need to score the predictions or reuse them;
- ``predictions.jsonl``: one JSON line per image (file_name, frame, size,
  detections with box x1 y1 x2 y2, score, label, class name[, RLE]);
- ``predictions.csv`` (``csv=True``): one row per detection;
- ``drawn/`` (``draw=True``): each image with its detections drawn, and for
  a video the annotated video (OpenCV, mp4v).

Each file is written under a temporary name and renamed when the run ends,
so an interrupted run never replaces the previous run's files with half of
its own.
"""
import csv
import json
import os
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from backbones.atomic_files import write_atomically, write_failure, write_text
from backbones.errors import UserError

from ..engine.run_folder import MANIFEST, record
from ..evaluation.results_file import json_numbers
from ..visualize import draw_predictions

CSV_COLUMNS = ("file_name", "frame", "class_name", "category_id", "score", "x1", "y1", "x2", "y2")


class StreamedFile:
    """A text file written line by line under ``<name>.tmp`` and renamed to ``path`` by :meth:`finish`."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        try:
            self.file = open(self.tmp, "w", encoding="utf-8", newline="")
        except OSError as err:
            raise write_failure(path, err) from None

    def write(self, text: str):
        try:
            self.file.write(text)
        except OSError as err:
            self.abandon()
            raise write_failure(self.path, err) from None

    def finish(self) -> Path:
        try:
            self.file.close()
            os.replace(self.tmp, self.path)
        except OSError as err:
            self.abandon()
            raise write_failure(self.path, err) from None
        return self.path

    def abandon(self):
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class VideoOutput:
    """An annotated copy of one input video, written under a temporary name and renamed when complete."""

    def __init__(self, path: Path, fps: float, size: tuple):
        self.path = path
        self.tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")  # OpenCV picks the container by extension
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0, size)
        if not self.writer.isOpened():
            raise UserError(f"OpenCV cannot write the video {path} (no mp4v encoder in this build); "
                            f"run without --draw, or draw the frames one by one")

    def write(self, rgb: np.ndarray):
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def finish(self) -> Path:
        self.writer.release()
        os.replace(self.tmp, self.path)
        return self.path

    def abandon(self):
        self.writer.release()
        self.tmp.unlink(missing_ok=True)


def detections(result: dict) -> list:
    """The detections of one result as JSON-friendly dicts (box x1 y1 x2 y2 in original pixels)."""
    out = []
    for k in range(len(result["boxes"])):
        item = {"box": [round(float(v), 3) for v in result["boxes"][k]], "score": round(float(result["scores"][k]), 5),
                "label": int(result["labels"][k]), "class_name": result["class_names"][k]}
        if "rles" in result:
            item["segmentation"] = result["rles"][k]
        out.append(item)
    return out


class PredictionFiles:
    """Collects results (:class:`detection.predict.Predictor`'s dicts) into the files above."""

    def __init__(self, output, class_names, category_ids, csv_file: bool = False, draw: bool = False,
                 draw_threshold: float = 0.5, video_fps: Optional[dict] = None):
        self.output = Path(output)
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the output folder {self.output} ({err.strerror}); pass another "
                            f"--output") from None
        # predictions written into a run folder (output/demo/predicted) are listed in its manifest, so that
        # --overwrite of the run removes them with the model they came from
        self.run_folder = next((f for f in (self.output, self.output.parent) if (f / MANIFEST).is_file()), None)
        self.class_names, self.category_ids = list(class_names), list(category_ids)
        self.draw, self.draw_threshold = draw, draw_threshold
        self.video_fps = video_fps or {}
        self.images, self.results = [], []
        self.jsonl = StreamedFile(self.path("predictions.jsonl"))
        self.csv = StreamedFile(self.path("predictions.csv")) if csv_file else None
        self.csv_writer = csv.writer(self.csv) if self.csv else None
        if self.csv_writer:
            self.csv_writer.writerow(CSV_COLUMNS)
        self.videos = {}
        self.drawn = []

    def path(self, name) -> Path:
        """``output/name``, recorded in the run folder's manifest (before it is written) when in one."""
        path = self.output / name
        return record(path, self.run_folder) if self.run_folder is not None else path

    def add(self, result: dict):
        image_id = len(self.images) + 1
        entry = {"id": image_id, "file_name": result["file_name"], "width": result["width"],
                 "height": result["height"]}
        if result.get("frame") is not None:
            entry["frame"] = result["frame"]
        self.images.append(entry)
        found = detections(result)
        for item in found:
            x1, y1, x2, y2 = item["box"]
            coco = {"image_id": image_id, "file_name": result["file_name"],
                    "category_id": self.category_ids[item["label"] - 1],
                    "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)], "score": item["score"]}
            if "segmentation" in item:
                coco["segmentation"] = item["segmentation"]
            self.results.append(coco)
            if self.csv_writer:
                self.csv_writer.writerow([result["file_name"], "" if result.get("frame") is None else result["frame"],
                                          item["class_name"], coco["category_id"], item["score"], *item["box"]])
        line = {k: entry[k] for k in ("file_name", "width", "height")}
        line.update(frame=result.get("frame"), detections=found)
        self.jsonl.write(json.dumps(line) + "\n")
        if self.draw and result.get("image") is not None:
            self._draw(result)

    def _draw(self, result):
        canvas = draw_predictions(result["image"], result, self.class_names, self.draw_threshold)
        if result.get("frame") is not None:
            name = result["file_name"].rsplit("#", 1)[0]
            if name not in self.videos:
                path = self.path(Path("drawn") / Path(name).with_suffix(".mp4"))
                self.videos[name] = VideoOutput(path, self.video_fps.get(name, 25.0), canvas.shape[1::-1])
            self.videos[name].write(canvas)
            return
        path = self.path(Path("drawn") / Path(result["file_name"]).with_suffix(".jpg"))
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise UserError(f"OpenCV could not encode {path} as JPEG")
        self.drawn.append(write_atomically(path, lambda tmp: tmp.write_bytes(data.tobytes()), data.nbytes))

    def finish(self) -> list:
        """Write the collected files and rename the streamed ones into place; returns the paths written."""
        written = [self.jsonl.finish()]
        if self.csv:
            written.append(self.csv.finish())
        written += [video.finish() for video in self.videos.values()]
        categories = [{"id": c, "name": n} for c, n in zip(self.category_ids, self.class_names)]
        written.append(write_text(self.path("images.json"),
                                  json.dumps({"images": self.images, "categories": categories})))
        written.append(write_text(self.path("predictions.json"), json.dumps(json_numbers(self.results))))
        return written

    def abandon(self):
        """An interrupted run: remove the temporary files; the previous run's files stay as they were."""
        for stream in (self.jsonl, self.csv, *self.videos.values()):
            if stream is not None:
                stream.abandon()
