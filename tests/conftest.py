import os

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
