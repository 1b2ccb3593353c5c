"""Reference side of featdb's interop tests: does with Debian's python3-lmdb,
-msgpack, -msgpack-numpy, -lz4 and -numpy exactly what UNITER's TxtLmdb,
TxtTokLmdb, DetectFeatLmdb (data/data.py) and scripts/convert_imgdir.py do.

Values are compared through a canonical JSON form in which bytes and floats
are spelled out exactly ({"bin": hex}, {"f64": hex of the IEEE bits}).

Usage: uniter_ref.py <command> args...  (see main()).
"""
import glob
import io
import json
import os
import struct
import sys
from os.path import basename, exists

import lmdb
import msgpack
import msgpack_numpy
import numpy as np
from lz4.frame import compress, decompress

msgpack_numpy.patch()


# ---------------------------------------------------------------- canonical form
def canon(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"f64": struct.pack("<d", v).hex()}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"bin": bytes(v).hex()}
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {"map": [[k if isinstance(k, str) else bytes(k).hex(), canon(x)] for k, x in v.items()]}
    raise TypeError(type(v))


def sample_examples():
    """Examples with every msgpack type UNITER's txt_dbs hold."""
    out = {}
    out["nlvr2-dev-1-0"] = {"input_ids": [101, 1103, 3290, 1110, 170, 102], "img_fname": ["nlvr2_dev-1-0-img0.npz", "nlvr2_dev-1-0-img1.npz"],
                            "target": 1, "sentence": "The dog is a dog. ünïcødé 中文 🙂", "identifier": "dev-1-0-0"}
    out["262148000"] = {"input_ids": list(range(1000, 1040)), "img_fname": "coco_val2014_000000262148.npz",
                        "target": {"labels": [5, 17, 3000], "scores": [1.0, 0.3, 0.6000000000000001]},
                        "question_id": 262148000, "answers": None, "neg": -5, "big": 2**40, "negbig": -2**40,
                        "u64": 2**64 - 1, "blob": b"\x00\x01\xffraw", "empty": [], "emap": {}, "f": -1.5e-300, "t": True,
                        "nested": [[1, 2], {"a": [None, False, 0.1]}], "long_text": "x" * 70000}
    for i in range(50):
        out[f"id{i:03d}"] = {"input_ids": list(range(i)), "img_fname": f"img{i % 7}.npz", "score": i / 7.0}
    return out


def cmd_txt_write(db_dir):
    """TxtLmdb(db_dir, readonly=False) + the sidecars prepro.py writes."""
    env = lmdb.open(db_dir, readonly=False, create=True, map_size=4 * 1024**4)
    txn = env.begin(write=True)
    cnt = 0
    exs = sample_examples()
    for k, v in exs.items():
        txn.put(k.encode("utf-8"), compress(msgpack.dumps(v, use_bin_type=True)))
        cnt += 1
        if cnt % 1000 == 0:
            txn.commit()
            txn = env.begin(write=True)
    txn.commit()
    env.close()
    meta = {"UNK": 100, "CLS": 101, "SEP": 102, "MASK": 103, "v_range": [106, 28996], "tokenizer": "bert-base-cased"}
    json.dump(meta, open(f"{db_dir}/meta.json", "w"))
    json.dump({k: len(v["input_ids"]) for k, v in exs.items()}, open(f"{db_dir}/id2len.json", "w"))
    print(json.dumps({k: canon(v) for k, v in exs.items()}, sort_keys=True))


def cmd_txt_read(db_dir):
    """TxtTokLmdb(db_dir, -1): every id of id2len.json, read as UNITER reads it."""
    id2len = json.load(open(f"{db_dir}/id2len.json"))
    meta = json.load(open(f"{db_dir}/meta.json", "r"))
    env = lmdb.open(db_dir, readonly=True, create=False, readahead=True)
    txn = env.begin(buffers=True)
    out = {}
    for id_ in id2len:
        out[id_] = canon(msgpack.loads(decompress(txn.get(id_.encode("utf-8"))), raw=False))
    n = txn.stat()["entries"]
    env.close()
    print(json.dumps({"examples": out, "entries": n, "CLS": meta["CLS"], "SEP": meta["SEP"], "MASK": meta["MASK"],
                      "v_range": meta["v_range"], "id2len": id2len}, sort_keys=True))


# ---------------------------------------------------------------- img side
def make_butd_npz(out_dir, n_files, seed, dims=(2048, 1601)):
    """Synthetic BUTD feature files shaped like generate_npz.py output (fp32)."""
    rng = np.random.RandomState(seed)
    os.makedirs(out_dir, exist_ok=True)
    for i in range(n_files):
        n = int(rng.choice([3, 10, 12, 36, 50, 100]))
        feat = np.maximum(rng.randn(n, dims[0]).astype(np.float32), 0) * 3
        conf = np.sort(rng.rand(n).astype(np.float32))[::-1].copy()
        conf[0] = np.float32(0.2)  # exactly at the threshold: float32 comparison matters
        x1 = rng.rand(n).astype(np.float32) * 0.5
        y1 = rng.rand(n).astype(np.float32) * 0.5
        w = rng.rand(n).astype(np.float32) * 0.5
        h = rng.rand(n).astype(np.float32) * 0.5
        norm_bb = np.stack([x1, y1, x1 + w, y1 + h, w, h], axis=1)
        logits = rng.randn(n, dims[1]).astype(np.float32)
        soft = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        np.savez_compressed(f"{out_dir}/coco_val2014_{i:012d}.npz", features=feat, norm_bb=norm_bb, conf=conf,
                            soft_labels=soft.astype(np.float32))


def _compute_nbb(img_dump, conf_th, max_bb, min_bb, num_bb):
    num_bb = max(min_bb, (img_dump['conf'] > conf_th).sum())
    num_bb = min(max_bb, num_bb)
    return int(num_bb)


def load_npz(conf_th, max_bb, min_bb, num_bb, fname, keep_all=False):
    try:
        img_dump = np.load(fname, allow_pickle=True)
        if keep_all:
            nbb = None
        else:
            nbb = _compute_nbb(img_dump, conf_th, max_bb, min_bb, num_bb)
        dump = {}
        for key, arr in img_dump.items():
            if arr.dtype == np.float32:
                arr = arr.astype(np.float16)
            if arr.ndim == 2:
                dump[key] = arr[:nbb, :]
            elif arr.ndim == 1:
                dump[key] = arr[:nbb]
            else:
                raise ValueError('wrong ndim')
    except Exception as e:
        print(f'corrupted file {fname}', e, file=sys.stderr)
        dump = {}
        nbb = 0
    return basename(fname), dump, nbb


def dumps_npz(dump, compress=False):
    with io.BytesIO() as writer:
        if compress:
            np.savez_compressed(writer, **dump, allow_pickle=True)
        else:
            np.savez(writer, **dump, allow_pickle=True)
        return writer.getvalue()


def cmd_convert_imgdir(img_dir, output, compress_flag, conf_th, max_bb, min_bb, num_bb, keep_all):
    """convert_imgdir.py main(), single process, files in sorted order."""
    compress_flag = compress_flag == "1"
    keep_all = keep_all == "1"
    conf_th, max_bb, min_bb, num_bb = float(conf_th), int(max_bb), int(min_bb), int(num_bb)
    if conf_th == int(conf_th) and conf_th == -1:
        conf_th = -1
    split = basename(img_dir.rstrip('/'))
    if keep_all:
        db_name = 'all'
    elif conf_th == -1:
        db_name = f'feat_numbb{num_bb}'
    else:
        db_name = f'feat_th{conf_th}_max{max_bb}_min{min_bb}'
    if compress_flag:
        db_name += '_compressed'
    os.makedirs(f'{output}/{split}', exist_ok=True)
    env = lmdb.open(f'{output}/{split}/{db_name}', map_size=1024**4)
    txn = env.begin(write=True)
    name2nbb = {}
    for i, f in enumerate(sorted(glob.glob(f'{img_dir}/*.npz'))):
        fname, features, nbb = load_npz(conf_th, max_bb, min_bb, num_bb, f, keep_all=keep_all)
        if not features:
            continue
        dump = dumps_npz(features, compress=True) if compress_flag else msgpack.dumps(features, use_bin_type=True)
        txn.put(key=fname.encode('utf-8'), value=dump)
        if i % 1000 == 0:
            txn.commit()
            txn = env.begin(write=True)
        name2nbb[fname] = nbb
    txn.put(key=b'__keys__', value=json.dumps(list(name2nbb.keys())).encode('utf-8'))
    txn.commit()
    env.close()
    if conf_th != -1 and not keep_all:
        with open(f'{output}/{split}/nbb_th{conf_th}_max{max_bb}_min{min_bb}.json', 'w') as f:
            json.dump(name2nbb, f)
    print(db_name)


def open_detect_feat(img_dir, conf_th, max_bb, min_bb, num_bb, compress_flag):
    """DetectFeatLmdb.__init__: returns (txn, name2nbb, compress)."""
    if conf_th == -1:
        db_name = f'feat_numbb{num_bb}'
        name2nbb = None
    else:
        db_name = f'feat_th{conf_th}_max{max_bb}_min{min_bb}'
        nbb = f'nbb_th{conf_th}_max{max_bb}_min{min_bb}.json'
        name2nbb = json.load(open(f'{img_dir}/{nbb}')) if exists(f'{img_dir}/{nbb}') else None
    if compress_flag:
        db_name += '_compressed'
    env = lmdb.open(f'{img_dir}/{db_name}', readonly=True, create=False, readahead=True)
    txn = env.begin(buffers=True)
    return env, txn, name2nbb


def get_dump(txn, name2nbb, num_bb, file_name, compress_flag):
    """DetectFeatLmdb.get_dump without the fp32 cast, plus the fp32 cast result."""
    dump = txn.get(file_name.encode('utf-8'))
    nbb = name2nbb[file_name] if name2nbb is not None else num_bb
    if compress_flag:
        with io.BytesIO(bytes(dump)) as reader:
            img_dump = dict(np.load(reader, allow_pickle=True))
    else:
        img_dump = msgpack.loads(dump, raw=False)
    img_dump.pop('allow_pickle', None)  # the stray 0-d array np.savez(..., allow_pickle=True) stores
    return {k: arr[:nbb, ...] for k, arr in img_dump.items()}, nbb


def cmd_img_read(img_dir, conf_th, max_bb, min_bb, num_bb, compress_flag, out_npz):
    """Reads every image of an img_db as DetectFeatLmdb does; writes all arrays
    (name/array) into one npz for the C++ side to compare, and prints the keys/nbb."""
    conf_th = float(conf_th)
    if conf_th == -1:
        conf_th = -1
    compress_flag = compress_flag == "1"
    env, txn, name2nbb = open_detect_feat(img_dir, conf_th, int(max_bb), int(min_bb), int(num_bb), compress_flag)
    keys = json.loads(bytes(txn.get(b'__keys__')).decode('utf-8'))
    out = {}
    for k in keys:
        d, _ = get_dump(txn, name2nbb, int(num_bb), k, compress_flag)
        for name, arr in d.items():
            out[f"{k}/{name}"] = arr
            # __getitem__'s fp32 tensors must equal the fp16 values widened
            assert np.array_equal(np.asarray(arr, dtype=np.float32), arr.astype(np.float32))
    np.savez(out_npz, **out)
    env.close()
    print(json.dumps({"keys": keys, "name2nbb": name2nbb}, sort_keys=True))


def cmd_img_write(out_dir, codec, n_files, seed):
    """Writes an img_db straight from arrays (msgpack or npz-compressed values,
    __keys__, nbb json) with fp16 arrays, and dumps the arrays for comparison."""
    rng = np.random.RandomState(int(seed))
    os.makedirs(out_dir, exist_ok=True)
    compress_flag = codec == "npz"
    db_name = 'feat_th0.2_max100_min10' + ('_compressed' if compress_flag else '')
    env = lmdb.open(f'{out_dir}/{db_name}', map_size=1024**4)
    txn = env.begin(write=True)
    name2nbb = {}
    expect = {}
    for i in range(int(n_files)):
        n = int(rng.randint(1, 40))
        dump = {"features": rng.randn(n, 64).astype(np.float16), "norm_bb": rng.rand(n, 6).astype(np.float16),
                "conf": rng.rand(n).astype(np.float16), "soft_labels": rng.rand(n, 9).astype(np.float16),
                "extra_int": np.arange(n, dtype=np.int64), "extra_u8": rng.randint(0, 255, (n, 3)).astype(np.uint8)}
        key = f"img_{i:04d}.npz"
        val = dumps_npz(dump, compress=True) if compress_flag else msgpack.dumps(dump, use_bin_type=True)
        txn.put(key.encode(), val)
        name2nbb[key] = n
        for name, arr in dump.items():
            expect[f"{key}/{name}"] = arr
    txn.put(b'__keys__', json.dumps(list(name2nbb)).encode())
    txn.commit()
    env.close()
    json.dump(name2nbb, open(f'{out_dir}/nbb_th0.2_max100_min10.json', 'w'))
    np.savez(f'{out_dir}/expect.npz', **expect)


def cmd_msgpack_bytes(npz_path):
    """msgpack.dumps of an npz's arrays (file order), hex: the exact bytes UNITER stores."""
    d = np.load(npz_path)
    print(msgpack.dumps({k: d[k] for k in d.files}, use_bin_type=True).hex())


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "txt_write":
        cmd_txt_write(*args)
    elif cmd == "txt_read":
        cmd_txt_read(*args)
    elif cmd == "make_butd":
        make_butd_npz(args[0], int(args[1]), int(args[2]))
    elif cmd == "convert_imgdir":
        cmd_convert_imgdir(*args)
    elif cmd == "img_read":
        cmd_img_read(*args)
    elif cmd == "img_write":
        cmd_img_write(*args)
    elif cmd == "msgpack_bytes":
        cmd_msgpack_bytes(*args)
    elif cmd == "float16":
        # numpy's float32 -> float16 of every given float32 bit pattern (hex in, hex out)
        bits = np.array([int(x, 16) for x in args], dtype=np.uint32)
        print(" ".join("%04x" % h for h in bits.view(np.float32).astype(np.float16).view(np.uint16)))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
