#!/usr/bin/env python3
"""Writes pickle fixtures for the safe pickle reader test, and for each the
value Python's own pickle.loads gives, in a canonical JSON form:
  list -> [...], tuple -> {"t": [...]}, dict -> {"d": [[k, v], ...]} (order kept),
  float -> {"f": x}, bytes -> {"b": hex}, str/int/bool/None as themselves.

  make_pickles.py OUTDIR  ->  OUTDIR/<case>.pkl, OUTDIR/<case>.json
Cases: refs-like data at protocols 0-5 (Python 3 pickler), Python-2-style
pickles (str as STRING/SHORT_BINSTRING/BINSTRING, unicode as UNICODE/BINUNICODE),
and hostile ones (<case>.pkl only, name starts with "bad_").
"""
import json
import os
import pickle
import struct
import sys


def canon(v):
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return {'f': v}
    if isinstance(v, bytes):
        return {'b': v.hex()}
    if isinstance(v, list):
        return [canon(x) for x in v]
    if isinstance(v, tuple):
        return {'t': [canon(x) for x in v]}
    if isinstance(v, dict):
        return {'d': [[canon(k), canon(x)] for k, x in v.items()]}
    raise TypeError(type(v))


def refs_like():
    shared = [1, 2, 3]
    sents = [{'tokens': ['the', 'man', 'on', 'left'], 'raw': 'The man on LEFT!', 'sent_id': 0,
              'sent': 'the man on left'},
             {'tokens': ['caf\u00e9'], 'raw': 'caf\u00e9 \u2603 \U0001f600', 'sent_id': 1, 'sent': 'caf\u00e9'}]
    return [
        {'image_id': 581857, 'split': 'testB', 'sentences': sents, 'file_name': 'COCO_train2014_000000581857_16.jpg',
         'category_id': 1, 'ann_id': 1719310, 'sent_ids': [0, 1], 'ref_id': 0},
        {'neg': -5, 'big': 2 ** 40, 'neg_big': -(2 ** 62), 'i32': -2 ** 31, 'u16': 65535, 'flt': 3.25,
         'nflt': -1e-300, 'inf_free': 1.5e300, 't': True, 'f': False, 'none': None, 'tup': (1, 'a', (2.5,)),
         'tup0': (), 'tup2': (1, 2), 'tup3': (1, 2, 3), 'tup4': (1, 2, 3, 4), 'shared': shared,
         'again': shared, 5: 'int key', 'empty': {}, 'nested': [[[]]], 'long_str': 'x' * 300},
    ]


def py2_proto2():
    """A Python-2 pickle (protocol 2) of a refs-like list: keys are py2 str
    (SHORT_BINSTRING), values mix str and unicode (BINUNICODE)."""
    out = bytearray(b'\x80\x02]q\x00(}q\x01(')

    def short_str(b):
        return b'U' + bytes([len(b)]) + b

    def binstr(b):
        return b'T' + struct.pack('<i', len(b)) + b

    def uni(s):
        e = s.encode('utf-8')
        return b'X' + struct.pack('<I', len(e)) + e

    out += short_str(b'sent') + uni('caf\u00e9 on the left')
    out += short_str(b'raw') + short_str('na\u00efve'.encode('utf-8'))   # py2 str holding UTF-8
    out += short_str(b'long') + binstr(b'y' * 70000)
    out += short_str(b'sent_id') + b'J' + struct.pack('<i', 123456)
    out += short_str(b'ann_id') + b'\x8a\x05' + (2 ** 33).to_bytes(5, 'little', signed=True)
    out += short_str(b'bbox') + b']q\x02(' + b'G' + struct.pack('>d', 10.5) + b'G' + struct.pack('>d', -3.0) + b'e'
    out += short_str(b'same_bbox') + b'h\x02'
    out += b'u'                              # SETITEMS
    out += b'}q\x03' + short_str(b'k') + b'N' + b's'   # a second dict via SETITEM
    out += b'e.'                             # APPENDS, STOP
    return bytes(out)


def py2_proto0():
    """A Python-2 protocol-0 pickle: (dp0 / S'...' / V... / I / L / F / lp / tuple."""
    return (b"(lp0\n(dp1\nS'sent'\np2\nS'it\\'s a \"quoted\" \\\\ str\\n'\np3\nsS'uni'\np4\n"
            b"Vcaf\\u00e9 \\U0001f600 \xe9\np5\nsS'n'\nI42\nsS'neg'\nI-7\nsS'long'\nL12345678901234L\n"
            b"sS'flt'\nF0.125\nsS't'\nI01\nsS'f'\nI00\nsS'tup'\n(I1\nS'a'\ntp6\nsS'again'\ng3\nsa(lp7\na.")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    def write(name, data, encoding='utf-8', expect=True):
        with open(os.path.join(out, name + '.pkl'), 'wb') as f:
            f.write(data)
        if expect:
            with open(os.path.join(out, name + '.json'), 'w') as f:
                json.dump(canon(pickle.loads(data, encoding=encoding)), f)

    value = refs_like()
    for p in range(0, 6):
        write(f'refs_p{p}', pickle.dumps(value, protocol=p))
    write('bytes_p3', pickle.dumps([b'\x00\xffraw', b''], protocol=3))
    write('py2_proto2', py2_proto2())
    write('py2_proto0', py2_proto0())
    # A py2 str that is not UTF-8 reads as Latin-1.
    write('py2_latin1', b'\x80\x02U\x04caf\xe9q\x00.', encoding='latin1')

    # Hostile inputs: refused, never executed.
    write('bad_global_reduce', b"cos\nsystem\n(S'echo pwned'\ntR.", expect=False)
    write('bad_stack_global', pickle.dumps(__import__('collections').OrderedDict(a=1), protocol=4), expect=False)

    # What pickle.dumps(Obj(), 2) writes for a class Obj in __main__: GLOBAL, NEWOBJ, BUILD.
    write('bad_object', b'\x80\x02c__main__\nObj\nq\x00)\x81q\x01}q\x02b.', expect=False)
    write('bad_reduce_only', b'N)R.', expect=False)
    write('bad_deep_nesting', b'\x80\x02' + b']' * 100000 + b'a' * 99999 + b'.', expect=False)
    write('bad_deep_marks', b'(' * 300000 + b'N.', expect=False)
    cyc = []
    cyc.append(cyc)
    write('bad_cycle', pickle.dumps(cyc, protocol=2), expect=False)
    # "Billion laughs": each level holds the previous one 10 times by reference.
    x = ['lol']
    for _ in range(9):
        x = [x] * 10
    write('bad_laughs', pickle.dumps(x, protocol=2), expect=False)
    write('bad_truncated', pickle.dumps(value, protocol=2)[:-7], expect=False)
    write('bad_huge_length', b'\x80\x02X\xff\xff\xff\x7f', expect=False)
    write('bad_unknown_opcode', b'\x80\x02\xff.', expect=False)
    write('bad_empty', b'', expect=False)


if __name__ == '__main__':
    main()
