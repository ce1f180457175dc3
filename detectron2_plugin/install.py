"""Install detectron2 0.6's Python code into this virtual environment for the tests (CI and ``make install``).

    .venv/bin/python -m detectron2_plugin.install             # idempotent; make install runs it
    .venv/bin/python -m detectron2_plugin.install --sdist pb1-detectron2-0.6.tar.gz   # offline, from a local copy

(tools/fetch_detectron2.py runs the same program.) detectron2 publishes no
wheels, and building it from its repository needs a C++/CUDA toolchain. For
real use, install it from its repository (see the README). For the tests,
this program takes the ``pb1-detectron2==0.6`` source distribution, which
carries detectron2 0.6's Python package and its model-zoo configs but not its
C++ sources (so ``pip install`` of it fails), and makes that Python code
importable without building anything:

1. download the sdist with this interpreter's pip (``pip download --no-deps
   --no-binary :all:``), so the user's index, proxy, certificates and cache
   settings apply; pip checks it against the sha256 pinned below before it
   runs anything from it, and so does this program afterwards. pip prepares
   the sdist's metadata by running its setup.py, which imports torch and
   setuptools: ``--no-build-isolation`` lets it use this environment's
   (install the project first, as make install does: torch requires a
   setuptools recent enough to build wheels);
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
when this copy is already in place. Only the Python standard library is used
(and pip, as a program), since this runs before detectron2 exists.
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
from pathlib import Path

PROJECT, VERSION = "pb1-detectron2", "0.6"
SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"  # pb1-detectron2-0.6.tar.gz
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
        raise FetchError(f"{sys.executable} is not a virtual environment's python; run this program with "
                         f"the project's .venv/bin/python (make install does), or pass --target")
    return Path(sys.prefix) / FOLDER


def other_detectron2(target: Path):
    """Where an importable detectron2 lives, if it is not our copy."""
    spec = importlib.util.find_spec("detectron2")
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin).resolve()
    return None if target.resolve() in origin.parents else origin.parent


def pip_download_command(requirements: Path, folder: Path) -> list:
    """``pip download`` of the pinned sdist, hash-checked by pip (the requirements file carries the sha256)."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
            "--requirement", str(requirements), "--dest", str(folder)]


def download() -> bytes:
    """The sdist's bytes, downloaded by pip from the user's configured index."""
    with tempfile.TemporaryDirectory(prefix=f"{PROJECT}-") as tmp:
        folder = Path(tmp) / "download"
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"{PROJECT}=={VERSION} --hash=sha256:{SHA256}\n")
        command = pip_download_command(requirements, folder)
        print(f"downloading {PROJECT}=={VERSION} with pip: {' '.join(command[1:])}", flush=True)
        try:
            result = subprocess.run(command)
        except OSError as err:
            raise FetchError(f"could not run pip ({err})") from None
        if result.returncode != 0:
            raise FetchError(
                f"pip could not download {PROJECT}=={VERSION} (exit status {result.returncode}; its messages are "
                f"above). pip runs the sdist's setup.py to read its metadata, which needs torch and a setuptools that "
                f"builds wheels (70.1 or later, or the wheel package) in this environment: install the project "
                f"first (make install does; torch requires such a setuptools). Without network access, get "
                f"{PROJECT}-{VERSION}.tar.gz (sha256 {SHA256}) elsewhere, e.g. with pip download --no-deps "
                f"--no-binary :all: --no-build-isolation {PROJECT}=={VERSION}, and pass it with --sdist PATH; "
                f"the detectron2 tests need it")
        files = sorted(folder.glob("*.tar.gz"))
        if len(files) != 1:
            raise FetchError(f"pip download left {[p.name for p in files] or 'no'} source archive(s) in {folder}, "
                             f"expected {PROJECT}-{VERSION}.tar.gz")
        data = files[0].read_bytes()
    check_digest(data, f"{files[0].name} (downloaded by pip)")
    return data


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


def install(target=None, sdist=None, force=False) -> Path:
    """Put detectron2 0.6's patched Python code in ``target`` and on the import path; returns ``target``."""
    target = Path(target or default_target()).absolute()
    elsewhere = other_detectron2(target)
    if elsewhere is not None:
        print(f"detectron2 is already installed at {elsewhere}; nothing to do")
        return target
    if is_installed(target) and not force:
        write_pth(target)  # cheap; restores the link if site-packages was rebuilt
        print(f"detectron2 {VERSION} (from {PROJECT}) is already in {target}")
        return target
    if sdist:
        try:
            data = Path(sdist).read_bytes()
        except OSError as err:
            raise FetchError(f"cannot read --sdist {sdist}: {err.strerror or err}") from None
        check_digest(data, str(sdist))
    else:
        data = download()

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
    return target


def main(argv=None):
    """The program: a :class:`FetchError` prints ``error: ...`` and exits with status 2."""
    args = parse_args(argv)
    try:
        install(args.target, args.sdist, args.force)
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
