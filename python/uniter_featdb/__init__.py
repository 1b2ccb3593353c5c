"""Read uniter-cpp's native img_db records from Python.

A native img_db (``feat_th*_native``) is an LMDB like UNITER's: one value per
image, keyed by its file name, plus ``__keys__``. Each value is the protobuf
message ``NativeEnvelope`` of ``featdb/native_record.proto``; this module
decodes it by hand (no generated code), with numpy, ``lz4`` (block format) and
``zstandard``.

    from uniter_featdb import ImgDb, read_native
    db = ImgDb("img_db/coco_val2014/feat_th0.2_max100_min10_native")
    arrays = db["coco_val2014_000000000042.npz"]   # {"features": ndarray, ...}
"""
import json
import struct

import numpy as np

__all__ = ["ImgDb", "read_native", "is_native", "crc32c", "FormatError"]

MAGIC = b"\x1dUNR1"  # field 3 (fixed32) first: the tag byte 0x1d, then "UNR1"
FORMAT_VERSION = 1

# DType enum of native_record.proto -> numpy dtype (little-endian storage).
_DTYPES = [np.dtype(t) for t in ("<f2", "<f4", "<f8", "i1", "<i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8", "?")]
_NONE, _LZ4, _ZSTD = 0, 1, 2
_NO_FILTER, _BYTE_SHUFFLE, _ZERO_MASK_SHUFFLE = 0, 1, 2


class FormatError(ValueError):
    """A value that is not a well-formed native record."""


def is_native(value):
    """True when `value` (bytes) starts with the native codec's magic."""
    return bytes(value[:5]) == MAGIC


def _varint(b, pos):
    v = shift = 0
    while True:
        if pos >= len(b) or shift > 63:
            raise FormatError("truncated varint")
        c = b[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, pos
        shift += 7


def _fields(b):
    """Yields (field number, wire type, value) of one protobuf message; a
    length-delimited value is a memoryview into `b`."""
    pos = 0
    while pos < len(b):
        tag, pos = _varint(b, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            v, pos = _varint(b, pos)
        elif wire == 2:
            n, pos = _varint(b, pos)
            if n > len(b) - pos:
                raise FormatError("field %d runs past the record" % field)
            v, pos = b[pos:pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(b):
                raise FormatError("truncated fixed32")
            v, pos = struct.unpack_from("<I", b, pos)[0], pos + 4
        elif wire == 1:
            if pos + 8 > len(b):
                raise FormatError("truncated fixed64")
            v, pos = struct.unpack_from("<Q", b, pos)[0], pos + 8
        else:
            raise FormatError("bad wire type %d" % wire)
        yield field, wire, v


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = None


def crc32c(data):
    """CRC-32C (Castagnoli) of `data`, as the native codec stores it. Pure
    Python: slow (a few MB/s); used only when verify=True."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _crc32c_table()
    t, crc = _CRC_TABLE, 0xFFFFFFFF
    for byte in bytes(data):
        crc = t[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _parse_array(b):
    a = {"name": "", "dtype": 0, "shape": [], "compression": 0, "filter": 0, "raw_size": 0,
         "filtered_size": 0, "payload": b"", "crc": None}
    for field, wire, v in _fields(b):
        if field == 1:
            a["name"] = bytes(v).decode("utf-8")
        elif field == 2:
            a["dtype"] = v
        elif field == 3:
            if wire == 2:  # packed
                pos = 0
                while pos < len(v):
                    d, pos = _varint(v, pos)
                    a["shape"].append(d)
            else:
                a["shape"].append(v)
        elif field == 4:
            a["compression"] = v
        elif field == 5:
            a["filter"] = v
        elif field == 6:
            a["raw_size"] = v
        elif field == 7:
            a["payload"] = v
        elif field == 8:
            a["filtered_size"] = v
        elif field == 9:
            a["crc"] = v
    return a


def _decompress(a, size):
    p = a["payload"]
    if a["compression"] == _NONE:
        out = bytes(p)
    elif a["compression"] == _LZ4:
        import lz4.block
        out = lz4.block.decompress(bytes(p), uncompressed_size=size)
    elif a["compression"] == _ZSTD:
        import zstandard
        out = zstandard.ZstdDecompressor().decompress(bytes(p), max_output_size=size)
    else:
        raise FormatError("unknown compression %d" % a["compression"])
    if len(out) != size:
        raise FormatError("array %r decodes to %d bytes, not %d" % (a["name"], len(out), size))
    return out


def _unfilter(a, data, width):
    raw = a["raw_size"]
    n = raw // width
    if a["filter"] == _NO_FILTER:
        return data
    if a["filter"] == _BYTE_SHUFFLE:  # byte k of every element in plane k
        return np.frombuffer(data, np.uint8).reshape(width, n).T.tobytes()
    if a["filter"] == _ZERO_MASK_SHUFFLE:  # bitmap of non-zero elements (LSB first), then their planes
        mask_bytes = (n + 7) // 8
        mask = np.unpackbits(np.frombuffer(data, np.uint8, mask_bytes), bitorder="little")[:n].astype(bool)
        nnz = int(mask.sum())
        if len(data) != mask_bytes + nnz * width:
            raise FormatError("zero mask of %r does not match its payload" % a["name"])
        out = np.zeros((n, width), np.uint8)
        out[mask] = np.frombuffer(data, np.uint8, offset=mask_bytes).reshape(width, nnz).T
        return out.tobytes()
    raise FormatError("unknown filter %d" % a["filter"])


def read_native(value, only=None, verify=False):
    """Decodes one native img_db value into {name: np.ndarray}, in stored order.

    only: names of the arrays to decode (default: all). verify: check every
    payload's CRC-32C (pure Python, slow; the C++ reader always checks).
    """
    b = memoryview(value)
    if not is_native(b):
        raise FormatError("not a native record (bad magic)")
    record = None
    for field, wire, v in _fields(b):
        if field == 1 and wire == 2:
            record = v
    if record is None:
        raise FormatError("missing record field")
    version, arrays = 0, []
    for field, wire, v in _fields(record):
        if field == 1 and wire == 0:
            version = v
        elif field == 2 and wire == 2:
            arrays.append(_parse_array(v))
    if version != FORMAT_VERSION:
        raise FormatError("native record format version %d is not supported" % version)
    out = {}
    for a in arrays:
        if only is not None and a["name"] not in only:
            continue
        if a["dtype"] >= len(_DTYPES):
            raise FormatError("unknown dtype %d" % a["dtype"])
        if verify and (a["crc"] is None or crc32c(a["payload"]) != a["crc"]):
            raise FormatError("payload checksum mismatch in array %r" % a["name"])
        dtype = _DTYPES[a["dtype"]]
        size = a["filtered_size"] if a["filter"] == _ZERO_MASK_SHUFFLE else a["raw_size"]
        data = _unfilter(a, _decompress(a, size), dtype.itemsize)
        if len(data) != int(np.prod(a["shape"], dtype=np.int64)) * dtype.itemsize:
            raise FormatError("array %r: size does not match its shape" % a["name"])
        out[a["name"]] = np.frombuffer(data, dtype).reshape(a["shape"])
    return out


class ImgDb:
    """A native img_db, opened read-only like UNITER's DetectFeatLmdb opens its
    LMDB (no lock, no readahead). db[fname] -> {name: np.ndarray}."""

    def __init__(self, path, readahead=False):
        import lmdb
        self.env = lmdb.open(path, readonly=True, create=False, lock=False, readahead=readahead, max_readers=1024)
        self.txn = self.env.begin(buffers=True)
        keys = self.txn.get(b"__keys__")
        self.keys = json.loads(bytes(keys)) if keys is not None else None

    def get(self, fname, only=None, verify=False):
        value = self.txn.get(fname.encode("utf-8"))
        if value is None:
            raise KeyError(fname)
        return read_native(value, only=only, verify=verify)

    def __getitem__(self, fname):
        return self.get(fname)

    def close(self):
        self.txn.abort()
        self.env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
