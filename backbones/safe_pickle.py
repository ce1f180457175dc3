"""Read ``.pkl`` weight files without letting them run code.

Unpickling calls whatever callable the file names (``os.system``, ``open``,
...), so a weight file from the internet is a program. detectron2's model-zoo
files and the Caffe2/Detectron ``R-50.pkl`` are plain pickles of numpy arrays
in dicts, so an unpickler that resolves only the globals such files need is
enough to read them and refuses everything else before it is called.
"""
import codecs
import pickle
from pathlib import Path

from .errors import UserError


class UnsafePickleError(UserError):
    """The file names a global that a weight file has no business calling."""


_NUMPY_ARRAY = {"_reconstruct", "scalar"}  # ndarray and numpy-scalar rebuilders
# (module, name) -> None: the real global, found by pickle itself; a str: the unpickler's method.
_ALLOWED = {
    **{(m, n): None for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in _NUMPY_ARRAY},
    # protocol 5 (Python 3.14's default) rebuilds arrays with frombuffer
    ("numpy.core.numeric", "_frombuffer"): None, ("numpy._core.numeric", "_frombuffer"): None,
    ("numpy", "ndarray"): None, ("numpy", "dtype"): None,
    ("collections", "OrderedDict"): None,
    ("_codecs", "encode"): "_latin1_encode",
    **{(m, n): None for m in ("builtins", "__builtin__")
       for n in ("dict", "list", "tuple", "str", "int", "float", "bytes", "bool")},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path, **kwargs):
        super().__init__(file, **kwargs)
        self.path = path

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"{self.path} refers to {module}.{name}, which a weight file does not need and which "
                f"could run code when loaded; refusing to load it. Only numpy arrays in dicts/lists are "
                f"accepted from .pkl files: convert the file with the tool that wrote it, or use a "
                f".safetensors or .pth state dict")
        replacement = _ALLOWED[(module, name)]
        return getattr(self, replacement) if replacement else super().find_class(module, name)

    def _latin1_encode(self, text, encoding="latin1"):
        # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1");
        # admit that use only, not every codec the name could reach.
        if codecs.lookup(encoding).name != "iso8859-1":
            raise UnsafePickleError(f"{self.path} calls _codecs.encode with encoding {encoding!r}, which "
                                    f"a weight file does not need; refusing to load it")
        return codecs.encode(text, "latin1")


def load(path, encoding="latin1"):
    """Unpickle ``path`` admitting only numpy arrays and plain containers.

    ``encoding="latin1"`` reads Python 2 pickles (Caffe2's) as well: their byte
    strings become str, which numpy turns back into array data.
    """
    path = Path(path)
    with open(path, "rb") as f:
        return _RestrictedUnpickler(f, path, encoding=encoding).load()
