import os

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


# --- nothing skips silently ---------------------------------------------------------------------------
# `pytest -rs` (addopts) lists every skip. Under CI (CI set to anything but ""/0/false) a skip fails the run:
# what `make` installs is imported normally, so a skip there means a test did not run. Only tests marked
# @pytest.mark.gpu (they need CUDA, which CI machines lack) may skip.
_CI_SKIPS = pytest.StashKey[list]()


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config):
    config.stash[_CI_SKIPS] = []


def _note_skip(config, report, exempt):
    if report.skipped and not hasattr(report, "wasxfail") and not exempt:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        config.stash[_CI_SKIPS].append((report.nodeid, reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _note_skip(item.config, report, exempt=item.get_closest_marker("gpu") is not None)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):  # a module skipped while importing (module-level importorskip)
    report = yield
    _note_skip(collector.config, report, exempt=False)
    return report


def pytest_terminal_summary(terminalreporter, config):
    skips = config.stash[_CI_SKIPS]
    if skips and _under_ci():
        terminalreporter.section("skipped under CI (fails the run)", sep="=", red=True, bold=True)
        for nodeid, reason in skips:
            terminalreporter.write_line(f"{nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if session.config.stash[_CI_SKIPS] and _under_ci() and exitstatus in (pytest.ExitCode.OK,
                                                                          pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def small_shapes_root(tmp_path_factory):
    """A small shapes tree, generated once per test session."""
    from detection.data import shapes
    root = tmp_path_factory.mktemp("data")
    config = shapes.ShapesConfig(seed=1, num_train=24, num_val=8)
    shapes.generate(root / "shapes", config)
    return root, config


@pytest.fixture
def small_shapes(small_shapes_root, monkeypatch):
    """Point the catalog's shapes_train/shapes_val at the small tree."""
    from detection.data import catalog
    root, config = small_shapes_root
    monkeypatch.setenv("DETECTION_DATASETS", str(root))
    monkeypatch.setattr(catalog, "SHAPES_CONFIG", config)
    return root


class _CreatesFile:
    """Unpickling this calls open(path, "w"): proof that a loader ran code from the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def code_running_pickle(tmp_path):
    """write(path, wrap) pickles wrap(payload) to path; returns the marker file the payload would create."""
    import pickle

    def write(path, wrap):
        marker = tmp_path / "code-ran"
        with open(path, "wb") as f:
            pickle.dump(wrap(_CreatesFile(marker)), f, protocol=2)  # what torch.load expects
        return marker
    return write
