"""Package dependencies are enforced, not conventions: the import-linter contracts of pyproject.toml."""
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("backbones", "pretraining", "detection", "detectron2_plugin")


def _lint(cwd, *args):
    return subprocess.run([str(LINT_IMPORTS), "--config", str(PYPROJECT), *args], cwd=cwd, capture_output=True,
                          text=True)


def test_the_project_keeps_its_contracts():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def _stub_project(tmp_path, extra: dict) -> Path:
    """The four packages as empty stubs, plus ``extra`` {relative path: source}."""
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    for path, source in extra.items():
        (tmp_path / path).write_text(source)
    return tmp_path


def test_an_import_inside_a_function_breaks_the_layers(tmp_path):
    project = _stub_project(tmp_path, {
        "backbones/pretraining_hook.py": "def crops():\n    from detection.data import catalog\n    return catalog\n",
        "detection/data.py": ""})
    result = _lint(project)
    assert result.returncode == 1
    assert "backbones.pretraining_hook -> detection.data" in result.stdout


def test_pretraining_may_not_import_detection_nor_the_library_tools(tmp_path):
    project = _stub_project(tmp_path, {
        "pretraining/run.py": "import detection\n",
        "detection/cli.py": "def main():\n    import tools.train_det\n"})
    result = _lint(project)
    assert result.returncode == 1
    assert "pretraining.run -> detection" in result.stdout and "detection.cli -> tools" in result.stdout


def test_backbones_alone_loads_nothing_else_of_the_project():
    code = ("import sys, backbones; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(PACKAGES)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['backbones']"


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"])
    found = set(find_packages(str(ROOT), include=[f"{p}*" for p in PACKAGES]))
    assert listed == found | {"detection.configs"}  # configs/, installed as detection/configs
