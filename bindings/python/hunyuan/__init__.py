"""Tencent Hunyuan language and 3D models on the CPU (binding of libhunyuan).

Errors raised by the library are subclasses of :class:`HunyuanError` carrying the library's message:
InvalidArgumentError (also a ValueError), IOError (also an OSError), FormatError, UnsupportedError,
OutOfMemoryError (also a MemoryError), ContextFullError, AbortedError, InternalError.
"""
from . import _native
from ._native import (
    AbortedError,
    ContextFullError,
    FormatError,
    HunyuanError,
    InternalError,
    InvalidArgumentError,
    IOError,
    OutOfMemoryError,
    UnsupportedError,
)
from .checkpoint import Checkpoint
from .mesh import Mesh, mesh_from_grid
from .model import Model, Tokenizer
from .generator import Generator
from .mvd import MultiView
from .recon import Reconstructor, load_image

__version__ = "0.1.0"


def version() -> str:
    """Version of the loaded libhunyuan."""
    return _native.version()


def system_info() -> str:
    """CPU features the kernels use and build information."""
    return _native.system_info()


__all__ = [
    "AbortedError", "Checkpoint", "ContextFullError", "FormatError", "HunyuanError", "IOError",
    "Generator", "InternalError", "InvalidArgumentError", "Mesh", "Model", "MultiView", "Reconstructor", "Tokenizer", "load_image", "OutOfMemoryError", "UnsupportedError", "mesh_from_grid",
    "system_info", "version",
]
