"""Safe file formats: atomic JSON writes, safetensors, checksums and bounded YAML.

Nothing here unpickles: results are JSON + safetensors, study files are YAML read by a safe loader
that also caps document size, alias expansion and nesting (:func:`load_yaml_text`). Tensors whose
checksum is on record are read through :func:`load_verified`, which refuses a file that changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import RestudyError, StoreError, StudyError, UnsafeFileError

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
    return json.dumps(
        _finite(obj), indent=indent, default=_json_default, sort_keys=False, allow_nan=False, ensure_ascii=False
    )


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


def save_tensors(path: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> str:
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


# --- verified reads: a file's sha256, computed once per process --------------------------------

_DIGESTS: dict[tuple[str, int, int, int, int, int], str] = {}


def _signature(path: Path) -> tuple[str, int, int, int, int, int]:
    """What identifies one version of a file: a rewrite, a copy over it or a touch changes it."""
    st = path.stat()
    return (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The file's sha256, cached per process by (path, inode, size, mtime, ctime).

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    sig = _signature(path)
    if sig not in _DIGESTS:
        _DIGESTS[sig] = file_digest(path, "sha256")
    return _DIGESTS[sig]


def verify_file(path: str | os.PathLike[str], sha256: str) -> None:
    """Raise :class:`StoreError` unless the file exists and its sha256 is ``sha256``."""
    try:
        got = sha256_of(path)
    except OSError as e:
        raise StoreError(f"cannot read a recorded file: {e.strerror or e}", where=str(path)) from e
    _same_digest(path, got, sha256)


def _same_digest(path: str | os.PathLike[str], got: str, sha256: str) -> None:
    if got != sha256:
        raise StoreError(
            "the file does not match the sha256 its run recorded (changed or copied from another run)",
            where=str(path),
            got=got,
            allowed=sha256,
        )


def load_verified(path: str | os.PathLike[str], sha256: str) -> dict[str, Any]:
    """Load a safetensors file only if its sha256 is the recorded one.

    The file is read once: its bytes are hashed and then decoded, so what is returned is what was
    checked (no window in which the file could change between the check and the read).

    Raises:
        StoreError: the file is missing, unreadable or does not match ``sha256``.
        UnsafeFileError: the file is a pickle.
    """
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES:
        raise UnsafeFileError("refusing to unpickle a file; use safetensors", where=str(path))
    try:
        sig = _signature(path)
        data = path.read_bytes()
    except OSError as e:
        raise StoreError(f"cannot read a recorded file: {e.strerror or e}", where=str(path)) from e
    got = hashlib.sha256(data).hexdigest()
    _same_digest(path, got, sha256)
    _DIGESTS[sig] = got
    from safetensors.torch import load

    return load(data)


# --- YAML with limits ----------------------------------------------------------------------------

MAX_YAML_BYTES = 1_000_000
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 200_000  # nodes after expanding aliases: a study file has a few thousand
MAX_YAML_DEPTH = 100


def truncate(text: str, n: int = 200) -> str:
    """``text`` if it has at most ``n`` characters, else its start and how long it was."""
    text = str(text)
    if len(text) <= n:
        return text
    return f"{text[: max(n, 1)]}… ({len(text)} characters)"


def load_yaml_text(
    text: str,
    *,
    where: str | None = None,
    max_bytes: int = MAX_YAML_BYTES,
    max_aliases: int = MAX_YAML_ALIASES,
    max_nodes: int = MAX_YAML_NODES,
    max_depth: int = MAX_YAML_DEPTH,
) -> tuple[Any, Any]:
    """Parse one YAML document safely; return ``(data, root node)`` (both ``None`` if empty).

    Like ``yaml.safe_load`` (no tags that build Python objects), and in addition it refuses, in
    well under a second: a document over ``max_bytes``; more than ``max_aliases`` aliases; a
    document that expands to more than ``max_nodes`` nodes through its aliases (a "billion
    laughs"); nesting deeper than ``max_depth``; a key that appears twice in one mapping. The
    node tree gives line numbers for later error messages.

    Args:
        text: the document.
        where: the file it came from; errors name ``where:line``.

    Raises:
        StudyError: not YAML, or over one of the limits (the message names the limit and line).
    """
    import yaml

    size = len(text.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise StudyError(f"the YAML document is {size} bytes; the limit is {max_bytes}", where=where)
    loader = _bounded_loader()(text)
    loader.max_aliases = max_aliases
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_tree(root, max_nodes, max_depth)
        return loader.construct_document(root), root
    except _YamlLimit as e:
        raise StudyError(e.message, where=f"{where}:{e.line}" if where else f"line {e.line}") from None
    except RecursionError:
        raise StudyError(
            "the YAML document is nested too deeply", where=where, allowed=f"at most {max_depth} levels"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        if mark is not None and where:
            where = f"{where}:{mark.line + 1}"
        raise StudyError(f"not valid YAML: {truncate(str(e), 500)}", where=where) from None
    finally:
        loader.dispose()


class _YamlLimit(Exception):
    """A document over one of :func:`load_yaml_text`'s limits (becomes a ``StudyError``)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


class PrintedFloat(float):
    """A float read from YAML that remembers the text it was written as (``99.90``, ``1.0e-3``):
    the printed digits of a reported value set its rounding slack, and a float alone would lose
    the trailing zero. Equal to, hashed and serialised like the plain float."""

    text: str

    def __new__(cls, value: float, text: str) -> PrintedFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __reduce__(self) -> tuple[Any, tuple[float, str]]:
        return (PrintedFloat, (float(self), self.text))


@functools.cache
def _bounded_loader() -> type:
    """The pure-Python ``SafeLoader``, counting aliases as it composes (the C loader composes out
    of reach), whose floats keep the text they were written as when it is not the float's own
    shortest form (:class:`PrintedFloat`). Built on first use so that importing safeio does not
    import yaml."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        max_aliases = MAX_YAML_ALIASES
        aliases = 0

        def construct_yaml_float(self, node: Any) -> Any:
            value = super().construct_yaml_float(node)
            text = str(node.value).strip()
            if isinstance(value, float) and math.isfinite(value) and text != repr(value):
                return PrintedFloat(value, text)
            return value

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > self.max_aliases:
                    raise _YamlLimit(
                        self.peek_event().start_mark.line + 1,
                        f"more than {self.max_aliases} YAML aliases (*name); the document is refused",
                    )
            return super().compose_node(parent, index)

    BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_yaml_float)
    return BoundedLoader


def _check_tree(root: Any, max_nodes: int, max_depth: int) -> None:
    """Refuse a tree that expands past ``max_nodes``, nests past ``max_depth`` or repeats a key.

    Sizes are memoised per node, so a tree of shared (aliased) nodes is measured in time linear in
    its distinct nodes although its expansion may be astronomically large.
    """
    import yaml

    sizes: dict[int, int] = {}

    def size(node: Any, depth: int) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > max_depth:
            raise _YamlLimit(node.start_mark.line + 1, f"the YAML document is nested more than {max_depth} levels deep")
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            _check_duplicate_keys(node)
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > max_nodes:
                raise _YamlLimit(
                    node.start_mark.line + 1,
                    f"the YAML document expands to more than {max_nodes} values through its aliases",
                )
        sizes[id(node)] = total
        return total

    size(root, 0)


def _check_duplicate_keys(node: Any) -> None:
    """Refuse a mapping that names one key twice (YAML readers silently keep the last)."""
    import yaml

    first: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        line = key.start_mark.line + 1
        ident = (key.tag, key.value)
        if ident in first:
            raise _YamlLimit(
                line, f"the key {truncate(key.value, 80)!r} appears twice in one mapping (first on line {first[ident]})"
            )
        first[ident] = line
