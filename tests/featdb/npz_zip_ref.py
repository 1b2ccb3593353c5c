"""Reference npz/zip files for tests/featdb/npz_test.cc, written by numpy and
Python's zipfile, with what zipfile/numpy read back from them.

  npz_zip_ref.py <dir>

For every archive <name>.npz it writes <name>.npz.ref/: one file per member
(zipfile.ZipFile.read, the member's bytes) and, for npz archives, <array>.arr
(np.load's tobytes()) plus index.txt lines "<member> <descr> <shape,...>".
It asserts the property each archive is there to test (data descriptors,
zip64 records), so a Python that wrote something else fails loudly.
"""
import io
import os
import struct
import sys
import zipfile
import zlib

import numpy as np


def arrays():
    r = np.random.RandomState(7)
    # Like BUTD features stored by convert_imgdir.py: ReLU'd, ~60% zeros, fp16.
    feat = (np.maximum(0, r.randn(36, 2048) - 0.3) * 1.8).astype(np.float16)
    return dict(features=feat, norm_bb=r.rand(36, 6).astype(np.float16), conf=r.rand(36).astype(np.float32),
                ids=np.arange(-3, 9, dtype=np.int64).reshape(3, 4), empty=np.zeros((0, 5), np.float16),
                scalar=np.array(2.5))


class Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors (flag bit 3)."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def zip64_everywhere(members):
    """A deflated zip whose central directory saturates every size and offset
    field and keeps the values in zip64 extra fields, with zip64 end records
    (what a >4 GiB archive has), built by hand."""
    out, central = bytearray(), bytearray()
    for name, data in members:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        comp = c.compress(data) + c.flush()
        crc = zlib.crc32(data)
        off = len(out)
        local_extra = struct.pack('<HHQQ', 1, 16, len(data), len(comp))
        out += struct.pack('<IHHHHHIIIHH', 0x04034b50, 45, 0, 8, 0, 0x21, crc, 0xffffffff, 0xffffffff, len(name),
                           len(local_extra)) + name + local_extra + comp
        extra = struct.pack('<HHQQQ', 1, 24, len(data), len(comp), off)
        central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 45, 45, 0, 8, 0, 0x21, crc, 0xffffffff, 0xffffffff,
                               len(name), len(extra), 0, 0, 0, 0, 0xffffffff) + name + extra
    cd_off = len(out)
    out += central
    eocd64_off = len(out)
    n = len(members)
    out += struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    out += struct.pack('<IIQI', 0x07064b50, 0, eocd64_off, 1)
    out += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
    return bytes(out)


def dump(d, name, data, is_npz=True):
    path = os.path.join(d, name)
    with open(path, 'wb') as f:
        f.write(data)
    ref = path + '.ref'
    os.makedirs(ref, exist_ok=True)
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None, name
    for info in z.infolist():
        with open(os.path.join(ref, info.filename), 'wb') as f:
            f.write(z.read(info))
    if is_npz:
        lines = []
        with np.load(io.BytesIO(data)) as npz:
            for k in npz.files:
                a = npz[k]
                with open(os.path.join(ref, k + '.arr'), 'wb') as f:
                    f.write(a.tobytes())
                lines.append(f"{k} {a.dtype.str} {','.join(map(str, a.shape))}")
        with open(os.path.join(ref, 'index.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return z


def main():
    d = sys.argv[1]
    a = arrays()
    b = io.BytesIO()
    np.savez(b, **a)
    z = dump(d, 'savez.npz', b.getvalue())
    # numpy asks zipfile for zip64 members: the local headers carry a zip64
    # extra field (20 bytes) that the central directory lacks.
    for raw in (b.getvalue(),):
        assert struct.unpack('<H', raw[28:30])[0] == 20, 'numpy wrote no zip64 local extra field'
    assert all(len(i.extra) == 0 for i in z.infolist())
    b = io.BytesIO()
    np.savez_compressed(b, **a)
    dump(d, 'savez_compressed.npz', b.getvalue())
    assert struct.unpack('<H', b.getvalue()[28:30])[0] == 20, 'numpy wrote no zip64 local extra field'

    s = Unseekable()
    np.savez_compressed(s, **a)
    z = dump(d, 'streamed.npz', bytes(s.buf))
    assert all(i.flag_bits & 8 for i in z.infolist()), 'no data descriptors'

    # > 65535 members: zipfile writes zip64 end records.
    one = io.BytesIO()
    np.save(one, np.arange(3, dtype=np.int16))
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_STORED) as zf:
        for i in range(65540):
            zf.writestr(f'a{i}.npy', one.getvalue())
    data = b.getvalue()
    assert b'PK\x06\x06' in data[-200:], 'no zip64 end record'
    with open(os.path.join(d, 'many.npz'), 'wb') as f:
        f.write(data)

    members = []
    for k in ('features', 'norm_bb', 'ids'):
        m = io.BytesIO()
        np.save(m, a[k])
        members.append((k.encode() + b'.npy', m.getvalue()))
    dump(d, 'zip64.npz', zip64_everywhere(members))

    # Methods we do not read: bzip2 (12). And a comment after the end record.
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_BZIP2) as zf:
        zf.writestr('x.npy', members[2][1])
    with open(os.path.join(d, 'bzip2.npz'), 'wb') as f:
        f.write(b.getvalue())
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr('ids.npy', members[2][1])
        zf.comment = b'an archive comment' * 5
    dump(d, 'comment.npz', b.getvalue())


if __name__ == '__main__':
    main()
