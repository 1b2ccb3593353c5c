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
  check_pipeline.py itm-inputs DIR       writes an ITM pipeline's inputs: a Flickr30k-style
                                         Karpathy dataset JSON whose captions' words (colour,
                                         shape) set the image's features, npz folders per
                                         split, vocab, model and train configs, pipeline.json
  check_pipeline.py itm-txt ROOT KARPATHY   the itm txt_dbs as UNITER's data/itm.py reads
                                         them (TxtTokLmdb + txt2img/img2txts) hold the
                                         Karpathy split's captions, tokenized by
                                         pytorch-pretrained-bert's BertTokenizer
  check_pipeline.py itm-metrics ROOT     eval/metrics.json equals utils/itm_eval.py
                                         (tests/trainer/uniter_itm_ref.py) on the pickled
                                         results.bin of ROOT/infer and the dev txt_db
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
    # train_vqa.py's tag; train_itm.py's recall of the gt image
    val = next(t for t in ("valid/acc", "valid/val_acc", "valid/recall_1") if t in points)
    key = {"valid/recall_1": "val-recall-1"}.get(val, "val-acc")
    for tag, key in (("loss", "loss"), ("lr", "lr"), (val, key)):
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


ITM_COLORS = ["red", "green", "blue", "yellow"]
ITM_SHAPES = ["circle", "square", "triangle", "star"]
ITM_BOXES, ITM_DIM = 10, 64


def itm_inputs(d):
    """Image k of a split shows one colour and one shape; its 10 boxes carry a
    block of ones at the colour's dims [8c, 8c+8) and the shape's [32+8s, 32+8s+8)
    plus noise, so a caption's two words tell its image."""
    import numpy as np
    rng = np.random.default_rng(5)
    os.makedirs(d, exist_ok=True)
    images, sentid = [], 0
    for split, combos in (("train", range(16)), ("val", (1, 3, 4, 6, 9, 11, 12, 14, 15, 0))):
        os.makedirs(os.path.join(d, "npz", split), exist_ok=True)
        for n, k in enumerate(combos):
            c, s = k % 4, k // 4
            flickr = 1000 + 100 * (split == "val") + n
            feat = rng.normal(0, 0.1, (ITM_BOXES, ITM_DIM)).astype(np.float32)
            feat[:, 8 * c:8 * c + 8] += 1
            feat[:, 32 + 8 * s:32 + 8 * s + 8] += 1
            xy = rng.uniform(0, 0.5, (ITM_BOXES, 2))
            wh = rng.uniform(0.2, 0.5, (ITM_BOXES, 2))
            bb = np.concatenate([xy, xy + wh, wh], axis=1).astype(np.float32)
            np.savez_compressed(os.path.join(d, "npz", split, f"flickr30k_{flickr:012d}.npz"),
                                features=feat, norm_bb=bb, conf=np.full(ITM_BOXES, 0.9, np.float32))
            sents = []
            for raw in (f"A {ITM_COLORS[c]} {ITM_SHAPES[s]}.", f"the {ITM_SHAPES[s]} is {ITM_COLORS[c]}"):
                sents.append({"tokens": raw.lower().strip(".").split(), "raw": raw, "imgid": len(images),
                              "sentid": sentid})
                sentid += 1
            images.append({"filename": f"{flickr}.jpg", "imgid": len(images), "split": split,
                           "sentids": [x["sentid"] for x in sents], "sentences": sents})
    json.dump({"images": images, "dataset": "flickr30k"}, open(os.path.join(d, "dataset_flickr30k.json"), "w"))
    words = ["a", "the", "is", "."] + ITM_COLORS + ITM_SHAPES
    with open(os.path.join(d, "vocab-uncased.txt"), "w") as f:
        f.write("".join(w + "\n" for w in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!"] + words))
    json.dump({"vocab_size": 6 + len(words), "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "intermediate_size": 128, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
               "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2,
               "initializer_range": 0.02, "img_dim": ITM_DIM}, open(os.path.join(d, "uniter-tiny.json"), "w"))
    # train-itm-flickr-base-8gpu.json's keys (train_txt_dbs/train_img_dbs spelling), scaled down
    json.dump({"train_txt_dbs": ["/txt/itm_flickr30k_train.db"], "train_img_dbs": ["/img/flickr30k/"],
               "val_txt_db": "/txt/itm_flickr30k_val.db", "val_img_db": "/img/flickr30k/",
               "test_txt_db": "/txt/itm_flickr30k_test.db", "test_img_db": "/img/flickr30k/",
               "checkpoint": "", "model_config": "config/uniter-base.json", "output_dir": "/storage/itm",
               "compressed_db": False, "max_txt_len": 40, "conf_th": 0.2, "max_bb": 10, "min_bb": 10,
               "num_bb": 10, "train_batch_size": 16, "negative_size": 1, "hard_neg_size": 0,
               "inf_minibatch_size": 10, "margin": 0.2, "valid_steps": 100, "num_train_steps": 300,
               "optim": "adamw", "betas": [0.9, 0.98], "dropout": 0.1, "weight_decay": 0.01, "grad_norm": 2.0,
               "warmup_steps": 30, "learning_rate": 1e-3, "gradient_accumulation_steps": 1, "seed": 42,
               "full_val": False, "fp16": False, "n_workers": 1, "pin_mem": False},
              open(os.path.join(d, "train-itm-tiny.json"), "w"))
    json.dump({"task": "itm", "annotations": {"train": "dataset_flickr30k.json", "dev": "dataset_flickr30k.json"},
               "npz": {"train": "npz/train", "dev": "npz/val"}, "vocab": "vocab-uncased.txt",
               "train_config": "train-itm-tiny.json", "model_config": "uniter-tiny.json", "output": "out"}, open(os.path.join(d, "pipeline.json"), "w"))
    print("ok")


def itm_txt(root, karpathy):
    """data/data.py's TxtTokLmdb and data/itm.py's datasets: ids from id2len.json,
    each record lz4+msgpack, txt2img.json and img2txts.json."""
    from pytorch_pretrained_bert import BertTokenizer
    d = os.path.dirname(os.path.abspath(karpathy))
    toker = BertTokenizer(os.path.join(d, "vocab-uncased.txt"), do_lower_case=True)
    images = json.load(open(karpathy))["images"]
    for split, ks in (("train", "train"), ("dev", "val")):
        db = os.path.join(root, "txt_db", f"itm_{split}.db")
        recs = {k.decode(): v for k, v in txt_records(db).items()}
        id2len = json.load(open(os.path.join(db, "id2len.json")))
        txt2img = json.load(open(os.path.join(db, "txt2img.json")))
        img2txts = json.load(open(os.path.join(db, "img2txts.json")))
        meta = json.load(open(os.path.join(db, "meta.json")))
        want_t2i, want_i2t = {}, {}
        for im in images:
            if im["split"] != ks:
                continue
            fname = f"flickr30k_{int(im['filename'][:-4]):012d}.npz"
            for s in im["sentences"]:
                want_t2i[str(s["sentid"])] = fname
                want_i2t.setdefault(fname, []).append(str(s["sentid"]))
                r = recs.get(str(s["sentid"]))
                ids = toker.convert_tokens_to_ids(toker.tokenize(s["raw"]))
                if r is None or r["input_ids"] != ids or r["img_fname"] != fname:
                    fail(f"{split}: record {s['sentid']} is {r}, expected input_ids {ids}, img_fname {fname}")
                if id2len.get(str(s["sentid"])) != len(ids):
                    fail(f"{split}: id2len[{s['sentid']}] = {id2len.get(str(s['sentid']))}, expected {len(ids)}")
        if txt2img != want_t2i or set(id2len) != set(want_t2i):
            fail(f"{split}: txt2img/id2len cover {len(txt2img)}/{len(id2len)} texts, Karpathy {ks} {len(want_t2i)}")
        if {k: sorted(v) for k, v in img2txts.items()} != {k: sorted(v) for k, v in want_i2t.items()}:
            fail(f"{split}: img2txts differs from Karpathy's {ks} images")
        vocab = [w.strip() for w in open(os.path.join(d, "vocab-uncased.txt"))]
        want_meta = {"CLS": vocab.index("[CLS]"), "SEP": vocab.index("[SEP]"), "MASK": vocab.index("[MASK]"),
                     "v_range": [vocab.index("!"), len(vocab)]}
        if any(meta.get(k) != v for k, v in want_meta.items()):
            fail(f"{split}: meta.json {meta}, expected {want_meta}")
    print("ok")


def itm_metrics(root):
    import pickle
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "trainer"))
    from uniter_itm_ref import itm_eval
    db = os.path.join(root, "txt_db", "itm_dev.db")
    with open(os.path.join(root, "infer", "results.bin"), "rb") as f:
        scores, txt_ids, img_ids = pickle.load(f)
    t2i = json.load(open(os.path.join(db, "txt2img.json")))
    i2t = json.load(open(os.path.join(db, "img2txts.json")))
    if txt_ids != list(json.load(open(os.path.join(db, "id2len.json")))) or sorted(img_ids) != sorted(i2t):
        fail("results.bin does not rank the dev txt_db's texts against its images")
    hps = json.load(open(os.path.join(root, "train", "run", "log", "hps.json")))
    want = itm_eval(scores.float().numpy(), txt_ids, img_ids, t2i, i2t, not hps.get("fix_uniter_quirks", False))
    want["examples"] = len(txt_ids)
    got = json.load(open(os.path.join(root, "eval", "metrics.json")))
    if set(got) != set(want):
        fail(f"metrics.json keys {sorted(got)}, expected {sorted(want)}")
    for k, v in want.items():
        if abs(got[k] - v) > 1e-12:
            fail(f"{k}: metrics.json {got[k]}, itm_eval {v}")
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
    elif sys.argv[1] == "itm-inputs":
        itm_inputs(sys.argv[2])
    elif sys.argv[1] == "itm-txt":
        itm_txt(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "itm-metrics":
        itm_metrics(sys.argv[2])
    else:
        report(sys.argv[2], sys.argv[3])
