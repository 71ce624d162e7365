"""Safe file formats: atomic JSON writes, safetensors and checksums.

Nothing here unpickles: results are JSON + safetensors, study files are YAML read with ``safe_load``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import RestudyError, UnsafeFileError

PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN/inf floats by None so the JSON is strict and portable."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps_json(obj: Any, *, indent: int | None = 2) -> str:
    return json.dumps(_finite(obj), indent=indent, default=_json_default, sort_keys=False,
                      allow_nan=False, ensure_ascii=False)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the whole new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as strict JSON (NaN/inf become null)."""
    atomic_write_text(path, dumps_json(obj) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise RestudyError("file not found", where=str(path)) from e
    except json.JSONDecodeError as e:
        raise RestudyError(f"not valid JSON: {e}", where=str(path)) from e


def save_tensors(path: str | os.PathLike[str], tensors: dict[str, Any],
                 metadata: dict[str, str] | None = None) -> str:
    """Atomically save torch tensors as safetensors; returns the file's sha256."""
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_tensors(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a safetensors file (never a pickle)."""
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES:
        raise UnsafeFileError("refusing to unpickle a file; use safetensors", where=str(path))
    from safetensors.torch import load_file

    return load_file(str(path))


def file_digest(path: str | os.PathLike[str], algo: str = "md5", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
