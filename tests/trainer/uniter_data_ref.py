"""Reference side of the trainer data tests: UNITER's data loading restated in
Python (ChenRocks/UNITER data/data.py, nlvr2.py, vqa.py, ve.py, sampler.py),
over Python's own lmdb, lz4, msgpack, msgpack-numpy, numpy and torch.

  uniter_data_ref.py gen OUT SEED FEAT_DIM [SCALE]  writes txt_dbs + an img_db under OUT
                                                (SCALE multiplies the image and example counts)
  uniter_data_ref.py bench CASE.json            times the loader restatement: JSON {examples, seconds}
  uniter_data_ref.py batches CASE.json OUT      every batch of the case's epochs:
                                                OUT.npz (tensors) + OUT.json (qids)
"""
import io
import json
import os
import random
import sys
from collections import defaultdict

import lmdb
import msgpack
import msgpack_numpy
import numpy as np
import torch
from lz4.frame import compress, decompress
from torch.nn.utils.rnn import pad_sequence

msgpack_numpy.patch()

CLS, SEP, MASK = 101, 102, 103


# ------------------------------------------------------------------ generation
def put_txt_db(db_dir, examples, txt2img, rng):
    os.makedirs(db_dir, exist_ok=True)
    env = lmdb.open(db_dir, map_size=1 << 30)
    with env.begin(write=True) as txn:
        for k, ex in examples.items():
            txn.put(k.encode('utf-8'), compress(msgpack.dumps(ex, use_bin_type=True)))
    env.close()
    keys = list(examples)
    rng.shuffle(keys)  # id2len order is not key order: the loader must keep the file's
    json.dump({k: len(examples[k]['input_ids']) for k in keys}, open(f'{db_dir}/id2len.json', 'w'))
    json.dump(txt2img, open(f'{db_dir}/txt2img.json', 'w'))
    json.dump({'bert': 'bert-base-cased', 'UNK': 100, 'CLS': CLS, 'SEP': SEP, 'MASK': MASK,
               'v_range': [106, 28996]}, open(f'{db_dir}/meta.json', 'w'))


def gen(out, seed, feat_dim, scale=1):
    rng = np.random.RandomState(seed)
    prng = random.Random(seed)
    img_dir = f'{out}/img'
    os.makedirs(img_dir, exist_ok=True)
    names = [f'img_{i:03d}.npz' for i in range(30 * scale)]
    dumps = {}
    for name in names:
        n = int(rng.randint(1, 45))
        conf = np.sort(rng.rand(n))[::-1].astype(np.float16)
        x1, y1 = rng.rand(n) * 0.5, rng.rand(n) * 0.5
        w, h = rng.rand(n) * 0.5, rng.rand(n) * 0.5
        dumps[name] = {'features': (rng.randn(n, feat_dim) * 3).astype(np.float16),
                       'norm_bb': np.stack([x1, y1, x1 + w, y1 + h, w, h], 1).astype(np.float16),
                       'conf': conf, 'soft_labels': rng.rand(n, 5).astype(np.float16)}
    # nbb as convert_imgdir computes it; the rows are all stored (more than nbb, or fewer when n < min_bb)
    name2nbb = {k: int(min(100, max(10, (d['conf'] > 0.2).sum()))) for k, d in dumps.items()}
    for db_name, codec in (('feat_th0.2_max100_min10', 'msgpack'), ('feat_th0.2_max100_min10_compressed', 'npz'),
                           ('feat_numbb7', 'msgpack')):
        env = lmdb.open(f'{img_dir}/{db_name}', map_size=1 << 30)
        with env.begin(write=True) as txn:
            for k, d in dumps.items():
                if codec == 'npz':
                    with io.BytesIO() as f:
                        np.savez_compressed(f, **d, allow_pickle=True)
                        val = f.getvalue()
                else:
                    val = msgpack.dumps(d, use_bin_type=True)
                txn.put(k.encode(), val)
            txn.put(b'__keys__', json.dumps(names).encode())
        env.close()
    json.dump(name2nbb, open(f'{img_dir}/nbb_th0.2_max100_min10.json', 'w'))

    def ids(n_max):
        return [int(x) for x in rng.randint(106, 28996, size=int(rng.randint(1, n_max)))]

    nlvr2, t2i = {}, {}
    for i in range(70 * scale):
        k = f'nlvr2-{i}-0-{i % 3}'
        imgs = [names[rng.randint(len(names))], names[rng.randint(len(names))]]
        nlvr2[k] = {'input_ids': ids(70), 'img_fname': imgs, 'target': int(rng.randint(2)), 'identifier': k}
        t2i[k] = imgs
    put_txt_db(f'{out}/nlvr2', nlvr2, t2i, prng)

    vqa, t2i = {}, {}
    for i in range(90 * scale):
        k = str(1000 + i)
        img = names[rng.randint(len(names))]
        nl = int(rng.randint(0, 5))
        labels = [int(x) for x in rng.randint(0, 3129, size=nl)]
        if nl >= 2 and i % 4 == 0:
            labels[1] = labels[0]  # repeated label: the later score wins
        scores = [float(x) for x in rng.choice([0.3, 0.6, 0.9, 1.0], size=nl)]
        ex = {'input_ids': ids(30), 'img_fname': img, 'question_id': int(k)}
        ex['target'] = {'labels': labels, 'scores': scores}
        vqa[k] = ex
        t2i[k] = img
    put_txt_db(f'{out}/vqa', vqa, t2i, prng)

    ve, t2i = {}, {}
    for i in range(60 * scale):
        k = f'{4000 + i}#r{i % 2}'
        img = names[rng.randint(len(names))]
        ve[k] = {'input_ids': ids(40), 'img_fname': img, 'target': {'labels': [int(rng.randint(3))], 'scores': [1.0]}}
        t2i[k] = img
    put_txt_db(f'{out}/ve', ve, t2i, prng)


# ------------------------------------------------------- UNITER's loaders, restated
class TxtTokLmdb:
    def __init__(self, db_dir, max_txt_len):
        id2len = json.load(open(f'{db_dir}/id2len.json'))
        self.id2len = id2len if max_txt_len == -1 else {i: l for i, l in id2len.items() if l <= max_txt_len}
        self.env = lmdb.open(db_dir, readonly=True, create=False)
        self.txn = self.env.begin(buffers=True)
        meta = json.load(open(f'{db_dir}/meta.json'))
        self.cls_, self.sep = meta['CLS'], meta['SEP']
        self.txt2img = json.load(open(f'{db_dir}/txt2img.json'))

    def __getitem__(self, id_):
        return msgpack.loads(decompress(self.txn.get(id_.encode('utf-8'))), raw=False)


class DetectFeatLmdb:
    def __init__(self, img_dir, conf_th, max_bb, min_bb, num_bb, compress):
        if conf_th == -1:
            db_name = f'feat_numbb{num_bb}'
            self.name2nbb = defaultdict(lambda: num_bb)
        else:
            db_name = f'feat_th{conf_th}_max{max_bb}_min{min_bb}'
            self.name2nbb = json.load(open(f'{img_dir}/nbb_th{conf_th}_max{max_bb}_min{min_bb}.json'))
        self.compress = compress
        if compress:
            db_name += '_compressed'
        self.env = lmdb.open(f'{img_dir}/{db_name}', readonly=True, create=False)
        self.txn = self.env.begin(buffers=True)

    def __getitem__(self, fname):
        dump = self.txn.get(fname.encode('utf-8'))
        nbb = self.name2nbb[fname]
        if self.compress:
            with io.BytesIO(dump) as reader:
                d = np.load(reader, allow_pickle=True)
                d = {'features': d['features'], 'norm_bb': d['norm_bb']}
        else:
            d = msgpack.loads(dump, raw=False)
        return torch.tensor(d['features'][:nbb, :]).float(), torch.tensor(d['norm_bb'][:nbb, :]).float()


class Dataset:
    """DetectFeatTxtTokDataset + the task's __getitem__ (one txt_db, sharded)."""
    def __init__(self, task, txt_db, img_db, rank, world, use_img_type, num_answers):
        self.task, self.txt_db, self.img_db = task, txt_db, img_db
        self.use_img_type, self.num_answers = use_img_type, num_answers
        self.ids = list(txt_db.id2len.keys())[rank::world]
        tls = [txt_db.id2len[i] for i in self.ids]
        t2i = txt_db.txt2img
        if task == 'nlvr2-paired':
            self.lens = [2 * tl + sum(img_db.name2nbb[im] for im in t2i[i]) for tl, i in zip(tls, self.ids)]
        elif task == 'nlvr2-triplet':
            self.lens = [tl + sum(img_db.name2nbb[im] for im in t2i[i]) for tl, i in zip(tls, self.ids)]
        else:
            self.lens = [tl + img_db.name2nbb[t2i[i]] for tl, i in zip(tls, self.ids)]

    def img(self, fname):
        feat, bb = self.img_db[fname]
        return feat, torch.cat([bb, bb[:, 4:5] * bb[:, 5:]], dim=-1), feat.size(0)

    def get(self, i):
        ex = self.txt_db[self.ids[i]]
        ids = torch.tensor([self.txt_db.cls_] + ex['input_ids'] + [self.txt_db.sep])
        if self.task == 'nlvr2-paired':
            rows = []
            for k, im in enumerate(ex['img_fname']):
                f, p, n = self.img(im)
                rows.append((ids, f, p, torch.ones(len(ids) + n, dtype=torch.long),
                             torch.tensor([k + 1] * n) if self.use_img_type else None))
            return rows, ex.get('target')
        if self.task == 'nlvr2-triplet':
            fs, ps, types, n = [], [], [], 0
            for k, im in enumerate(ex['img_fname']):
                f, p, nb = self.img(im)
                fs.append(f)
                ps.append(p)
                n += nb
                types += [k + 1] * nb
            t = torch.tensor(types) if self.use_img_type else None
            return [(ids, torch.cat(fs), torch.cat(ps), torch.ones(len(ids) + n, dtype=torch.long), t)], ex.get('target')
        f, p, n = self.img(ex['img_fname'])
        target = None
        if 'target' in ex:
            target = torch.zeros(self.num_answers)
            labels, scores = ex['target']['labels'], ex['target']['scores']
            if labels and scores:
                target.scatter_(0, torch.tensor(labels), torch.tensor(scores))
        return [(ids, f, p, torch.ones(len(ids) + n, dtype=torch.long), None)], target


def pad_tensors(tensors, lens):
    out = torch.zeros(len(tensors), max(lens), tensors[0].size(-1), dtype=tensors[0].dtype)
    for i, (t, l) in enumerate(zip(tensors, lens)):
        out.data[i, :l, ...] = t.data
    return out


def get_gather_index(txt_lens, num_bbs, batch_size, max_len, out_size):
    gi = torch.arange(0, out_size, dtype=torch.long).unsqueeze(0).repeat(batch_size, 1)
    for i, (tl, nbb) in enumerate(zip(txt_lens, num_bbs)):
        gi.data[i, tl:tl + nbb] = torch.arange(max_len, max_len + nbb, dtype=torch.long).data
    return gi


def collate(task, items):
    rows = [r for rs, _ in items for r in rs]
    input_ids, feats, poss, masks, types = map(list, zip(*rows))
    txt_lens = [i.size(0) for i in input_ids]
    input_ids = pad_sequence(input_ids, batch_first=True, padding_value=0)
    num_bbs = [f.size(0) for f in feats]
    batch = {'input_ids': input_ids,
             'position_ids': torch.arange(0, input_ids.size(1), dtype=torch.long).unsqueeze(0),
             'img_feat': pad_tensors(feats, num_bbs), 'img_pos_feat': pad_tensors(poss, num_bbs)}
    if types[0] is not None:
        batch['img_type_ids'] = pad_sequence(types, batch_first=True, padding_value=0)
    batch['attn_masks'] = pad_sequence(masks, batch_first=True, padding_value=0)
    bs, max_tl = input_ids.size()
    batch['gather_index'] = get_gather_index(txt_lens, num_bbs, bs, max_tl, batch['attn_masks'].size(1))
    targets = [t for _, t in items]
    if targets[0] is not None:
        if task.startswith('nlvr2'):
            batch['targets'] = torch.Tensor(targets).long()
        else:
            batch['targets'] = torch.stack(targets, dim=0)
    return batch


def token_bucket_batches(lens, bucket_size, batch_size, droplast, size_mul):
    """TokenBucketSampler.__iter__, drawing from the global `random`."""
    ids = list(range(len(lens)))
    random.shuffle(ids)
    buckets = [sorted(ids[i:i + bucket_size], key=lambda i: lens[i], reverse=True)
               for i in range(0, len(ids), bucket_size)]
    batches = []
    for bucket in buckets:
        max_len = 0
        batch = []
        for s in range(0, len(bucket), size_mul):
            group = bucket[s:s + size_mul]
            max_len = max(max_len, max(lens[i] for i in group))
            if max_len * (len(batch) + size_mul) > batch_size:
                if not batch:
                    raise ValueError("max_tokens too small / max_seq_len too long")
                batches.append(batch)
                batch = list(group)
            else:
                batch.extend(group)
        if not droplast and batch:
            batches.append(batch)
    random.shuffle(batches)
    return batches


def load_case(c):
    conf_th = c['conf_th']
    if conf_th == -1:
        conf_th = -1
    img_db = DetectFeatLmdb(c['img_db'], conf_th, c['max_bb'], c['min_bb'], c['num_bb'], c['compressed_db'])
    dsets = [Dataset(c['task'], TxtTokLmdb(t, c['max_txt_len'] if c['is_train'] else -1), img_db,
                     c['rank'], c['world'], c['use_img_type'], c['num_answers']) for t in c['txt_dbs']]
    return dsets, [l for d in dsets for l in d.lens], [(d, i) for d in dsets for i in range(len(d.ids))]


def bench(case_path):
    """Single-process loop over the case's epochs (UNITER's DataLoader with n_workers=0)."""
    import time
    c = json.load(open(case_path))
    random.seed(c['seed'])
    dsets, lens, index = load_case(c)
    n = 0
    start = time.perf_counter()
    for _ in range(c['epochs']):
        for b in token_bucket_batches(lens, c['bucket_size'], c['batch_size'], c['is_train'], 8):
            batch = collate(c['task'], [index[i][0].get(index[i][1]) for i in b])
            n += len(b)
    print(json.dumps({'examples': n, 'seconds': time.perf_counter() - start}))


def batches(case_path, out):
    c = json.load(open(case_path))
    random.seed(c['seed'])  # set_random_seed
    dsets, lens, index = load_case(c)
    tensors, meta = {}, {'lens': lens, 'batches': []}
    k = 0
    for _ in range(c['epochs']):
        for b in token_bucket_batches(lens, c['bucket_size'], c['batch_size'], c['is_train'], 8):
            items = [index[i][0].get(index[i][1]) for i in b]
            for key, t in collate(c['task'], items).items():
                tensors[f'b{k}_{key}'] = t.numpy()
            meta['batches'].append({'indices': b, 'qids': [index[i][0].ids[index[i][1]] for i in b]})
            k += 1
    np.savez(out + '.npz', **tensors)
    json.dump(meta, open(out + '.json', 'w'))


def python_random(case_path):
    """Python's own random: getrandbits and shuffles, per seed, from one generator each."""
    out = []
    for seed in json.load(open(case_path))['seeds']:
        random.seed(seed)
        draws = {'seed': seed, 'bits': [random.getrandbits(k) for k in range(1, 33)], 'shuffles': []}
        for n in (0, 1, 2, 3, 10, 100, 1000, 5000):
            x = list(range(n))
            random.shuffle(x)
            draws['shuffles'].append(x)
        draws['below'] = [random.randrange(n) for n in (1, 2, 3, 7, 1000, 2**31 + 11, 2**32 - 1)]
        out.append(draws)
    print(json.dumps(out))


def numpy_random(case_path):
    """numpy's legacy global generator after np.random.seed(seed): its state, then
    uniform / random_sample / randint / choice draws in a fixed order."""
    c = json.load(open(case_path))
    out = []
    for seed in c['seeds']:
        np.random.seed(seed)
        _, words, pos, _, _ = np.random.get_state()
        draws = {'state': [int(w) for w in words] + [int(pos)]}
        draws['uniform'] = [float(np.random.uniform(0, 1, 1)[0]) for _ in range(5)]
        draws['uniform_ab'] = float(np.random.uniform(-3.5, 2.25))
        draws['sample'] = float(np.random.random_sample())
        draws['randint'] = [int(np.random.randint(lo, hi)) for lo, hi in c['ranges']]
        draws['choice'] = [int(np.random.choice(n)) for n in c['choices']]
        _, words, pos, _, _ = np.random.get_state()
        draws['state_after'] = [int(w) for w in words] + [int(pos)]
        out.append(draws)
    print(json.dumps(out))


def sampler(case_path):
    """TokenBucketSampler epochs on given lens, seeded like UNITER."""
    c = json.load(open(case_path))
    random.seed(c['seed'])
    try:
        epochs = [token_bucket_batches(c['lens'], c['bucket_size'], c['batch_size'], c['droplast'], 8)
                  for _ in range(c['epochs'])]
    except ValueError:
        epochs = None
    print(json.dumps(epochs))


if __name__ == '__main__':
    if sys.argv[1] == 'random':
        python_random(sys.argv[2])
    elif sys.argv[1] == 'numpy_random':
        numpy_random(sys.argv[2])
    elif sys.argv[1] == 'sampler':
        sampler(sys.argv[2])
    elif sys.argv[1] == 'gen':
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    elif sys.argv[1] == 'bench':
        bench(sys.argv[2])
    elif sys.argv[1] == 'batches':
        batches(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f'unknown command {sys.argv[1]}')
