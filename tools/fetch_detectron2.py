#!/usr/bin/env python
"""Install detectron2 0.6's Python code into this virtual environment for the tests (CI and ``make install``).

    .venv/bin/python tools/fetch_detectron2.py              # idempotent; make install runs it
    .venv/bin/python tools/fetch_detectron2.py --sdist pb1-detectron2-0.6.tar.gz   # offline, from a local copy

detectron2 publishes no wheels, and building it from its repository needs a
C++/CUDA toolchain. For real use, install it from the repository (see the
README). For the tests, this script takes PyPI's ``pb1-detectron2==0.6``
source distribution, which carries detectron2 0.6's Python package and its
model-zoo configs but not its C++ sources (so ``pip install`` of it fails),
and makes that Python code importable without building anything:

1. find the sdist through PyPI's JSON API, download it and check its sha256
   against PyPI's digest and against the digest pinned below;
2. unpack ``detectron2/`` (its ``model_zoo/configs`` included; a top-level
   ``configs/`` would be copied there) into ``<venv>/detectron2-0.6/``;
3. apply the few mechanical fixes in ``PATCHES`` (aliases that Pillow and
   NumPy have since removed);
4. write a placeholder ``detectron2/_C.py`` in place of the compiled
   extension: its C++/CUDA ops (deformable convolution, rotated boxes, the
   fast COCO evaluator) are unavailable; Faster/Mask R-CNN use torchvision's
   RoIAlign and NMS, which is what the tests run;
5. add ``detectron2-0.6-sdist.pth`` to site-packages so ``import detectron2`` finds it.

Nothing happens when a detectron2 installed some other way is importable, or
when this copy is already in place. Only the Python standard library is used.
"""
import argparse
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

PROJECT, VERSION = "pb1-detectron2", "0.6"
SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"  # pb1-detectron2-0.6.tar.gz
JSON_URLS = (f"https://pypi.org/pypi/{PROJECT}/{VERSION}/json",  # the release's own page
             f"https://pypi.org/pypi/{PROJECT}/json")            # the project page, for mirrors without the first
FOLDER = f"detectron2-{VERSION}"
PTH_NAME = f"detectron2-{VERSION}-sdist.pth"
MARKER = ".installed.json"
PATCHES_VERSION = 1

# (file under detectron2/, old text, new text, expected occurrences). Each one replaces an alias
# that a newer Pillow or NumPy removed by the very value it aliased, so behaviour is unchanged.
PATCHES = (
    # Pillow 10 removed Image.LINEAR (== Image.BILINEAR); evaluated at import of detectron2.data.
    ("data/transforms/transform.py", "interp=Image.LINEAR", "interp=Image.BILINEAR", 1),
    # NumPy 1.24 removed np.int / np.float / np.str (== int / float / str).
    ("data/build.py", "dtype=np.int)", "dtype=int)", 1),       # class histogram of every training set
    ("data/build.py", "dtype=np.int\n", "dtype=int\n", 1),
    ("data/datasets/pascal_voc.py", "dtype=np.str)", "dtype=str)", 1),
    ("evaluation/sem_seg_evaluation.py", "dtype=np.int)", "dtype=int)", 2),
    ("evaluation/sem_seg_evaluation.py", "np.float)", "float)", 5),
)

PLACEHOLDER_C = '''\
"""Placeholder for detectron2's compiled extension (normally detectron2/_C.*.so).

Written by tools/fetch_detectron2.py of resnet-detection-transfer. This copy of
detectron2 0.6 comes from PyPI's pb1-detectron2 source distribution, which
carries the Python package but not the C++/CUDA sources, so the extension
cannot be built. Several detectron2 modules import ``_C`` when they are
imported (deformable convolution, rotated boxes and RoIAlign, the fast COCO
evaluator), so an importable module has to exist. Faster/Mask R-CNN do not
need it: detectron2 0.6 runs RoIAlign and NMS through torchvision.ops.

The three functions below only answer detectron2's environment report
(collect_env_info, run by default_setup); any other name raises a clear error.
For real use, install detectron2 from its repository (see the project README).
"""
PLACEHOLDER = True


def get_compiler_version():
    return "none (placeholder detectron2._C: C++/CUDA ops not built)"


def get_cuda_version():
    return "none (placeholder detectron2._C)"


def has_cuda():
    return False


def __getattr__(name):
    raise AttributeError(
        f"detectron2._C.{name} is not available: this detectron2 0.6 comes from the pb1-detectron2 "
        f"source distribution with a placeholder _C (no C++/CUDA ops: deformable conv, rotated boxes, "
        f"fast COCO evaluation). Install detectron2 from its repository for those: "
        f"pip install 'git+https://github.com/facebookresearch/detectron2.git'")
'''


class FetchError(Exception):
    """Printed as one line; exit status 2."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=Path,
                   help=f"folder to unpack into (default: <virtual environment>/{FOLDER})")
    p.add_argument("--sdist", type=Path, help=f"use this local {PROJECT}-{VERSION}.tar.gz instead of downloading")
    p.add_argument("--force", action="store_true", help="unpack again even if the copy is in place")
    return p.parse_args(argv)


def default_target() -> Path:
    if sys.prefix == sys.base_prefix:
        raise FetchError(f"{sys.executable} is not a virtual environment's python; run this script with "
                         f"the project's .venv/bin/python (make install does), or pass --target")
    return Path(sys.prefix) / FOLDER


def other_detectron2(target: Path):
    """Where an importable detectron2 lives, if it is not our copy."""
    spec = importlib.util.find_spec("detectron2")
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin).resolve()
    return None if target.resolve() in origin.parents else origin.parent


def sdist_url() -> tuple:
    """(url, sha256) of the sdist, from PyPI's JSON API."""
    last_error = None
    for url in JSON_URLS:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                meta = json.load(response)
        except urllib.error.HTTPError as err:  # e.g. a mirror that only serves the project page
            last_error = err
            continue
        except (urllib.error.URLError, OSError) as err:
            raise offline(err) from None
        if meta.get("info", {}).get("version") == VERSION:
            files = meta["urls"]
        else:
            files = meta.get("releases", {}).get(VERSION, [])
        for entry in files:
            if entry.get("packagetype") == "sdist" and entry["filename"].endswith(".tar.gz"):
                return entry["url"], entry["digests"]["sha256"]
        raise FetchError(f"PyPI lists no source distribution for {PROJECT} {VERSION} at {url}")
    raise FetchError(f"PyPI's JSON API did not answer for {PROJECT} {VERSION} ({last_error})")


def offline(err) -> FetchError:
    return FetchError(
        f"could not reach pypi.org to download {PROJECT} {VERSION} ({err}). Without network access, download "
        f"{PROJECT}-{VERSION}.tar.gz (sha256 {SHA256}) elsewhere and run "
        f"tools/fetch_detectron2.py --sdist PATH; the detectron2 tests are skipped until then")


def download(url: str, digest: str) -> bytes:
    if digest != SHA256:
        raise FetchError(f"PyPI's sha256 for {PROJECT} {VERSION} is {digest}, not the pinned {SHA256}; "
                         f"refusing to install it")
    print(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        raise offline(err) from None


def check_digest(data: bytes, origin: str):
    actual = hashlib.sha256(data).hexdigest()
    if actual != SHA256:
        raise FetchError(f"{origin} has sha256 {actual}, expected {SHA256} ({PROJECT}-{VERSION}.tar.gz); "
                         f"it is damaged or another file")


def unpack(data: bytes, staging: Path):
    """Regular files under detectron2/ (and configs/, LICENSE) only; no links, no paths outside staging."""
    root = f"{PROJECT}-{VERSION}/"
    wanted = {"detectron2/": "detectron2/", "configs/": "detectron2/model_zoo/configs/", "LICENSE": "LICENSE"}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(root):
                continue
            name = member.name[len(root):]
            for prefix, dest in wanted.items():
                if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
                    out = staging / (dest + name[len(prefix):]) if prefix.endswith("/") else staging / dest
                    break
            else:
                continue
            parts = Path(name).parts
            if Path(name).is_absolute() or ".." in parts:
                raise FetchError(f"refusing a path outside the package in the sdist: {member.name}")
            if out.exists() and name.startswith("configs/"):
                continue  # the package's own copy of the configs wins
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
    if not (staging / "detectron2" / "__init__.py").is_file():
        raise FetchError(f"the sdist holds no detectron2 package under {root}")
    if not (staging / "detectron2" / "model_zoo" / "configs" / "Base-RCNN-FPN.yaml").is_file():
        raise FetchError("the sdist holds no model-zoo configs (detectron2/model_zoo/configs)")


def apply_patches(package: Path):
    for rel, old, new, count in PATCHES:
        path = package / rel
        text = path.read_text()
        found = text.count(old)
        if found != count:
            raise FetchError(f"patch for {rel}: expected {count} occurrence(s) of {old!r}, found {found}")
        path.write_text(text.replace(old, new))


def write_pth(target: Path) -> Path:
    site = Path(sysconfig.get_paths()["purelib"])
    pth = site / PTH_NAME
    pth.write_text(f"{target.resolve()}\n")
    return pth


def is_installed(target: Path) -> bool:
    try:
        marker = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("sha256") == SHA256 and marker.get("patches") == PATCHES_VERSION


def check_import(target: Path):
    """Import detectron2 from a fresh interpreter: catches missing dependencies now, not in the tests."""
    code = "import detectron2, detectron2.config, detectron2.modeling; print(detectron2.__file__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        hint = " (install the project's dev extra: pip install -e '.[dev]')" if "ModuleNotFoundError" in last else ""
        raise FetchError(f"detectron2 was unpacked to {target} but does not import: {last}{hint}")
    return result.stdout.strip()


def main(argv=None):
    args = parse_args(argv)
    target = (args.target or default_target()).absolute()
    elsewhere = other_detectron2(target)
    if elsewhere is not None:
        print(f"detectron2 is already installed at {elsewhere}; nothing to do")
        return
    if is_installed(target) and not args.force:
        write_pth(target)  # cheap; restores the link if site-packages was rebuilt
        print(f"detectron2 {VERSION} (from {PROJECT}) is already in {target}")
        return
    if args.sdist:
        try:
            data = args.sdist.read_bytes()
        except OSError as err:
            raise FetchError(f"cannot read --sdist {args.sdist}: {err.strerror or err}") from None
        check_digest(data, str(args.sdist))
    else:
        url, digest = sdist_url()
        data = download(url, digest)
        check_digest(data, url)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-", dir=target.parent))
    try:
        unpack(data, staging)
        apply_patches(staging / "detectron2")
        (staging / "detectron2" / "_C.py").write_text(PLACEHOLDER_C)
        (staging / MARKER).write_text(json.dumps(
            {"project": PROJECT, "version": VERSION, "sha256": SHA256, "patches": PATCHES_VERSION,
             "patched": [f"detectron2/{rel}: {old!r} -> {new!r}" for rel, old, new, _ in PATCHES],
             "placeholder": "detectron2/_C.py"}, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pth = write_pth(target)
    location = check_import(target)
    print(f"installed detectron2 {VERSION}'s Python code from {PROJECT} into {target} "
          f"(import path via {pth}; placeholder detectron2/_C.py, no compiled ops): {location}")


if __name__ == "__main__":
    try:
        main()
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
