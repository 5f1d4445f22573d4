"""Canonical bytes of a JSON tree, and content-addressed blobs for its large sub-trees.

:func:`dumps` / :func:`loads` are the only way checkpoint trees become bytes and back (no
pickle: anything else is a ``CheckpointError``). :func:`pack` / :func:`unpack` split large
sub-trees into blobs so a large value carried unchanged through many checkpoints is stored
once.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any, TypeAlias

from ._errors import CheckpointError
from ._serde_registry import SerializationError, _Fail, _short_repr

__all__ = ("JSON", "dumps", "loads", "pack", "unpack")

JSON: TypeAlias = Any
"""A JSON tree: None, bool, int, float, str, list of JSON, dict of str to JSON."""

_BLOB = "$blob"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_enc_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


# --------------------------------------------------------------------------- bytes


def dumps(value: JSON) -> bytes:
    """Canonical bytes of a JSON tree: sorted keys, compact, ASCII (lone surrogates survive)."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"not a JSON tree ({exc}); encode() it first") from None
    return text.encode("ascii")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def loads(data: bytes) -> JSON:
    """Parse bytes from :func:`dumps`; anything else (pickle, garbage) is a ``CheckpointError``."""
    try:
        return json.loads(data.decode("ascii"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"not canonical JSON ({exc.__class__.__name__}: {exc})") from None


# --------------------------------------------------------------------------- blobs

_REF_SIZE = len(b'{"$blob":""}') + 64
# Messages are immutable and a large payload is usually the same str object from checkpoint
# to checkpoint: remember its encoding and hash by identity (the entry keeps it alive, so
# the id cannot be reused while cached).
_BIG_STRINGS: dict[int, tuple[str, bytes, str]] = {}
_BIG_STRINGS_MAX = 64
_BIG_STRINGS_LOCK = threading.Lock()


def pack(tree: JSON, *, min_blob_bytes: int = 1024) -> tuple[JSON, dict[str, bytes]]:
    """Replace every sub-tree whose canonical JSON is at least ``min_blob_bytes`` by a blob.

    Post-order: a large string inside a small dict becomes its own blob and the dict stays
    inline, so only what changed is new. The root itself is never replaced. Also checks that
    ``tree`` is strict JSON (no tuples, non-``str`` keys or NaN that ``json`` would coerce).

    Returns:
        The packed tree and its blobs by sha256 hex digest (every blob it references,
        transitively).
    """
    blobs: dict[str, bytes] = {}
    small = max(0, (min_blob_bytes - 2) // 6)

    def walk(node: JSON, root: bool) -> tuple[JSON, int]:
        t = type(node)
        new: JSON
        if t is str:
            n = len(node)
            if n < small:  # cannot reach the threshold even if every char were escaped
                return node, n + 2
            cached = _BIG_STRINGS.get(id(node))
            if cached is not None and cached[0] is node:  # the same immutable payload again
                data, digest = cached[1], cached[2]
            else:
                data = _enc_str(node).encode("ascii")
                digest = hashlib.sha256(data).hexdigest()
                with _BIG_STRINGS_LOCK:  # stores pack in worker threads, concurrently
                    if len(_BIG_STRINGS) >= _BIG_STRINGS_MAX:
                        _BIG_STRINGS.pop(next(iter(_BIG_STRINGS)))
                    _BIG_STRINGS[id(node)] = (node, data, digest)
            if root or len(data) < min_blob_bytes:
                return node, len(data)
            blobs[digest] = data
            return {_BLOB: digest}, _REF_SIZE
        elif t is dict:
            if _BLOB in node:
                raise _Fail(f"reserved key {_BLOB!r} in a tree that was not encode()d")
            new = {}
            size = 1
            key = ""
            try:
                for key, item in node.items():
                    if type(key) is not str:
                        raise _Fail(f"key {key!r} is not a str; encode() the value first")
                    new[key], sub = walk(item, False)
                    size += len(_enc_str(key)) + sub + 2
            except _Fail as fail:
                fail.segments.append(f"[{key!r}]")
                raise
            size = max(size, 2)
        elif t is list:
            new = []
            size = 1
            i = 0
            try:
                for i, item in enumerate(node):  # noqa: B007
                    packed, sub = walk(item, False)
                    new.append(packed)
                    size += sub + 1
            except _Fail as fail:
                fail.segments.append(f"[{i}]")
                raise
            size = max(size, 2)
        elif t is bool or node is None:
            return node, 4 if node is not False else 5
        elif t is int:
            try:
                return node, len(repr(node))
            except ValueError:  # beyond the int<->str digit limit
                raise _Fail("int too large for plain JSON; encode() the value first") from None
        elif t is float:
            if not math.isfinite(node):
                raise _Fail(f"{node!r} is not JSON; encode() the value first")
            return node, len(repr(node))
        else:
            raise _Fail(f"{t.__qualname__} is not a JSON value; encode() the value first")
        if root or size < min_blob_bytes:
            return new, size
        data = dumps(new)
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {_BLOB: digest}, _REF_SIZE

    try:
        packed, _ = walk(tree, True)
    except _Fail as fail:
        raise SerializationError(f"{fail.path('data')}: {fail.message}") from None
    except RecursionError:
        raise SerializationError("data: nested too deeply to checkpoint") from None
    return packed, blobs


def unpack(tree: JSON, get_blob: Callable[[str], bytes]) -> JSON:
    """Inverse of :func:`pack`: fetch and verify each referenced blob (shared, read-only).

    Raises:
        CheckpointError: a blob is missing, malformed, or its content fails its sha256.
    """
    cache: dict[str, JSON] = {}

    def walk(node: JSON) -> JSON:
        t = type(node)
        if t is list:
            return [walk(x) for x in node]
        if t is not dict:
            return node
        if _BLOB not in node:
            return {k: walk(v) for k, v in node.items()}
        digest = node[_BLOB]
        if len(node) != 1 or type(digest) is not str or not _HEX64.fullmatch(digest):
            raise CheckpointError(f"malformed blob reference {_short_repr(node)}")
        if digest in cache:
            return cache[digest]
        try:
            data = get_blob(digest)
        except KeyError:
            raise CheckpointError(f"blob {digest} is missing from the store") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise CheckpointError(f"blob {digest} fails its sha256 check (altered or truncated)")
        value = cache[digest] = walk(loads(data))
        return value

    try:
        return walk(tree)
    except RecursionError:
        raise CheckpointError("packed data is nested too deeply") from None
