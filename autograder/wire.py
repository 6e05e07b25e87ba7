"""The one format of what a graded function returns, as it crosses sandbox → grader → judge.

A value is what a graded function may return: None, a number (``bool int float complex`` or a NumPy
scalar), a numeric array (dtype kinds ``b i u f c``), a torch tensor (turned into an array), or tuples,
lists and dicts (str keys) of those, nested at most :data:`MAX_DEPTH` containers deep. A list that NumPy
turns into one numeric array becomes that array; any other list becomes a tuple.

``encode(value) -> (structure, arrays)`` splits a value into a JSON-able description and its arrays;
``decode(structure, arrays)`` is its inverse and trusts neither argument. ``dumps(value)`` writes both into
ONE ``.npz`` (the description is the uint8 member ``__structure__``, UTF-8 JSON), so one file per case
carries everything and cannot tear; ``loads(raw, max_bytes=..., max_elements=...)`` reads it back, safe on
hostile bytes: every size is checked before anything is inflated (:func:`read_npz`), JSON nesting before
it is parsed (:func:`load_json`), and nothing is ever unpickled.

:func:`write_atomic` and :func:`read_untrusted` are the file operations both sides use: a reader never
sees a half-written file, and the grader never follows a link, blocks on a FIFO or reads past a cap.

This module imports only the standard library and NumPy: it is copied into the sandbox's runtime and
imported there by the harvest child, where neither ``autograder`` nor (necessarily) torch is importable.
Torch tensors are recognised by the name of their type's module.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import struct
import tempfile
import warnings
import zipfile

import numpy as np

__all__ = ["FormatError", "MAX_DEPTH", "MAX_ITEMS", "MAX_KEY_LENGTH", "MAX_ELEMENTS", "MAX_BYTES",
           "encode", "decode", "dumps", "loads", "read_npz", "load_json", "write_atomic", "read_untrusted"]

#: Most containers (tuple, list, dict) nested in one another in a value; a bare array has depth 0.
MAX_DEPTH = 8
#: Most entries of one value's description: every None, number, array and container counts one.
MAX_ITEMS = 10_000
#: Longest dict key, in characters.
MAX_KEY_LENGTH = 200
#: Most numbers (array elements) in one value.
MAX_ELEMENTS = 20_000_000
#: Most bytes of one value's arrays, and of one file holding it.
MAX_BYTES = 1 << 28

_KINDS = "biufc"                      # bool, signed and unsigned int, float, complex
_STRUCTURE = "__structure__"          # the npz member holding the description
_VERSION = 1
_MAX_STRUCTURE_BYTES = 1 << 24
#: JSON nesting of a ``dumps`` description: the document, then two levels (node, item list) per container.
_STRUCTURE_DEPTH = 2 * MAX_DEPTH + 2
_SCALAR_TYPES = {"bool": bool, "int": int, "float": float, "complex": complex}
_PYTHON_DTYPES = {"bool": np.bool_, "int": np.int64, "float": np.float64, "complex": np.complex128}
_SCALAR_KINDS = {"bool": "b", "int": "iu", "float": "f", "complex": "c", "numpy": _KINDS}
_NODE_KEYS = {"none": {"kind"}, "array": {"kind", "key"}, "scalar": {"kind", "key", "type"},
              "tuple": {"kind", "items"}, "dict": {"kind", "keys", "items"}}
_INT64 = np.iinfo(np.int64)
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)*\.npy")
_MAX_NAME_LENGTH = 200
_MAX_NPY_HEADER = 4096                # NumPy writes 64 to a few hundred bytes for numeric arrays
_MAX_NDIM = 32
_CHUNK = 1 << 18


class FormatError(ValueError):
    """A value that cannot cross the boundary, or bytes that are not a well-formed value.

    The message is one line a student can act on (it follows the function's name: "fit_gmm returned a
    str; ...").
    """


# ============================================================================================ encoding
def _is_tensor(x) -> bool:
    return str(getattr(type(x), "__module__", "")).split(".")[0] == "torch" and hasattr(x, "detach")


def _one_line(text, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _type_name(x) -> str:
    t = type(x)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return _one_line(name)


def _a(name: str) -> str:
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def _tensor_to_numpy(t, where: str) -> np.ndarray:
    """A torch tensor as a NumPy array on the CPU (bfloat16 and float8 become float32, complex32 complex64)."""
    try:
        t = t.detach()
        if str(getattr(t, "layout", "torch.strided")) != "torch.strided":
            t = t.to_dense()
        if getattr(t, "is_quantized", False):
            t = t.dequantize()
        t = t.cpu()
        if t.is_conj():
            t = t.resolve_conj()
        if t.is_neg():
            t = t.resolve_neg()
        dtype = str(t.dtype)
        if dtype == "torch.bfloat16" or dtype.startswith("torch.float8"):
            t = t.float()
        elif dtype == "torch.complex32":
            t = t.cfloat()
        a = t.numpy()
    except Exception as exc:  # noqa: BLE001 - any failure of a tensor-like object is the output's fault
        raise FormatError(f"returned a tensor{_at(where)} that cannot be turned into a NumPy array "
                          f"({type(exc).__name__}); return a plain tensor or array") from None
    if not isinstance(a, np.ndarray):
        raise FormatError(f"returned {_a(_type_name(t))}{_at(where)} that is not a real tensor; "
                          f"return a NumPy array or a tensor")
    return a


class _Encoder:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.arrays: dict = {}
        self.items = 0
        self.elements = 0
        self.nbytes = 0

    def count(self, n: int, where: str, *, add: bool = True) -> None:
        """Count ``n`` more entries (or, with ``add=False``, only check that they would fit)."""
        if self.items + n > MAX_ITEMS:
            raise FormatError(f"returned more than {MAX_ITEMS} values in nested containers{_at(where)}; "
                              f"return arrays instead of long tuples or lists")
        if add:
            self.items += n

    def leaf(self, a: np.ndarray, where: str, kind: str, **extra) -> dict:
        if a.dtype.kind not in _KINDS or a.dtype.hasobject or a.dtype.fields is not None:
            raise FormatError(f"returned an array of dtype {a.dtype}{_at(where)}; return a numeric array "
                              f"(bool, int, float or complex)")
        self.elements += a.size
        self.nbytes += a.nbytes
        if self.elements > MAX_ELEMENTS or self.nbytes > MAX_BYTES:
            raise FormatError(f"returned more than {MAX_ELEMENTS:,} numbers or {MAX_BYTES >> 20} MiB of data; "
                              f"return less")
        key = f"{self.prefix}{len(self.arrays)}"
        self.arrays[key] = a
        return {"kind": kind, "key": key, **extra}

    def node(self, x, depth: int, where: str) -> dict:
        self.count(1, where)
        if _is_tensor(x):
            x = _tensor_to_numpy(x, where)
        if x is None:
            return {"kind": "none"}
        if isinstance(x, np.generic):
            if x.dtype.kind not in _KINDS:
                raise FormatError(f"returned a NumPy {x.dtype} scalar{_at(where)}; return numbers")
            return self.leaf(np.asarray(x), where, "scalar", type="numpy")
        if isinstance(x, (bool, int, float, complex)):
            name = "bool" if isinstance(x, bool) else "int" if isinstance(x, int) else \
                "float" if isinstance(x, float) else "complex"
            if name == "int" and not _INT64.min <= x <= _INT64.max:
                raise FormatError(f"returned an integer that does not fit in 64 bits{_at(where)}; "
                                  f"return a float or a smaller integer")
            return self.leaf(np.asarray(x, dtype=_PYTHON_DTYPES[name]), where, "scalar", type=name)
        if isinstance(x, np.ndarray):
            return self.leaf(np.asarray(x), where, "array")
        if isinstance(x, (str, bytes, bytearray)):
            raise FormatError(f"returned a {type(x).__name__}{_at(where)}; return numbers "
                              f"(a number, a NumPy array or a tensor), not text")
        if not isinstance(x, (tuple, list, dict)):
            raise FormatError(f"returned {_a(_type_name(x))}{_at(where)}; return a NumPy array, a tensor, "
                              f"a number, or a tuple, list or dict of those")
        if depth >= MAX_DEPTH:
            raise FormatError(f"returned containers nested more than {MAX_DEPTH} deep{_at(where)}; "
                              f"return a flatter result")
        if isinstance(x, list):
            a = self.numeric_list(x)
            if a is not None:
                return self.leaf(a, where, "array")
        if isinstance(x, dict):
            keys = list(x)
            for k in keys:
                if not isinstance(k, str):
                    raise FormatError(f"returned a dict with a key of type {_type_name(k)}{_at(where)}; "
                                      f"use str keys")
                if len(k) > MAX_KEY_LENGTH:
                    raise FormatError(f"returned a dict key longer than {MAX_KEY_LENGTH} characters"
                                      f"{_at(where)}; use shorter keys")
            self.count(len(keys), where, add=False)      # fail before walking a huge container
            items = [self.node(x[k], depth + 1, f"{where}[{_one_line(repr(k), 40)}]") for k in keys]
            return {"kind": "dict", "keys": keys, "items": items}
        self.count(len(x), where, add=False)
        return {"kind": "tuple", "items": [self.node(v, depth + 1, f"{where}[{i}]") for i, v in enumerate(x)]}

    @staticmethod
    def numeric_list(x: list):
        """The numeric array NumPy makes of the list ``x``, or None (ragged, text, objects, ...)."""
        try:
            a = np.asarray([_tensor_to_numpy(v, "") if _is_tensor(v) else v for v in x])
        except Exception:  # noqa: BLE001 - ragged, recursive or odd content: kept as a tuple instead
            return None
        if a.dtype.kind not in _KINDS or a.dtype.hasobject or a.dtype.fields is not None:
            return None
        return a


def encode(value, *, prefix: str = "a") -> tuple[dict, dict]:
    """Split ``value`` into a JSON-able description and the arrays it refers to.

    Parameters
    ----------
    value : object
        What a graded function returned (see the module docstring for what is accepted).
    prefix : str
        Start of every array's key (``prefix + "0"``, ``prefix + "1"``, ...), so that several values can
        share one npz; letters, digits, "_" and "/" only.

    Returns
    -------
    structure : dict
        Nodes ``{"kind": "none"}``, ``{"kind": "array", "key"}``, ``{"kind": "scalar", "key", "type":
        "bool"|"int"|"float"|"complex"|"numpy"}``, ``{"kind": "tuple", "items": [node]}``,
        ``{"kind": "dict", "keys": [str], "items": [node]}``.
    arrays : dict str -> ndarray
        Numeric arrays (scalars as 0-d arrays), each referred to exactly once by ``structure``.

    Raises
    ------
    FormatError
        For anything else, anything nested deeper than MAX_DEPTH, or more than MAX_ITEMS, MAX_ELEMENTS or
        MAX_BYTES; the message is one line for the student.
    """
    enc = _Encoder(prefix)
    return enc.node(value, 0, ""), enc.arrays


# ============================================================================================ decoding
class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays
        self.used: set = set()
        self.items = 0

    def array(self, node: dict, kinds: str) -> np.ndarray:
        key = node["key"]
        if not isinstance(key, str) or key not in self.arrays:
            raise FormatError("malformed output: the description refers to a missing array")
        if key in self.used:
            raise FormatError("malformed output: the description refers to one array twice")
        self.used.add(key)
        a = self.arrays[key]
        if not isinstance(a, np.ndarray) or a.dtype.kind not in kinds or a.dtype.hasobject \
                or a.dtype.fields is not None:
            raise FormatError(f"malformed output: an array has dtype {getattr(a, 'dtype', '?')}")
        return a

    def node(self, node, depth: int):
        self.items += 1
        if self.items > MAX_ITEMS:
            raise FormatError(f"malformed output: more than {MAX_ITEMS} entries")
        if type(node) is not dict:
            raise FormatError("malformed output: an entry of the description is not an object")
        kind = node.get("kind")
        if not isinstance(kind, str) or _NODE_KEYS.get(kind) != set(node):
            raise FormatError(f"malformed output: unknown or incomplete entry {_one_line(kind, 20)!r}")
        if kind == "none":
            return None
        if kind == "array":
            return self.array(node, _KINDS)
        if kind == "scalar":
            kinds = _SCALAR_KINDS.get(node["type"]) if isinstance(node["type"], str) else None
            if kinds is None:
                raise FormatError("malformed output: unknown scalar type")
            a = self.array(node, kinds)
            if a.ndim != 0:
                raise FormatError("malformed output: a number is stored as an array")
            return a[()] if node["type"] == "numpy" else _SCALAR_TYPES[node["type"]](a.item())
        if depth >= MAX_DEPTH:
            raise FormatError(f"malformed output: containers nested more than {MAX_DEPTH} deep")
        items = node["items"]
        if type(items) is not list or len(items) > MAX_ITEMS - self.items:
            raise FormatError("malformed output: a container's items are not a list of allowed length")
        if kind == "dict":
            keys = node["keys"]
            if type(keys) is not list or len(keys) != len(items) \
                    or not all(isinstance(k, str) and len(k) <= MAX_KEY_LENGTH for k in keys) \
                    or len(set(keys)) != len(keys):
                raise FormatError("malformed output: a dict's keys are not distinct short strings, one per item")
            return dict(zip(keys, [self.node(s, depth + 1) for s in items]))
        return tuple(self.node(s, depth + 1) for s in items)


def decode(structure, arrays) -> object:
    """The value described by ``structure`` (from :func:`encode`), its arrays taken from ``arrays``.

    Parameters
    ----------
    structure : dict
        The description; validated (kinds, keys, nesting up to MAX_DEPTH, at most MAX_ITEMS entries).
    arrays : mapping str -> ndarray
        Must hold every array the description refers to, each numeric; each may be referred to once.

    Returns
    -------
    The value: None, Python or NumPy scalars, arrays (the objects of ``arrays``), tuples and dicts.

    Raises
    ------
    FormatError
        When ``structure`` is malformed or does not match ``arrays``.
    """
    return _Decoder(arrays).node(structure, 0)


# ============================================================================================ one file
def dumps(value) -> bytes:
    """``value`` as the bytes of one ``.npz``: its arrays plus the member ``__structure__`` (UTF-8 JSON).

    Raises FormatError (one line for the student) when ``value`` cannot cross the boundary.
    """
    structure, arrays = encode(value)
    doc = json.dumps({"version": _VERSION, "value": structure}, allow_nan=False, separators=(",", ":"))
    arrays[_STRUCTURE] = np.frombuffer(doc.encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def loads(raw: bytes, *, max_bytes: int = MAX_BYTES, max_elements: int = MAX_ELEMENTS):
    """Inverse of :func:`dumps`, safe on hostile bytes.

    Parameters
    ----------
    raw : bytes
        The file's content (read it with :func:`read_untrusted`).
    max_bytes : int
        Cap on ``len(raw)`` and on the arrays' total size once inflated.
    max_elements : int
        Cap on the arrays' total number of elements.

    Returns
    -------
    The value (see :func:`decode`); its arrays are writable and own their memory.

    Raises
    ------
    FormatError
        For anything but a well-formed file within the caps; nothing larger than declared is inflated.
    """
    if len(raw) > max_bytes:
        raise FormatError(f"the output file is larger than {max_bytes} bytes")
    arrays = read_npz(raw, max_bytes=max_bytes, max_elements=max_elements, max_members=MAX_ITEMS + 1)
    head = arrays.pop(_STRUCTURE, None)
    if head is None or head.dtype != np.uint8 or head.ndim != 1:
        raise FormatError("malformed output: the file has no description")
    doc = load_json(head.tobytes(), max_bytes=_MAX_STRUCTURE_BYTES, max_depth=_STRUCTURE_DEPTH)
    if set(doc) != {"version", "value"} or doc["version"] != _VERSION:
        raise FormatError("malformed output: unknown description version")
    dec = _Decoder(arrays)
    value = dec.node(doc["value"], 0)
    if len(dec.used) != len(arrays):
        raise FormatError("malformed output: the file holds arrays its description does not mention")
    return value


# ============================================================================================ npz
def _count_entries(raw: bytes) -> int:
    """An upper bound on the entries of a zip's central directory, found without parsing it.

    The end record says where the directory is; every entry there starts with the entry signature, so
    counting signatures (at C speed) bounds what ``zipfile`` would parse, whatever the record's count says.
    """
    n = len(raw)
    if n >= 22 and raw[n - 22:n - 18] == b"PK\x05\x06" and raw[n - 2:] == b"\0\0":
        pos = n - 22
    else:                                   # the end record may be followed by a comment (zipfile's rule)
        pos = raw.rfind(b"PK\x05\x06", max(0, n - 22 - 0xFFFF))
    if pos < 0 or pos + 22 > n:
        raise FormatError("the output file is not an npz (no zip directory)")
    if pos >= 20 and raw[pos - 20:pos - 16] == b"PK\x06\x07":
        # zip64 end records: needed only past 65,535 members or 4 GiB, which outputs never reach
        raise FormatError("the output file is a zip64 archive; npz files of outputs never need one")
    _, _, _, count, size, _, _ = struct.unpack("<4HLLH", raw[pos + 4:pos + 22])
    if size > pos:
        raise FormatError("the output file is not an npz (its zip directory does not fit)")
    return max(count, raw.count(b"PK\x01\x02", pos - size, pos))


def _read_exact(fh, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise FormatError(f"the output file is truncated ({what})")
    return data


def _npy_header(fh, name: str):
    """(shape, fortran_order, dtype, header bytes) of the .npy member open in ``fh``; reads only the header."""
    magic = _read_exact(fh, 8, "array header")
    version = np.lib.format.read_magic(io.BytesIO(magic))
    if version not in ((1, 0), (2, 0)):
        raise FormatError(f"array {name} has .npy version {version}; only 1.0 and 2.0 are read")
    size_format = "<H" if version == (1, 0) else "<I"
    size_bytes = _read_exact(fh, struct.calcsize(size_format), "array header")
    (length,) = struct.unpack(size_format, size_bytes)
    if length > _MAX_NPY_HEADER:
        raise FormatError(f"array {name} has a header of {length} bytes")
    header = _read_exact(fh, length, "array header")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # an old-style header that needs rewriting is refused, not warned
        shape, fortran, dtype = read(io.BytesIO(size_bytes + header))
    return shape, fortran, dtype, 8 + len(size_bytes) + length


def read_npz(raw: bytes, *, max_bytes: int, max_elements: int, max_members: int = MAX_ITEMS + 1) -> dict:
    """The arrays of an ``.npz`` given as bytes, checking every size before inflating anything.

    For each member, before its data is read: the zip entry (stored or deflated, not encrypted, a plain
    name ending in ``.npy``, not repeated, at most ``max_members`` members), its declared uncompressed
    size (the running total at most ``max_bytes``), then only its ``.npy`` header: a numeric dtype (kinds
    ``b i u f c``; no objects, fields or sub-arrays), a shape whose elements keep the running total at most
    ``max_elements``, and header + shape × itemsize equal to the declared size. Only then is the data read,
    never more than declared (the zip's CRC is checked at its end). Nothing is unpickled.

    Parameters
    ----------
    raw : bytes
        The whole file.
    max_bytes, max_elements : int
        Caps on the total declared (inflated) size and on the total number of elements.
    max_members : int
        Cap on the number of members.

    Returns
    -------
    dict name -> ndarray
        Names without ``.npy``, in the file's order; arrays are writable, Fortran order kept.

    Raises
    ------
    FormatError
        For anything else.
    """
    if _count_entries(raw) > max_members:
        raise FormatError(f"the output file has more than {max_members} arrays")
    arrays: dict = {}
    total_bytes = total_elements = 0
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise FormatError(f"the output file has more than {max_members} arrays")
            for info in infos:
                name = info.filename
                if len(name) > _MAX_NAME_LENGTH or not _MEMBER_NAME.fullmatch(name):
                    raise FormatError(f"the output file has a member named {_one_line(repr(name), 60)}")
                key = name[:-4]
                if key in arrays:
                    raise FormatError(f"the output file has two arrays named {key!r}")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                    raise FormatError(f"array {key} is compressed with method {info.compress_type} "
                                      f"or encrypted; only stored and deflated are read")
                total_bytes += info.file_size
                if total_bytes > max_bytes:
                    raise FormatError(f"the output's arrays hold more than {max_bytes} bytes")
                if info.compress_size > len(raw):
                    raise FormatError(f"array {key} is larger than the file that holds it")
                with zf.open(info) as fh:
                    shape, fortran, dtype, header = _npy_header(fh, key)
                    if dtype.kind not in _KINDS or dtype.hasobject or dtype.fields is not None \
                            or dtype.subdtype is not None or dtype.itemsize == 0:
                        raise FormatError(f"array {key} has dtype {_one_line(dtype, 40)}; only numeric arrays "
                                          f"are accepted")
                    if len(shape) > _MAX_NDIM or any(type(d) is not int or d < 0 for d in shape):
                        raise FormatError(f"array {key} has an invalid shape")
                    elements = math.prod(shape)
                    total_elements += elements
                    if total_elements > max_elements:
                        raise FormatError(f"the output has more than {max_elements} numbers")
                    nbytes = elements * dtype.itemsize
                    if header + nbytes != info.file_size:
                        raise FormatError(f"array {key}'s header does not match its size "
                                          f"(shape {_one_line(shape, 40)} of {dtype})")
                    flat = np.empty(elements, dtype=dtype)
                    view = memoryview(flat.view(np.uint8))
                    pos = 0
                    while pos < nbytes:
                        got = fh.readinto(view[pos:pos + _CHUNK])
                        if not got:
                            raise FormatError(f"array {key} is truncated")
                        pos += got
                    if fh.read(1):             # cannot happen with an honest size; also triggers the CRC check
                        raise FormatError(f"array {key} holds more data than declared")
                arrays[key] = flat.reshape(shape, order="F" if fortran else "C")
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and numpy raise many types on garbage
        raise FormatError(f"the output file is not a valid npz ({type(exc).__name__})") from None
    return arrays


# ============================================================================================ JSON
_JSON_SPECIAL = re.compile(rb'[\[\]{}"\\]')


def _json_too_deep(raw: bytes, max_depth: int) -> bool:
    """Whether brackets outside strings nest deeper than ``max_depth`` (linear; stops at the first excess)."""
    depth, in_string, escaped = 0, False, -1
    for m in _JSON_SPECIAL.finditer(raw):
        i = m.start()
        c = raw[i]
        if in_string:
            if i == escaped:
                continue
            if c == 0x5C:              # backslash: the next byte is escaped
                escaped = i + 1
            elif c == 0x22:            # closing quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > max_depth:
                return True
        elif c in (0x5D, 0x7D):
            depth -= 1
    return False


def _reject_constant(name: str):
    raise FormatError(f"the JSON holds {name}; only finite numbers are accepted")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise FormatError("the JSON holds a number too large for a float")
    return x


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 18:     # beyond int64: no count, index, exit code or time the grader reads
        raise FormatError("the JSON holds an integer too large (more than 18 digits)")
    return int(text)


def load_json(raw: bytes, *, max_bytes: int, max_depth: int) -> dict:
    """A JSON object from untrusted bytes: size and nesting checked before parsing.

    Parameters
    ----------
    raw : bytes
        UTF-8 JSON.
    max_bytes : int
        Cap on ``len(raw)``.
    max_depth : int
        Cap on the nesting of arrays and objects (the top-level object counts 1); checked by a scan of the
        brackets outside strings before ``json.loads``, so deep input cannot exhaust the recursion limit.

    Returns
    -------
    dict

    Raises
    ------
    FormatError
        For bytes over the caps, invalid UTF-8 or JSON, NaN, Infinity, overflowing floats, integers of more
        than 18 digits (``float()`` of a larger one can raise OverflowError in the reader), or a top level
        that is not an object.
    """
    if len(raw) > max_bytes:
        raise FormatError(f"the JSON is larger than {max_bytes} bytes")
    raw = bytes(raw)
    if _json_too_deep(raw, max_depth):
        raise FormatError(f"the JSON is nested more than {max_depth} levels deep")
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float,
                         parse_int=_bounded_int)
    except FormatError:
        raise
    except (ValueError, RecursionError) as exc:   # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FormatError(f"the JSON is not valid ({type(exc).__name__})") from None
    if type(obj) is not dict:
        raise FormatError("the JSON is not an object")
    return obj


# ============================================================================================ files
def write_atomic(path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one, never a part.

    A temporary file in the same folder is written, flushed to disk (fsync), given ``mode`` and renamed over
    ``path`` (``os.replace``); the folder is then synced so the rename survives a crash.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    folder = folder or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{name[:100]}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return                      # a folder that cannot be opened cannot be synced either
    try:
        os.fsync(dfd)
    except OSError:
        pass                        # some file systems do not sync folders; the rename itself is atomic
    finally:
        os.close(dfd)


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_untrusted(path: str, within) -> int:
    if within is None:
        return os.open(path, _READ_FLAGS)
    rel = os.path.relpath(path, os.fspath(within))
    parts = rel.split(os.sep)
    if rel.startswith(os.pardir) or os.path.isabs(rel) or "" in parts or os.curdir in parts:
        raise ValueError(f"{path} is not inside {within}")
    dfd = os.open(os.fspath(within), _DIR_FLAGS & ~os.O_NOFOLLOW)      # the trusted root itself
    try:
        for part in parts[:-1]:
            nfd = os.open(part, _DIR_FLAGS, dir_fd=dfd)
            os.close(dfd)
            dfd = nfd
        return os.open(parts[-1], _READ_FLAGS, dir_fd=dfd)
    finally:
        os.close(dfd)


def read_untrusted(path, max_bytes: int, *, within=None) -> bytes | None:
    """The bytes of a regular file another (untrusted) party wrote; None when it does not exist.

    Opened without following a link (``O_NOFOLLOW``) and without blocking (``O_NONBLOCK``: a FIFO cannot
    stall the reader); ``fstat`` must show a regular file of at most ``max_bytes``, and no more than
    ``max_bytes`` are read even if it grows meanwhile.

    Parameters
    ----------
    path : path
    max_bytes : int
    within : path, optional
        A trusted folder holding ``path``: then no component below it may be a link either (without it,
        only the last component is protected).

    Raises
    ------
    FormatError
        For a link, anything that is not a regular file, or more than ``max_bytes``.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        fd = _open_untrusted(path, within)
    except FileNotFoundError:
        return None
    except OSError as exc:   # ELOOP (a link), ENOTDIR (a link or file where a folder should be), ENXIO, ...
        raise FormatError(f"{name} is a link or not a regular file ({type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError(f"{name} is not a regular file")
        if st.st_size > max_bytes:
            raise FormatError(f"{name} is larger than {max_bytes} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise FormatError(f"{name} is larger than {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
