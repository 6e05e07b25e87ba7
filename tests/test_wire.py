"""The wire format: values round-trip exactly, and hostile bytes are refused before they cost memory or time.

The round trip is a property test over random nested values from a seeded generator (every numeric dtype,
0-d, empty, Fortran-ordered and non-contiguous arrays, Python and NumPy scalars, containers up to
MAX_DEPTH). The hostile inputs are real: a deflate bomb whose member inflates to 1 GiB (built from one
repeated compressed block, so the test stays small), headers that lie, pickles, 100,000 members, a
200,000-deep JSON, links and FIFOs.
"""
import ast
import io
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import wire
from autograder.wire import FormatError

WIRE_SOURCE = Path(wire.__file__)
MiB = 1 << 20

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
          np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.clongdouble,
          ">f8", ">i4", ">c16", "<u2"]
KEY_CHARACTERS = list('abcxyz_019 "\\[]{}:,é\n\t✓') + ["\ud800", "𝔼"]


# ============================================================================================ helpers
def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and values bit for bit (NaN payloads, -0.0); long doubles, whose storage has
    padding bytes of no meaning, compare by value, NaN equal to NaN, and sign."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.type in (np.longdouble, np.clongdouble):
        parts = (lambda x: (x.real, x.imag)) if a.dtype.kind == "c" else (lambda x: (x,))
        return all(np.array_equal(p, q, equal_nan=True) and np.array_equal(np.signbit(p), np.signbit(q))
                   for p, q in zip(parts(a), parts(b)))
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def same(a, b) -> bool:
    """Equal with types: same classes, dtypes, shapes and bits (NaN payloads and -0.0 included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        if a.flags.f_contiguous and not a.flags.c_contiguous and not b.flags.f_contiguous:
            return False
        return b.flags.writeable and same_bits(a, b)
    if isinstance(a, np.generic):
        return same_bits(np.asarray(a), np.asarray(b))
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def expected(value):
    """What the round trip must give: tensors as arrays, lists as one array when NumPy makes a numeric one
    of them, else as tuples."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t.resolve_conj()).numpy()
    if isinstance(value, list):
        try:
            a = np.asarray([expected(v) for v in value])
        except ValueError:
            a = None
        if a is not None and a.dtype.kind in "biufc":
            return a
        return tuple(expected(v) for v in value)
    if isinstance(value, tuple):
        return tuple(expected(v) for v in value)
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    return value


def random_array(rng, shape=None) -> np.ndarray:
    dtype = np.dtype(DTYPES[rng.integers(len(DTYPES))])
    shapes = [(), (0,), (3, 0), (0, 2, 1)]
    if shape is not None:
        pass
    elif rng.random() < 0.3:
        shape = shapes[rng.integers(len(shapes))]
    else:
        shape = tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(1, 4)))
    native = dtype.newbyteorder("=")
    if dtype.kind == "b":
        a = rng.random(shape) < 0.5
    elif dtype.kind in "iu":
        info = np.iinfo(native)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=native)
    else:
        def real():
            x = rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 6)
            flat = x.reshape(-1)
            if flat.size:
                flat[rng.integers(flat.size)] = [np.nan, np.inf, -np.inf, -0.0, 0.0][rng.integers(5)]
            return x
        with np.errstate(over="ignore", invalid="ignore"):
            a = real() + 1j * real() if dtype.kind == "c" else real()
    with np.errstate(over="ignore"):
        a = np.asarray(a).astype(dtype)
    layout = rng.integers(3)
    if layout == 1:
        a = np.asfortranarray(a)
    elif layout == 2 and a.ndim:
        a = np.stack([a, a], axis=-1)[..., 0]          # a non-contiguous view
        assert not a.flags.c_contiguous or a.size <= 1
    return a


def random_python_scalar(rng):
    kind = rng.integers(4)
    if kind == 0:
        return bool(rng.integers(2))
    if kind == 1:
        return int(rng.integers(-2**63, 2**63 - 1, endpoint=True))
    x = [float(rng.standard_normal()), math.nan, math.inf, -0.0, 1e308][rng.integers(5)]
    return x if kind == 2 else complex(x, float(rng.standard_normal()))


def random_key(rng) -> str:
    return "".join(KEY_CHARACTERS[i] for i in rng.integers(len(KEY_CHARACTERS), size=rng.integers(0, 8)))


def random_value(rng, depth: int = 0):
    r = rng.random()
    if depth < wire.MAX_DEPTH and r < 0.45:
        n = int(rng.integers(0, 4))
        kind = rng.integers(4)
        if kind == 0:
            return tuple(random_value(rng, depth + 1) for _ in range(n))
        if kind == 1:
            keys = dict.fromkeys(random_key(rng) for _ in range(n))      # ordered: the test is reproducible
            return {k: random_value(rng, depth + 1) for k in keys}
        if kind == 2:   # a list that stays a container: it holds None
            return [None] + [random_value(rng, depth + 1) for _ in range(n)]
        if rng.random() < 0.5:  # a list of numbers, or of arrays of one shape and dtype: one array
            return [random_python_scalar(rng) for _ in range(n)]
        a = random_array(rng)
        return [a.copy() for _ in range(n + 1)]
    if r < 0.6:
        return random_python_scalar(rng)
    if r < 0.7:
        return random_array(rng, shape=())[()]                             # a NumPy scalar
    if r < 0.75:
        return None
    return random_array(rng)


def nested(depth: int, leaf, kinds="tdl"):
    """``leaf`` inside ``depth`` containers, cycling through tuple, dict and list."""
    value = leaf
    for i in range(depth):
        k = kinds[i % len(kinds)]
        value = (value, 1.0) if k == "t" else {"k": value} if k == "d" else [value, None]
    return value


def npy_header(descr, shape, fortran=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return buf.getvalue()


def make_zip(members, *, count=None, zip64=False) -> bytes:
    """A zip written by hand: ``members`` are (name, method, crc, payload, declared uncompressed size)."""
    out, central = bytearray(), bytearray()
    for name, method, crc, payload, size in members:
        name = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), size,
                           len(name), 0) + name
        out += payload
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(payload),
                               size, len(name), 0, 0, 0, 0, 0, offset) + name
    cd_offset = len(out)
    out += central
    n = len(members) if count is None else count
    if zip64:
        eocd64 = len(out)
        out += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(central), cd_offset)
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64, 1)
        out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(central), cd_offset, 0)
    else:
        out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_offset, 0)
    return bytes(out)


def stored(name: str, data: bytes, size=None):
    return (name, zipfile.ZIP_STORED, zlib.crc32(data), data, len(data) if size is None else size)


def deflated_zeros(prefix: bytes, n_mib: int) -> bytes:
    """A raw deflate stream of ``prefix`` then ``n_mib`` MiB of zeros, built from one compressed block.

    After a full flush the compressor starts afresh, so every MiB of zeros compresses to the same bytes:
    the stream is computed once per block, never inflated or deflated in full.
    """
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(bytes(MiB)) + co.flush(zlib.Z_FULL_FLUSH)
    return head + block * n_mib + co.flush()


def crc_of_zeros(prefix: bytes, n_bytes: int) -> int:
    crc, zeros = zlib.crc32(prefix), bytes(MiB)
    for start in range(0, n_bytes, MiB):
        crc = zlib.crc32(zeros[:min(MiB, n_bytes - start)], crc)
    return crc


def measured(fn):
    """(result or exception, seconds, peak bytes traced) of ``fn()``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - returned for the test to inspect
        out = exc
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak


# ============================================================================================ round trip
def test_random_values_round_trip_with_their_types():
    rng = np.random.default_rng(20240517)
    kinds, depths = set(), set()
    for i in range(400):
        value = random_value(rng)
        want = expected(value)
        back = wire.loads(wire.dumps(value))
        assert same(want, back), f"value {i}: {value!r} came back as {back!r}"
        structure, arrays = wire.encode(value)          # the in-memory pair, through JSON text
        assert same(want, wire.decode(json.loads(json.dumps(structure)), arrays)), f"value {i}"

        def walk(x, d=0):
            depths.add(d)
            if isinstance(x, (tuple, dict)):
                for v in (x.values() if isinstance(x, dict) else x):
                    walk(v, d + 1)
            else:
                kinds.add(x.dtype.str if isinstance(x, (np.ndarray, np.generic)) else type(x).__name__)
        walk(want)
    # the generator covered what it claims to cover
    assert {np.dtype(d).str for d in DTYPES} <= kinds
    assert {"bool", "int", "float", "complex", "NoneType"} <= kinds
    assert max(depths) >= 4


def test_special_arrays_round_trip():
    base = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    values = [np.asfortranarray(base), base[:, ::2, 1:], base.T, np.empty((0, 3)), np.array(5.0),
              np.array(3, dtype=">i2"), np.zeros((2, 0), order="F"), np.broadcast_to(np.arange(3), (4, 3)),
              np.array([np.nan, -0.0, np.inf], dtype=np.float16), np.ones((1,) * 20, dtype=np.uint8)]
    for value in values:
        back = wire.loads(wire.dumps(value))
        assert same(np.asarray(value), back)
        if back.size:
            back[...] = 0                                    # writable: the judge may work in place
            assert not back.any()
    assert wire.loads(wire.dumps(np.asfortranarray(base))).flags.f_contiguous


def test_containers_exactly_max_depth_deep_round_trip_and_one_more_is_refused():
    for kinds in ("t", "d", "l", "tdl", "dl"):
        value = nested(wire.MAX_DEPTH, np.arange(3.0), kinds)
        assert same(expected(value), wire.loads(wire.dumps(value)))
        with pytest.raises(FormatError, match=f"nested more than {wire.MAX_DEPTH} deep"):
            wire.dumps(nested(wire.MAX_DEPTH + 1, np.arange(3.0), kinds))


def test_python_and_numpy_scalars_keep_their_types():
    values = (True, 7, -2**63, 2.5, -0.0, math.nan, 1 + 2j, np.float32(1.5), np.int8(-3), np.bool_(True),
              np.uint64(2**64 - 1), np.complex64(1j), np.longdouble("1.1"), np.float16(0.1))
    back = wire.loads(wire.dumps(values))
    assert [type(v) for v in back] == [type(v) for v in values] and same(values, back)


def test_lists_become_arrays_when_numeric_and_tuples_otherwise():
    back = wire.loads(wire.dumps({"a": [1, 2.5], "b": [[1, 2], [3, 4]], "c": [], "d": [np.zeros(2), np.ones(3)],
                                  "e": [1, None], "f": [True, False]}))
    assert same(back["a"], np.array([1.0, 2.5])) and same(back["b"], np.array([[1, 2], [3, 4]]))
    assert same(back["c"], np.array([])) and same(back["f"], np.array([True, False]))
    assert same(back["d"], (np.zeros(2), np.ones(3))) and same(back["e"], (1, None))


def test_torch_tensors_become_arrays():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3).requires_grad_()
    z = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64)
    value = {"grad": t * 2, "bf16": torch.tensor([1.5, -2.25], dtype=torch.bfloat16), "scalar": torch.tensor(3),
             "mask": torch.tensor([True, False]), "conj": z.conj(), "transposed": t.detach().T,
             "list": [torch.zeros(2), torch.ones(2)], "param": torch.nn.Parameter(torch.ones(1))}
    back = wire.loads(wire.dumps(value))
    assert same(back["grad"], (t * 2).detach().numpy())
    assert same(back["bf16"], np.array([1.5, -2.25], dtype=np.float32))
    assert same(back["scalar"], np.array(3)) and same(back["mask"], np.array([True, False]))
    assert same(back["conj"], np.array([1 - 2j, 3 + 1j], dtype=np.complex64))
    assert same(back["transposed"], t.detach().numpy().T)
    assert same(back["list"], np.array([[0, 0], [1, 1]], dtype=np.float32))
    assert same(back["param"], np.ones(1, dtype=np.float32))
    assert all(type(v) is np.ndarray for v in back.values())


def test_savez_compressed_files_are_read_too():
    value = {"x": np.linspace(0, 1, 1000), "n": 3}
    structure, arrays = wire.encode(value)
    doc = json.dumps({"version": 1, "value": structure}).encode()
    buf = io.BytesIO()
    np.savez_compressed(buf, __structure__=np.frombuffer(doc, np.uint8), **arrays)
    assert same(value, wire.loads(buf.getvalue()))


def test_several_values_share_one_npz_with_prefixes():
    s1, a1 = wire.encode((1.0, np.ones(2)), prefix="f/visible/0/")
    s2, a2 = wire.encode(np.zeros(3), prefix="f/visible/1/")
    buf = io.BytesIO()
    np.savez(buf, **a1, **a2)
    arrays = wire.read_npz(buf.getvalue(), max_bytes=MiB, max_elements=100)
    assert list(arrays) == ["f/visible/0/0", "f/visible/0/1", "f/visible/1/0"]
    assert same(wire.decode(s1, arrays), (1.0, np.ones(2))) and same(wire.decode(s2, arrays), np.zeros(3))


# ============================================================================================ what encode refuses
class Point:
    pass


class Strange:
    pass


Strange.__qualname__ = "Strange\nname " + "x" * 300


@pytest.mark.parametrize("value, message", [
    ("text", "returned a str; return numbers"),
    ((1.0, b"raw"), r"returned a bytes at \[1\]; return numbers"),
    ({"mu": {"sigma": "x"}}, r"returned a str at \['mu'\]\['sigma'\]"),
    ({1, 2}, "returned a set; return a NumPy array, a tensor, a number"),
    (Point(), r"returned a (tests\.)?test_wire\.Point; return a NumPy array"),
    (np.array(["a"]), "returned an array of dtype <U1; return a numeric array"),
    (np.array([None, 1.0], dtype=object), "returned an array of dtype object"),
    (np.zeros(2, dtype=[("a", "f8")]), r"returned an array of dtype \[\('a', '<f8'\)\]"),
    (np.datetime64("2024-01-01"), "returned a NumPy datetime64"),
    (np.str_("x"), "returned a NumPy <U1 scalar"),
    ({1: 2.0}, "returned a dict with a key of type int; use str keys"),
    ({"k" * (wire.MAX_KEY_LENGTH + 1): 1.0}, f"key longer than {wire.MAX_KEY_LENGTH} characters"),
    (2**64, "integer that does not fit in 64 bits"),
    (tuple([None] * (wire.MAX_ITEMS + 1)), f"more than {wire.MAX_ITEMS} values"),
    (np.broadcast_to(np.zeros(1, bool), (wire.MAX_ELEMENTS + 1,)), "numbers or .* MiB of data; return less"),
    (torch.empty(2, device="meta"), "returned a tensor that cannot be turned into a NumPy array"),
    (Strange(), r"returned a (tests\.)?test_wire\.Strange name x+\.\.\.; return"),
])
def test_encode_refuses_what_is_not_numeric_data_in_one_line(value, message):
    with pytest.raises(FormatError, match=message) as info:
        wire.dumps(value)
    text = str(info.value)
    assert "\n" not in text and len(text) < 300 and text.startswith("returned ")


def test_recursive_containers_are_refused_not_a_recursion_error():
    loop = []
    loop.append(loop)
    mapping = {}
    mapping["self"] = mapping
    for value in (loop, mapping):
        with pytest.raises(FormatError, match="nested more than"):
            wire.dumps(value)


# ============================================================================================ hostile npz
@pytest.fixture(scope="module")
def bomb():
    """An honest deflate bomb: one member of 1 GiB of float64 zeros, about 1 MB compressed."""
    header = npy_header("<f8", (1 << 27,))
    size = len(header) + (1 << 30)
    data = deflated_zeros(header, 1024)
    raw = make_zip([("x.npy", zipfile.ZIP_DEFLATED, crc_of_zeros(header, 1 << 30), data, size)])
    assert len(raw) < 2 * MiB and size > 500 * len(raw)
    return raw


def test_the_bomb_construction_is_a_real_deflate_stream():
    header = npy_header("<f8", (4 * MiB // 8,))
    data = deflated_zeros(header, 4)
    assert zlib.decompress(data, -15) == header + bytes(4 * MiB)
    raw = make_zip([("x.npy", zipfile.ZIP_DEFLATED, crc_of_zeros(header, 4 * MiB), data, len(header) + 4 * MiB)])
    assert same(wire.read_npz(raw, max_bytes=8 * MiB, max_elements=MiB)["x"], np.zeros(4 * MiB // 8))
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:       # the standard library agrees it is a valid zip
        assert zf.testzip() is None


def test_a_deflate_bomb_is_refused_before_inflating(bomb):
    out, seconds, peak = measured(lambda: wire.read_npz(bomb, max_bytes=MiB, max_elements=10**12))
    assert isinstance(out, FormatError) and f"more than {MiB} bytes" in str(out)
    assert seconds < 1.0 and peak < 2 * MiB
    out, seconds, peak = measured(lambda: wire.loads(bomb, max_bytes=4 * MiB, max_elements=10**9))
    assert isinstance(out, FormatError) and seconds < 1.0 and peak < 2 * MiB


def test_a_bomb_that_declares_a_small_size_is_never_inflated_past_it():
    header = npy_header("<f8", (1000,))
    data = deflated_zeros(header, 1024)                   # the stream goes on for 1 GiB past the array
    honest_crc = crc_of_zeros(header, 8000)
    raw = make_zip([("x.npy", zipfile.ZIP_DEFLATED, honest_crc, data, len(header) + 8000)])
    out, seconds, peak = measured(lambda: wire.read_npz(raw, max_bytes=MiB, max_elements=10**6))
    assert same(out["x"], np.zeros(1000)) and seconds < 1.0 and peak < 2 * MiB
    raw = make_zip([("x.npy", zipfile.ZIP_DEFLATED, honest_crc ^ 1, data, len(header) + 8000)])
    out, seconds, peak = measured(lambda: wire.read_npz(raw, max_bytes=MiB, max_elements=10**6))
    assert isinstance(out, FormatError) and seconds < 1.0 and peak < 2 * MiB


@pytest.mark.parametrize("descr, shape, data_bytes, message", [
    ("<f8", (10**6,), 80, "does not match its size"),              # claims 8 MB, holds 80 bytes
    ("<f8", (10,), 8000, "does not match its size"),               # claims 80 bytes, holds 8000
    ("<f8", (10**15,), 80, "more than"),                            # more elements than allowed
    ("<f8", (-10,), 80, "invalid shape"),
    ("<f8", (2,) * 40, 80, "invalid shape"),
])
def test_headers_that_lie_about_the_shape_are_refused(descr, shape, data_bytes, message):
    raw = make_zip([stored("x.npy", npy_header(descr, shape) + bytes(data_bytes))])
    with pytest.raises(FormatError, match=message):
        wire.read_npz(raw, max_bytes=MiB, max_elements=10**6)


def test_a_member_declaring_more_than_its_header_promises_is_refused_before_reading():
    header = npy_header("<f8", (10,))
    raw = make_zip([stored("x.npy", header + bytes(80), size=len(header) + 10**9)])
    with pytest.raises(FormatError, match=f"more than {MiB} bytes"):
        wire.read_npz(raw, max_bytes=MiB, max_elements=10**6)
    raw = make_zip([stored("x.npy", header + bytes(80), size=len(header) + 800)])
    with pytest.raises(FormatError, match="does not match its size"):
        wire.read_npz(raw, max_bytes=MiB, max_elements=10**6)


PICKLED: list = []


def _record(tag):
    PICKLED.append(tag)
    return tag


class Evil:
    def __reduce__(self):
        return _record, ("unpickled",)


@pytest.mark.parametrize("array, what", [
    (np.array([Evil(), 1], dtype=object), "object"),
    (np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]), "fields"),
    (np.array(["abc"]), "text"),
    (np.array([1], dtype="M8[s]"), "datetime"),
    (np.zeros(2, dtype="V8"), "void"),
])
def test_non_numeric_dtypes_are_refused_without_unpickling(array, what):
    buf = io.BytesIO()
    np.savez(buf, x=array)
    with pytest.raises(FormatError, match="only numeric arrays"):
        wire.read_npz(buf.getvalue(), max_bytes=MiB, max_elements=1000)
    assert PICKLED == []


@pytest.mark.parametrize("descr", ["(2,)<f8", "|O", "<U3", [("a", "<f8")], "<m8[s]"])
def test_hand_written_headers_with_non_numeric_dtypes_are_refused(descr):
    raw = make_zip([stored("x.npy", npy_header(descr, (1,)) + bytes(16))])
    with pytest.raises(FormatError, match="only numeric arrays|header does not match|not a valid npz"):
        wire.read_npz(raw, max_bytes=MiB, max_elements=1000)


def test_a_pickle_is_refused_whole_and_as_a_member():
    raw = pickle.dumps({"x": Evil()})
    for blob in (raw, make_zip([stored("x.npy", raw)]), make_zip([stored("__structure__.npy", raw)])):
        with pytest.raises(FormatError):
            wire.loads(blob)
    buf = io.BytesIO()
    np.save(buf, np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="only numeric arrays"):
        wire.loads(make_zip([stored("x.npy", buf.getvalue())]))
    assert PICKLED == []


@pytest.mark.parametrize("layout", ["zip64", "count modulo 65536", "count says one"])
def test_a_zip_with_100000_members_is_refused_before_its_directory_is_parsed(layout):
    member = npy_header("<f8", (0,))
    members = [stored(f"m{i}.npy", member) for i in range(100_000)]
    count = {"zip64": None, "count modulo 65536": 100_000 & 0xFFFF, "count says one": 1}[layout]
    raw = make_zip(members, count=count, zip64=layout == "zip64")
    out, seconds, peak = measured(lambda: wire.read_npz(raw, max_bytes=len(raw), max_elements=10**6))
    assert isinstance(out, FormatError) and ("arrays" in str(out) or "zip64" in str(out))
    assert seconds < 0.5 and peak < MiB


def test_the_hand_made_zips_are_valid_zips():
    members = [stored(f"m{i}.npy", npy_header("<f8", (1,)) + bytes(8)) for i in range(3)]
    for zip64 in (False, True):
        with zipfile.ZipFile(io.BytesIO(make_zip(members, zip64=zip64))) as zf:
            assert zf.namelist() == ["m0.npy", "m1.npy", "m2.npy"] and zf.testzip() is None
    assert list(wire.read_npz(make_zip(members), max_bytes=MiB, max_elements=10)) == ["m0", "m1", "m2"]
    with pytest.raises(FormatError, match="more than 2 arrays"):
        wire.read_npz(make_zip(members), max_bytes=MiB, max_elements=10, max_members=2)


@pytest.mark.parametrize("name", ["../x.npy", "/abs.npy", "x.npz", "a//b.npy", "x.npy/", "sp ace.npy", "é.npy"])
def test_member_names_outside_the_plain_pattern_are_refused(name):
    raw = make_zip([stored(name, npy_header("<f8", (1,)) + bytes(8))])
    with pytest.raises(FormatError, match="member named"):
        wire.read_npz(raw, max_bytes=MiB, max_elements=10)


def test_repeated_members_and_other_compression_methods_are_refused():
    data = npy_header("<f8", (1,)) + bytes(8)
    with pytest.raises(FormatError, match="two arrays named"):
        wire.read_npz(make_zip([stored("x.npy", data), stored("x.npy", data)]), max_bytes=MiB, max_elements=10)
    bz = ("x.npy", zipfile.ZIP_BZIP2, zlib.crc32(data), data, len(data))
    with pytest.raises(FormatError, match="only stored and deflated"):
        wire.read_npz(make_zip([bz]), max_bytes=MiB, max_elements=10)


def test_truncated_random_and_flipped_bytes_raise_format_error_only():
    rng = np.random.default_rng(7)
    value = {"means": np.arange(12.0).reshape(3, 4), "weights": (0.5, np.float32(0.5)), "n": 3}
    good = wire.dumps(value)
    for cut in range(0, len(good), 7):
        with pytest.raises(FormatError):
            wire.loads(good[:cut])
    for _ in range(200):
        noise = rng.bytes(int(rng.integers(0, 3000)))
        for blob in (noise, b"PK\x03\x04" + noise, noise + good[-22:], good[:100] + noise + good[-200:]):
            with pytest.raises(FormatError):
                wire.loads(blob)
    unchanged = 0
    for _ in range(600):
        flipped = bytearray(good)
        flipped[rng.integers(len(good))] ^= 1 << int(rng.integers(8))
        try:
            back = wire.loads(bytes(flipped))
        except FormatError:
            continue
        assert same(value, back)          # CRCs and cross-checks: a flip never yields a different value
        unchanged += 1
    assert unchanged < 600


def test_malformed_descriptions_are_refused():
    arrays = {"a0": np.zeros(2), "a1": np.array(1.5), "a2": np.array(True)}
    bad = [
        ({"kind": "array", "key": "nope"}, "missing array"),
        ({"kind": "tuple", "items": [{"kind": "array", "key": "a0"}, {"kind": "array", "key": "a0"}]}, "twice"),
        ({"kind": "scalar", "key": "a0", "type": "float"}, "stored as an array"),
        ({"kind": "scalar", "key": "a1", "type": "bool"}, "dtype float64"),
        ({"kind": "scalar", "key": "a1", "type": "str"}, "unknown scalar type"),
        ({"kind": "pickle", "key": "a0"}, "unknown or incomplete"),
        ({"kind": "array", "key": "a0", "extra": 1}, "unknown or incomplete"),
        ({"kind": "dict", "keys": ["a", "a"], "items": [{"kind": "none"}, {"kind": "none"}]}, "distinct"),
        ({"kind": "dict", "keys": ["a"], "items": []}, "one per item"),
        ({"kind": "tuple", "items": {"0": {"kind": "none"}}}, "not a list"),
        ({"kind": "tuple", "items": [["none"]]}, "not an object"),
        ({"kind": "tuple", "items": [{"kind": "none"}] * (wire.MAX_ITEMS + 1)}, "allowed length"),
        ("none", "not an object"),
    ]
    deep = {"kind": "none"}
    for _ in range(wire.MAX_DEPTH + 1):
        deep = {"kind": "tuple", "items": [deep]}
    bad.append((deep, f"nested more than {wire.MAX_DEPTH} deep"))
    for structure, message in bad:
        with pytest.raises(FormatError, match=message):
            wire.decode(structure, arrays)
    want = None
    for _ in range(wire.MAX_DEPTH):
        want = (want,)
    assert same(wire.decode(deep["items"][0], arrays), want)            # one level less is accepted


def _npz(structure_doc: bytes, **arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, __structure__=np.frombuffer(structure_doc, np.uint8), **arrays)
    return buf.getvalue()


def test_loads_checks_the_description_against_the_members():
    ok = b'{"version":1,"value":{"kind":"array","key":"a0"}}'
    assert same(wire.loads(_npz(ok, a0=np.ones(2))), np.ones(2))
    with pytest.raises(FormatError, match="does not mention"):
        wire.loads(_npz(ok, a0=np.ones(2), a1=np.ones(1)))
    with pytest.raises(FormatError, match="version"):
        wire.loads(_npz(ok.replace(b'"version":1', b'"version":2'), a0=np.ones(2)))
    with pytest.raises(FormatError, match="no description"):
        wire.loads(make_zip([stored("a0.npy", npy_header("<f8", (1,)) + bytes(8))]))
    deep = b'{"version":1,"value":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(FormatError, match="nested more than"):
        wire.loads(_npz(deep))


# ============================================================================================ JSON
@pytest.mark.parametrize("raw", [b"[" * 200_000 + b"]" * 200_000,
                                 b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
                                 b'{"a": [' + b"{" * 200_000])
def test_200000_deep_json_is_a_format_error_not_a_recursion_error(raw):
    with pytest.raises(FormatError, match="nested more than 64 levels deep"):
        wire.load_json(raw, max_bytes=len(raw), max_depth=64)


def test_json_depth_scan_ignores_brackets_inside_strings():
    text = json.dumps({"k": "[" * 200_000, "q": '\\"[{', "d": [[1]]}).encode()
    assert wire.load_json(text, max_bytes=len(text), max_depth=3)["k"] == "[" * 200_000
    assert wire.load_json(b'{"k": "\\\\", "d": [[1]]}', max_bytes=100, max_depth=3)["k"] == "\\"
    with pytest.raises(FormatError, match="nested more than 3"):
        wire.load_json(b'{"k": "\\\\", "d": [[[1]]]}', max_bytes=100, max_depth=3)
    hostile = b'{"k": "' + b'\\"' * 200_000 + b'"}'        # escaped quotes: a naive regex is quadratic
    t0 = time.perf_counter()
    assert len(wire.load_json(hostile, max_bytes=len(hostile), max_depth=2)["k"]) == 200_000
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("raw, message", [
    (b'{"x": NaN}', "NaN"), (b'{"x": -Infinity}', "Infinity"), (b'{"x": 1e999}', "too large"),
    (b'{"seconds": 1' + b"0" * 400 + b"}", "integer too large"), (b'{"x": [-1' + b"0" * 18 + b"]}", "integer"),
    (b"[1, 2]", "not an object"), (b'"text"', "not an object"), (b'{"x": 1', "not valid"),
    (b'{"x": "\xff"}', "not valid"), (b'{"x": ' + b"9" * 5000 + b"}", "integer too large"),
    (b'{"x": "' + b"a" * 20_000 + b'"}', "larger than 10000 bytes"),
])
def test_load_json_refuses_what_is_not_a_finite_json_object(raw, message):
    with pytest.raises(FormatError, match=message):
        wire.load_json(raw, max_bytes=10_000, max_depth=8)


# ============================================================================================ files
def test_read_untrusted_reads_regular_files_within_the_cap(tmp_path):
    f = tmp_path / "out.npz"
    f.write_bytes(b"x" * 100)
    assert wire.read_untrusted(f, 100) == b"x" * 100
    with pytest.raises(FormatError, match="larger than 99 bytes"):
        wire.read_untrusted(f, 99)
    assert wire.read_untrusted(tmp_path / "absent", 100) is None
    with pytest.raises(FormatError, match="not a regular file"):
        wire.read_untrusted(tmp_path, 100)


def test_read_untrusted_refuses_a_symlink(tmp_path):
    target = tmp_path / "secret"
    target.write_text("the salt")
    link = tmp_path / "out.npz"
    link.symlink_to(target)
    with pytest.raises(FormatError, match="link"):
        wire.read_untrusted(link, 100)
    (tmp_path / "dirlink").symlink_to(tmp_path)
    assert wire.read_untrusted(tmp_path / "dirlink" / "secret", 100) == b"the salt"   # without `within` ...
    with pytest.raises(FormatError, match="link"):                                   # ... and with it
        wire.read_untrusted(tmp_path / "dirlink" / "secret", 100, within=tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(b"ok")
    assert wire.read_untrusted(tmp_path / "sub" / "f", 10, within=tmp_path) == b"ok"
    with pytest.raises(ValueError, match="is not inside"):
        wire.read_untrusted(target, 10, within=tmp_path / "sub")


def test_read_untrusted_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "out.npz"
    os.mkfifo(fifo)
    result = {}

    def read():
        try:
            result["value"] = wire.read_untrusted(fifo, 100)
        except Exception as exc:  # noqa: BLE001 - inspected below
            result["error"] = exc
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5.0)
    if thread.is_alive():                           # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5.0)
        pytest.fail("read_untrusted blocked on a FIFO")
    assert isinstance(result.get("error"), FormatError) and "regular file" in str(result["error"])


def test_write_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    wire.write_atomic(path, b"first")
    wire.write_atomic(path, b"second", mode=0o600)
    assert path.read_bytes() == b"second" and (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(TypeError):
        wire.write_atomic(path, "not bytes")
    assert path.read_bytes() == b"second" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    raw = wire.dumps((np.arange(3), 2.0))
    wire.write_atomic(tmp_path / "case.npz", raw)
    assert same(wire.loads(wire.read_untrusted(tmp_path / "case.npz", len(raw))), (np.arange(3), 2.0))


# ============================================================================================ standalone module
STDLIB = set(sys.stdlib_module_names)


def test_wire_imports_only_the_standard_library_and_numpy():
    tree = ast.parse(WIRE_SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the module is copied alone into the sandbox"
            imported.add(node.module.split(".")[0])
    assert imported - STDLIB - {"__future__"} == {"numpy"}


def test_wire_works_as_a_lone_copy_without_autograder_or_torch(tmp_path):
    (tmp_path / "wire.py").write_bytes(WIRE_SOURCE.read_bytes())
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
            "import numpy as np, wire\n"
            "v = {'x': np.eye(2), 'n': (1, 2.5, None)}\n"
            "back = wire.loads(wire.dumps(v))\n"
            "assert np.array_equal(back['x'], v['x']) and back['n'] == (1, 2.5, None)\n"
            "assert not any(m.split('.')[0] in ('autograder', 'torch') for m in sys.modules), sys.modules\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
