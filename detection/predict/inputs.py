"""What a user points a detector at, turned into a stream of RGB images with their names.

Inputs are image files, folders (``recursive`` for subfolders), glob patterns,
video files and lists of these; in-memory images (numpy, PIL, tensors) are
handled by :func:`to_rgb`. Everything a user named explicitly is checked
before the model runs (:func:`expand`): a missing file, a file that is neither
an image nor a video, an empty folder or a video OpenCV cannot open is an
error naming it. A file found *inside* a folder that cannot be decoded is
reported by name and skipped (:class:`Frame` ``image`` is None), so one bad
photo never ends a run over thousands.
"""
import glob
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch

from backbones.errors import UserError

from ..data.dataset import read_image_file

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
COLOR_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class Source:
    """One file to read: an image, or a video whose frames are read in turn."""
    path: Path
    name: str                 # how outputs name it: relative to the folder or glob it came from
    video: bool = False
    explicit: bool = True     # named by the user (an unreadable one is an error, not a skip)


@dataclass
class Frame:
    """One image to predict on. ``image`` is None when the file could not be decoded (``error`` says why)."""
    name: str                          # file name (relative), or "<video>#<frame>" for a video frame
    image: Optional[np.ndarray]        # RGB uint8 (H, W, 3)
    path: Optional[Path] = None
    frame: Optional[int] = None        # index of a video frame
    error: Optional[str] = None


def kind(path: Path) -> Optional[str]:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_EXTENSIONS else "video" if suffix in VIDEO_EXTENSIONS else None


def _supported() -> str:
    return ", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)


def _from_folder(folder: Path, recursive: bool) -> List[Source]:
    files = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.is_file() and kind(p) is not None)
    if not files:
        hint = "" if recursive or not any(p.is_dir() for p in folder.iterdir()) else \
            "; it has subfolders: pass --recursive to search them"
        raise UserError(f"folder {folder} holds no image or video files ({_supported()}){hint}")
    return [Source(p, p.relative_to(folder).as_posix(), kind(p) == "video", explicit=False) for p in files]


def _from_file(path: Path, name: str) -> Source:
    if kind(path) is None:
        raise UserError(f"{path} is not an image or a video (by its extension; supported: {_supported()}); "
                        f"pass image files, a folder of them, a glob or a video")
    return Source(path, name, kind(path) == "video")


def expand(inputs: Union[str, Path, Sequence[Union[str, Path]]], recursive: bool = False) -> List[Source]:
    """The files ``inputs`` name, in a stable order; every input is checked here, before any model runs."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise UserError("no input given: pass image files, a folder, a glob pattern or a video")
    sources = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            sources += _from_folder(path, recursive)
        elif path.is_file():
            sources.append(_from_file(path, path.name))
        elif glob.has_magic(str(item)):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=recursive) if Path(m).is_file())
            matches = [m for m in matches if kind(m) is not None]
            if not matches:
                raise UserError(f"the pattern {item} matches no image or video file ({_supported()})")
            sources += [Source(m, m.as_posix(), kind(m) == "video", explicit=False) for m in matches]
        else:
            raise UserError(f"input {path} does not exist; pass image files, a folder, a glob pattern (quoted, "
                            f"e.g. 'photos/*.jpg') or a video")
    for source in sources:
        if source.video:
            check_video(source.path)
    return sources


def open_video(path: Path) -> "cv2.VideoCapture":
    """OpenCV's FFmpeg reader on ``path``, its own log lines silenced: a file it cannot open gets our error."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(level)


def check_video(path: Path):
    capture = open_video(path)
    try:
        if not capture.isOpened() or not capture.read()[0]:
            raise UserError(f"OpenCV cannot open the video {path} (a codec it was not built with, or a damaged "
                            f"file); convert it, e.g. `ffmpeg -i {path.name} -c:v libx264 out.mp4`, or extract "
                            f"its frames as images")
    finally:
        capture.release()


def video_info(path: Path) -> tuple:
    """(frames per second, frame count) as the container states them (either may be 0 when unknown)."""
    capture = open_video(path)
    try:
        return capture.get(cv2.CAP_PROP_FPS) or 0.0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()


def _image_frame(source: Source) -> Frame:
    try:
        return Frame(source.name, read_image_file(source.path), source.path)
    except UserError as err:
        if source.explicit:
            raise UserError(f"{err}; check the file, or leave it out") from None
        return Frame(source.name, None, source.path, error=str(err))


def frames(sources: Sequence[Source], prefetch: int = 4) -> Iterator[Frame]:
    """Every image and video frame of ``sources`` in order; undecodable folder files as error frames.

    Up to ``prefetch`` images are decoded ahead in threads (OpenCV releases the GIL while decoding), so
    decoding overlaps the model's forward pass; 0 decodes in turn.
    """
    with ThreadPoolExecutor(max_workers=max(1, min(prefetch, 4))) as pool:
        pending = deque()
        for source in sources:
            if source.video:
                while pending:
                    yield pending.popleft().result()
                yield from _video_frames(source)
                continue
            pending.append(pool.submit(_image_frame, source))
            if len(pending) > prefetch:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _video_frames(source: Source) -> Iterator[Frame]:
    capture = open_video(source.path)
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield Frame(f"{source.name}#{index}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), source.path, frame=index)
            index += 1
    finally:
        capture.release()


def count_images(sources: Sequence[Source]) -> Optional[int]:
    """How many frames :func:`frames` will yield (video frame counts as the container states them)."""
    total = 0
    for source in sources:
        total += video_info(source.path)[1] if source.video else 1
    return total


def rgb_tensor(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (3, H, W) in [0, 1], exactly as the training and evaluation data does."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255)


def to_tensor(image, color: Optional[str] = None) -> torch.Tensor:
    """An in-memory image as the model's input: a float (3, H, W) RGB tensor in [0, 1].

    numpy arrays must say their channel order (``color="rgb"`` or ``"bgr"``:
    OpenCV gives BGR, PIL and matplotlib RGB, and guessing swaps red and blue
    without any error); PIL images are converted to RGB; tensors are CHW RGB,
    uint8 or float in [0, 1] (torchvision's convention).
    """
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise UserError(f"a tensor image must be (3, H, W) RGB, got shape {tuple(image.shape)}")
        return image.detach().float().div(255) if image.dtype == torch.uint8 else image.detach().float()
    if type(image).__module__.startswith("PIL."):
        return rgb_tensor(np.array(image.convert("RGB")))
    if isinstance(image, np.ndarray):
        if color not in COLOR_ORDERS:
            raise UserError(f"a numpy image needs its channel order stated: color='bgr' (OpenCV's cv2.imread) or "
                            f"color='rgb' (PIL, matplotlib); got {color!r}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise UserError(f"a numpy image must be (H, W, 3), got shape {image.shape}")
        if image.dtype != np.uint8:
            raise UserError(f"a numpy image must be uint8 (0-255), got {image.dtype}; for float images in [0, 1] "
                            f"pass a (3, H, W) torch tensor")
        return rgb_tensor(image[:, :, ::-1] if color == "bgr" else image)
    raise UserError(f"cannot predict on a {type(image).__name__}: pass a file path, a folder, a numpy (H, W, 3) "
                    f"uint8 array, a PIL image or a (3, H, W) tensor")


def to_rgb(image: torch.Tensor) -> np.ndarray:
    """A model input tensor back to RGB uint8 (H, W, 3), for drawing."""
    return np.ascontiguousarray((image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())
