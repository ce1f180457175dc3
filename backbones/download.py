"""Download a weight file into the torch hub cache and check it is the expected file.

torchvision's files carry the first digits of their sha256 in the file name
and torch.hub checks those. Other publishers (detectron2's model zoo, the
Caffe2 MSRA models, timm on Hugging Face) do not, and this code was written
without network access, so their full sha256 could not be looked up: a source
that declares ``sha256`` is checked against it; one that does not is checked
by *trust on first use*: the hash of the first copy is printed and stored next
to it (``<file>.sha256``) and every later load must match it. That catches a
file changed or damaged after the first use, not a wrong first download;
pin the printed hash in the source's declaration to close that gap.
"""
import hashlib
import sys
import urllib.error
from pathlib import Path
from typing import Optional

import torch

from .weight_files import PretrainedWeightsUnavailable


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def offline_hint(source, url, path) -> str:
    return (f"could not download the {source} weights from {url}. Without network access, fetch that "
            f"file elsewhere and put it at {path} (set TORCH_HOME to use another cache folder), pass "
            f"--pretrained PATH to a local file, or --pretrained none to train from scratch.")


def fetch(url: str, path: Path, sha256: Optional[str], source: str, progress=True) -> Path:
    """Return ``path``, downloading ``url`` there first if it is missing; verify its sha256."""
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # writes to a temporary file and renames it: no half files in the cache
            torch.hub.download_url_to_file(url, str(path), hash_prefix=None, progress=progress)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            raise PretrainedWeightsUnavailable(f"{offline_hint(source, url, path)} ({err})") from None
    actual = file_sha256(path)
    record = path.with_name(path.name + ".sha256")
    expected, origin = (sha256, "the source's declared sha256") if sha256 else (None, None)
    if expected is None and record.is_file():
        expected, origin = record.read_text().split()[0], f"the hash recorded at first use in {record}"
    if expected is None:  # first use: remember this copy
        record.write_text(f"{actual}  {path.name}\n")
        print(f"{source}: sha256 of {path} is {actual} (no published hash to check against; recorded in "
              f"{record}, later loads must match)", file=sys.stderr)
    elif actual != expected.lower():
        raise PretrainedWeightsUnavailable(
            f"the {source} weights file {path} is damaged or not the expected file (sha256 {actual}, "
            f"expected {expected} from {origin}); delete it{' and ' + record.name if not sha256 else ''} "
            f"and retry")
    return path


def cache_dir() -> Path:
    """Where torch.hub caches weight files (follows ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"

