"""Reads the outputs of `uniter extract --format img_db|npz|tsv` the way their
consumers do and compares them. Independent of uniter-cpp: numpy, lmdb,
msgpack-numpy, and the readers of UNITER (scripts/convert_imgdir.py, mirrored
in tests/featdb/uniter_ref.py) and LXMERT (src/utils.py load_obj_tsv).

Prints a JSON summary; exits non-zero when a problem was found.

usage:
  check_outputs.py npz SPLIT_DIR NPZ_DIR CONF_TH MAX_BB MIN_BB
      every <id>.npz read by convert_imgdir.py's load_npz equals the img_db record
  check_outputs.py tsv TSV SPLIT_DIR CONF_TH MAX_BB MIN_BB
      every row read by load_obj_tsv, cut to nbb and cast like convert_imgdir.py,
      equals the img_db record
  check_outputs.py same-npz DIR_A DIR_B RTOL
      the same files with the same arrays, floats within RTOL (relative)
  check_outputs.py same-db SPLIT_A SPLIT_B DB_NAME NBB_JSON
      the same keys, nbb json and identical arrays
"""
import base64
import csv
import glob
import json
import os
import sys

import lmdb
import msgpack
import msgpack_numpy
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "featdb"))
import uniter_ref  # noqa: E402

msgpack_numpy.patch()
csv.field_size_limit(sys.maxsize)

# LXMERT src/utils.py
FIELDNAMES = ["img_id", "img_h", "img_w", "objects_id", "objects_conf",
              "attrs_id", "attrs_conf", "num_boxes", "boxes", "features"]


def load_obj_tsv(fname):
    data = []
    with open(fname) as f:
        reader = csv.DictReader(f, FIELDNAMES, delimiter="\t")
        for item in reader:
            for key in ['img_h', 'img_w', 'num_boxes']:
                item[key] = int(item[key])
            boxes = item['num_boxes']
            decode_config = [
                ('objects_id', (boxes, ), np.int64),
                ('objects_conf', (boxes, ), np.float32),
                ('attrs_id', (boxes, ), np.int64),
                ('attrs_conf', (boxes, ), np.float32),
                ('boxes', (boxes, 4), np.float32),
                ('features', (boxes, -1), np.float32),
            ]
            for key, shape, dtype in decode_config:
                item[key] = np.frombuffer(base64.b64decode(item[key]), dtype=dtype)
                item[key] = item[key].reshape(shape)
            data.append(item)
    return data


def db_name(conf_th, max_bb, min_bb):
    return f'feat_th{conf_th}_max{max_bb}_min{min_bb}'


def read_db(split_dir, name):
    env = lmdb.open(f'{split_dir}/{name}', readonly=True, create=False, lock=False)
    out = {}
    with env.begin() as txn:
        for k, v in txn.cursor():
            k = k.decode('utf-8')
            if k == '__keys__':
                out[k] = json.loads(v.decode('utf-8'))
            else:
                out[k] = msgpack.loads(v, raw=False)
    env.close()
    return out


def same_array(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def cmd_npz(split_dir, npz_dir, conf_th, max_bb, min_bb):
    conf_th, max_bb, min_bb = float(conf_th), int(max_bb), int(min_bb)
    db = read_db(split_dir, db_name(conf_th, max_bb, min_bb))
    name2nbb = json.load(open(f'{split_dir}/nbb_th{conf_th}_max{max_bb}_min{min_bb}.json'))
    files = sorted(glob.glob(f'{npz_dir}/*.npz'))
    problems = []
    for f in files:
        raw = np.load(f, allow_pickle=True)
        for k in ('features', 'norm_bb', 'conf', 'soft_labels'):  # what UNITER's loader uses
            if k not in raw.files:
                problems.append(f'{f}: no {k}')
        name, dump, nbb = uniter_ref.load_npz(conf_th, max_bb, min_bb, 100, f)
        if not dump:
            problems.append(f'{name}: convert_imgdir.py calls it corrupt')
            continue
        if name not in db:
            problems.append(f'{name}: not in the img_db')
            continue
        if name2nbb.get(name) != nbb:
            problems.append(f'{name}: nbb {nbb} vs img_db json {name2nbb.get(name)}')
        rec = db[name]
        if sorted(rec) != sorted(dump):
            problems.append(f'{name}: arrays {sorted(dump)} vs {sorted(rec)}')
            continue
        for k in dump:
            if not same_array(dump[k], rec[k]):
                problems.append(f'{name}: {k} differs')
    missing = set(db) - {'__keys__'} - {os.path.basename(f) for f in files}
    problems += [f'{k}: in the img_db, no npz' for k in sorted(missing)]
    return {'files': len(files), 'problems': problems}


def cmd_tsv(tsv, split_dir, conf_th, max_bb, min_bb):
    conf_th, max_bb, min_bb = float(conf_th), int(max_bb), int(min_bb)
    db = read_db(split_dir, db_name(conf_th, max_bb, min_bb))
    name2nbb = json.load(open(f'{split_dir}/nbb_th{conf_th}_max{max_bb}_min{min_bb}.json'))
    rows = load_obj_tsv(tsv)
    problems = []
    ids = [r['img_id'] for r in rows]
    for item in rows:
        key = item['img_id'] + '.npz'
        if key not in db:
            problems.append(f'{key}: not in the img_db')
            continue
        rec, nbb = db[key], name2nbb[key]
        if item['num_boxes'] < nbb:
            problems.append(f'{key}: {item["num_boxes"]} rows, nbb {nbb}')
        if item['img_h'] != int(rec['image_h'][0]) or item['img_w'] != int(rec['image_w'][0]):
            problems.append(f'{key}: size {item["img_h"]}x{item["img_w"]}')
        # convert_imgdir.py's cut and cast applied to the TSV arrays.
        for tsv_key, db_key in (('features', 'features'), ('boxes', 'boxes'), ('objects_conf', 'objects_conf'),
                                ('attrs_conf', 'attrs_conf')):
            want = item[tsv_key][:nbb].astype(np.float16)
            if not same_array(want, rec[db_key]):
                problems.append(f'{key}: {tsv_key} differs')
        for tsv_key in ('objects_id', 'attrs_id'):
            if not np.array_equal(item[tsv_key][:nbb], rec[tsv_key].astype(np.int64)):
                problems.append(f'{key}: {tsv_key} differs')
    return {'rows': len(rows), 'ids': ids, 'problems': problems}


def cmd_same_npz(dir_a, dir_b, rtol):
    rtol = float(rtol)
    fa = sorted(os.path.basename(f) for f in glob.glob(f'{dir_a}/*.npz'))
    fb = sorted(os.path.basename(f) for f in glob.glob(f'{dir_b}/*.npz'))
    problems = [] if fa == fb else [f'files {fa} vs {fb}']
    worst = 0.0
    for name in sorted(set(fa) & set(fb)):
        a, b = np.load(f'{dir_a}/{name}'), np.load(f'{dir_b}/{name}')
        if sorted(a.files) != sorted(b.files):
            problems.append(f'{name}: arrays differ')
            continue
        for k in a.files:
            x, y = a[k], b[k]
            if x.shape != y.shape or x.dtype != y.dtype:
                problems.append(f'{name}: {k} {x.dtype}{x.shape} vs {y.dtype}{y.shape}')
            elif x.dtype.kind == 'f':
                x64, y64 = x.astype(np.float64), y.astype(np.float64)
                rel = np.abs(x64 - y64) / np.maximum(np.abs(y64), 1e-6)
                worst = max(worst, float(rel.max(initial=0)))
                if not np.allclose(x64, y64, rtol=rtol, atol=1e-6):
                    problems.append(f'{name}: {k} beyond rtol {rtol} (max rel {rel.max()})')
            elif not np.array_equal(x, y):
                problems.append(f'{name}: {k} differs')
    return {'files': len(fa), 'max_rel_diff': worst, 'problems': problems}


def cmd_same_db(split_a, split_b, name, nbb_json):
    a, b = read_db(split_a, name), read_db(split_b, name)
    problems = []
    ka, kb = set(a) - {'__keys__'}, set(b) - {'__keys__'}
    if ka != kb:
        problems.append(f'keys {sorted(ka)} vs {sorted(kb)}')
    for d, split in ((a, split_a), (b, split_b)):
        if sorted(d.get('__keys__', [])) != sorted(set(d) - {'__keys__'}):
            problems.append(f'{split}: __keys__ does not list the records')
    na, nb = json.load(open(f'{split_a}/{nbb_json}')), json.load(open(f'{split_b}/{nbb_json}'))
    if na != nb:
        problems.append(f'nbb json {na} vs {nb}')
    for k in sorted(ka & kb):
        if sorted(a[k]) != sorted(b[k]):
            problems.append(f'{k}: arrays differ')
            continue
        for n in a[k]:
            if not same_array(a[k][n], b[k][n]):
                problems.append(f'{k}: {n} differs')
    return {'records': len(ka), 'problems': problems}


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    out = {'npz': cmd_npz, 'tsv': cmd_tsv, 'same-npz': cmd_same_npz, 'same-db': cmd_same_db}[cmd](*args)
    print(json.dumps(out, sort_keys=True))
    sys.exit(1 if out['problems'] else 0)


if __name__ == '__main__':
    main()
