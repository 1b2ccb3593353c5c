"""Independent checks of `uniter pipeline run` outputs, with Python's own
lmdb, msgpack, lz4, json and html.parser (and PyPI tensorboard's event reader
through tests/trainer/read_events.py).

usage:
  check_pipeline.py same ROOT_A ROOT_B   the two runs' dbs hold the same records,
                                         their results/metrics files and final checkpoints are equal
  check_pipeline.py to-npz DB DIR        writes each record of an img_db as DIR/<key> (np.savez_compressed)
  check_pipeline.py same-img DB_A DB_B   the two img_dbs hold the same arrays per key
  check_pipeline.py report DOM ROOT      the numbers report.html shows (DOM: what
                                         chromium --dump-dom printed) equal ROOT's files
  check_pipeline.py metrics TASK ROOT ANN   ROOT/eval/metrics.json equals the dev accuracy
                                         recomputed from ROOT's results file and the dev
                                         annotations ANN (VQA: tests/trainer/vqa_eval_ref.py,
                                         vqaEval's algorithm; VE: label equality)
  check_pipeline.py keys ROOT            every image a txt_db record names (img_fname) is
                                         a key of its split's img_db, and nothing else is
Prints "ok" or the first difference, and exits non-zero on one.
"""
import glob
import html.parser
import json
import os
import sys

import lmdb
import lz4.frame
import msgpack


def db_records(path):
    env = lmdb.open(path, readonly=True, lock=False, subdir=True)
    with env.begin() as txn:
        out = {bytes(k): bytes(v) for k, v in txn.cursor()}
    env.close()
    return out


def txt_records(path):
    return {k: msgpack.unpackb(lz4.frame.decompress(v), raw=False) for k, v in db_records(path).items()}


def fail(msg):
    print(msg)
    sys.exit(1)


def same(a, b):
    for db in sorted(glob.glob(os.path.join(a, "txt_db", "*.db"))):
        other = os.path.join(b, "txt_db", os.path.basename(db))
        ra, rb = txt_records(db), txt_records(other)
        if ra != rb:
            fail(f"txt_db {os.path.basename(db)} differs: {len(ra)} vs {len(rb)} records")
        for side in ("id2len.json", "txt2img.json", "img2txts.json"):
            if open(os.path.join(db, side), "rb").read() != open(os.path.join(other, side), "rb").read():
                fail(f"{db}/{side} differs")
        # meta.json records the db's own path ("output"): the rest must agree
        ma, mb = (json.load(open(os.path.join(d, "meta.json"))) for d in (db, other))
        ma.pop("output"), mb.pop("output")
        if ma != mb:
            fail(f"{db}/meta.json differs beyond its output path")
    for db in sorted(glob.glob(os.path.join(a, "img_db", "*", "feat_*"))):
        rel = os.path.relpath(db, a)
        if db_records(db) != db_records(os.path.join(b, rel)):
            fail(f"img_db {rel} differs")
    for rel in ("infer/results.csv", "eval/metrics.json"):
        if open(os.path.join(a, rel), "rb").read() != open(os.path.join(b, rel), "rb").read():
            fail(f"{rel} differs")
    def step(p):
        return int(os.path.basename(p)[len("model_step_"):-len(".pt")])
    ca = sorted(glob.glob(os.path.join(a, "train/run/ckpt/model_step_*.pt")), key=step)
    cb = sorted(glob.glob(os.path.join(b, "train/run/ckpt/model_step_*.pt")), key=step)
    if [os.path.basename(p) for p in ca] != [os.path.basename(p) for p in cb] or not ca:
        fail(f"checkpoints differ: {ca} vs {cb}")
    # the trainer resumes bit for bit (and two ranks summing gradients are one
    # process accumulating two micro-batches): the final weights are the same bytes
    if open(ca[-1], "rb").read() != open(cb[-1], "rb").read():
        fail(f"{os.path.basename(ca[-1])} differs")
    print("ok")


class Ids(html.parser.HTMLParser):
    """Text of every element with an id, and whether the page loads anything."""

    def __init__(self):
        super().__init__()
        self.text, self.stack, self.external = {}, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" or (tag in ("img", "link", "iframe") and (a.get("src") or a.get("href"))):
            self.external.append(tag)
        self.stack.append(a.get("id"))

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for i in self.stack:
            if i:
                self.text[i] = self.text.get(i, "") + data


def close(shown, want, tol, what):
    if abs(float(shown) - float(want)) > tol:
        fail(f"{what}: report shows {shown}, the files say {want}")


def report(dom_path, root):
    p = Ids()
    p.feed(open(dom_path, encoding="utf-8").read())
    t = p.text
    if p.external:
        fail(f"report loads external things: {p.external}")
    metrics = json.load(open(os.path.join(root, "eval/metrics.json")))
    for k, v in metrics.items():
        close(t[f"metric-{k}"], v, 5e-5 if isinstance(v, float) else 0, k)
    # the curves: every events file of the run through tensorboard's checksum-
    # checking record reader (a killed run's file counts up to its torn tail),
    # the later file winning a step
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "trainer"))
    import read_events
    points = {}
    for ev in sorted(glob.glob(os.path.join(root, "train/run/log/events.out.tfevents.*"))):
        records, _ = read_events.raw_records(ev)
        for e in records:
            for v in e.summary.value:
                points.setdefault(v.tag, {})[e.step] = v.simple_value
    val = "valid/acc" if "valid/acc" in points else "valid/val_acc"  # train_vqa.py's tag
    for tag, key in (("loss", "loss"), ("lr", "lr"), (val, "val-acc")):
        steps = points[tag]
        last = max(steps)
        close(t[f"curve-{key}-step"], last, 0, tag + " last step")
        close(t[f"curve-{key}-points"], len(steps), 0, tag + " points")
        close(t[f"curve-{key}-last"], steps[last], abs(steps[last]) * 1e-5 + 1e-12, tag + " last value")
    for split in ("train", "dev"):
        id2len = json.load(open(glob.glob(os.path.join(root, f"txt_db/*_{split}.db/id2len.json"))[0]))
        close(t[f"data-{split}-examples"], len(id2len), 0, split + " examples")
        close(t[f"data-{split}-mean-len"], sum(id2len.values()) / len(id2len), 0.005, split + " mean length")
        nbb = json.load(open(glob.glob(os.path.join(root, f"img_db/*_{split}/nbb_*.json"))[0]))
        close(t[f"data-{split}-images"], len(nbb), 0, split + " images")
        close(t[f"data-{split}-mean-boxes"], sum(nbb.values()) / len(nbb), 0.005, split + " mean boxes")
    rejects = 0
    for m in glob.glob(os.path.join(root, "**/manifest.json"), recursive=True):
        path = json.load(open(m))["result"].get("rejects_path")
        if path:
            rejects += sum(1 for line in open(path) if line.strip())
    close(t["rejects-total"], rejects, 0, "rejects")
    train = json.load(open(os.path.join(root, "train/manifest.json")))["result"]
    close(t["stage-train-seconds"], train["seconds"], 0.005, "train seconds")
    close(t["metric-steps"], train["items"], 0, "steps")
    print("ok")


def img_arrays(path):
    """{key: {name: ndarray}} of a msgpack-numpy img_db (UNITER's layout)."""
    import numpy as np
    out = {}
    for k, v in db_records(path).items():
        if k == b"__keys__":
            continue
        rec = msgpack.unpackb(v, raw=True)
        out[k.decode()] = {
            n.decode(): np.frombuffer(a[b"data"], dtype=np.dtype(a[b"type"].decode())).reshape(a[b"shape"])
            for n, a in rec.items()}
    return out


def to_npz(db, out_dir):
    import numpy as np
    os.makedirs(out_dir, exist_ok=True)
    for key, arrays in img_arrays(db).items():
        np.savez_compressed(os.path.join(out_dir, key), **arrays)
    print("ok")


def same_img(a, b):
    import numpy as np
    ra, rb = img_arrays(a), img_arrays(b)
    if sorted(ra) != sorted(rb):
        fail(f"keys differ: {len(ra)} vs {len(rb)}")
    for k in ra:
        for n in ra[k]:
            x, y = ra[k][n], rb[k].get(n)
            if y is None or x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                fail(f"{k}[{n}] differs")
    print("ok")


def metrics(task, root, ann):
    got = json.load(open(os.path.join(root, "eval/metrics.json")))
    if task == "vqa":
        import subprocess
        results = glob.glob(os.path.join(root, "infer/results_test/results_*_all.json"))
        if len(results) != 1:
            fail(f"expected one VQA results file, found {results}")
        ref = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "trainer", "vqa_eval_ref.py")
        out = subprocess.run([sys.executable, ref, results[0], ann], check=True, capture_output=True, text=True).stdout
        want = {k: float(v) for k, v in (line.split("=") for line in out.split())}
    else:
        pred = json.load(open(os.path.join(root, "infer/results.json")))
        gold = {}
        for line in open(ann):
            if line.strip():
                r = json.loads(line)
                gold[r["pairID"]] = r["gold_label"]
        if set(pred) != set(gold):
            fail(f"results cover {len(pred)} pairs, the annotations {len(gold)}")
        correct = sum(pred[k] == v for k, v in gold.items())
        want = {"accuracy": correct / len(gold), "examples": len(gold), "correct": correct}
    if set(got) - {"overall"} != set(want) - {"overall"}:
        fail(f"metrics.json keys {sorted(got)}, expected {sorted(want)}")
    for k, v in want.items():
        if abs(got[k] - v) > 1e-12:
            fail(f"{k}: metrics.json {got[k]}, recomputed {v}")
    print("ok")


def keys(root):
    for db in sorted(glob.glob(os.path.join(root, "txt_db", "*.db"))):
        split = os.path.basename(db)[:-3]
        named = {r["img_fname"].encode() for r in txt_records(db).values() if isinstance(r, dict) and "img_fname" in r}
        feats = glob.glob(os.path.join(root, "img_db", split, "feat_*"))
        if len(feats) != 1:
            fail(f"no single img_db for {split}: {feats}")
        stored = set(db_records(feats[0])) - {b"__keys__"}
        if not named or named != stored:
            fail(f"{split}: txt_db names {len(named)} images ({sorted(named)[:2]}), img_db holds {len(stored)} "
                 f"({sorted(stored)[:2]})")
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "same":
        same(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "to-npz":
        to_npz(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "same-img":
        same_img(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "metrics":
        metrics(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "keys":
        keys(sys.argv[2])
    else:
        report(sys.argv[2], sys.argv[3])
