"""The package installs for real: a non-editable `pip install .`, used from another folder."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(command, cwd, env):
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_a_non_editable_install_trains_and_evaluates_from_another_folder(small_shapes, tmp_path):
    # a copy of the sources, so no build/ of an earlier build leaks into the wheel
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "output", "datasets", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    site = tmp_path / "site"  # the project's wheel, installed alone; its dependencies come from this environment
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", site,
          source], cwd=tmp_path, env=os.environ)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "DETECTION_DATASETS": str(small_shapes), "OMP_NUM_THREADS": "1"}
    where = _run([sys.executable, "-c", "import detection, pretraining; print(detection.__file__, "
                  "pretraining.__file__)"], work, env)
    assert where.split() == [str(site / "detection" / "__init__.py"), str(site / "pretraining" / "__init__.py")]
    assert (site / "detection" / "configs" / "shapes_demo.yaml").is_file()  # the configs are package data
    data = work / "shapes.yaml"  # the small tree, as a user's COCO data
    data.write_text(f"format: coco\ntrain: {{images: {small_shapes}/shapes/JPEGImages, "
                    f"annotations: {small_shapes}/shapes/instances_train.json}}\n"
                    f"val: {{images: {small_shapes}/shapes/JPEGImages, "
                    f"annotations: {small_shapes}/shapes/instances_val.json}}\n")
    # a shipped config by its name, from a folder that has no configs/: found inside the package
    printed = _run([site / "bin" / "rdt-train", "--config", "configs/shapes_demo.yaml", "--dataset", data,
                    "--pretrained", "none", "--output", "run", "solver.max_iter=2", "data.num_workers=0",
                    "model.min_size=96", "model.max_size=96"], work, env)
    assert "wrote run/model_final.pth" in printed
    printed = _run([sys.executable, "-m", "detection.cli.eval_coco", "--checkpoint", "run/model_final.pth"], work, env)
    assert "COCO evaluation on 8 images of shapes_val" in printed
    assert (work / "run" / "model_final.shapes_val.eval_coco.json").is_file()
