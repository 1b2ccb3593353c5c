"""UNITER's pretraining datasets and collates restated (ChenRocks/UNITER
data/mlm.py MlmDataset + mlm_collate, data/mrm.py MrfrDataset/MrcDataset +
mrfr_collate/mrc_collate, data/itm.py ItmDataset + itm_collate/itm_ot_collate),
over Python's own lmdb, lz4, msgpack, numpy, random and torch, with the
seeding trainer/data/pretrain_datasets.h documents: example i of epoch e draws
from random.seed(example_seed(seed, e, i)), ITM's new_epoch from index -1.

  pretrain_data_ref.py batches CASE.json OUT   OUT.npz: b{k}_{key} per batch; OUT.json: lens
  pretrain_data_ref.py mix SEED ACCUM STEPS NAME:RATIO...   MetaLoader's task per micro-batch, one per line
  pretrain_data_ref.py vcr_gen OUT SEED [FEAT_DIM LABEL_DIM TOK_HI]
                                                  a VCR txt_db (OUT/vcr.db) + gt (OUT/vcr_gt, feat_numbb100)
                                                  and detected (OUT/vcr_det) img_dbs with soft labels
                                                  (default 16 / 7 wide), token ids in [106, TOK_HI)
  pretrain_data_ref.py vcr_batches CASE.json OUT  data/pretrain_vcr.py's datasets + collates restated
"""
import io
import json
import os
import random
import sys
from collections import defaultdict
from os.path import dirname

import msgpack
import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

sys.path.insert(0, dirname(__file__))
from pretrain_ref import get_img_mask, random_word  # noqa: E402  (UNITER's masking, restated once)
from uniter_data_ref import TxtTokLmdb, get_gather_index, pad_tensors, put_txt_db  # noqa: E402


def example_seed(seed, epoch, index):
    return ((seed * 1000003 + epoch) * 1000003 + index + 1) % 2 ** 64


class ImgDb:
    """DetectFeatLmdb (msgpack, conf_th 0.2 / max 100 / min 10) with get_dump's soft labels."""
    def __init__(self, img_dir):
        import lmdb
        self.name2nbb = json.load(open(f'{img_dir}/nbb_th0.2_max100_min10.json'))
        self.txn = lmdb.open(f'{img_dir}/feat_th0.2_max100_min10', readonly=True, create=False).begin(buffers=True)

    def get(self, fname):
        d = msgpack.loads(self.txn.get(fname.encode()), raw=False)
        nbb = self.name2nbb[fname]
        feat = torch.tensor(d['features'][:nbb]).float()
        bb = torch.tensor(d['norm_bb'][:nbb]).float()
        soft = torch.tensor(d['soft_labels'][:nbb].astype(np.float32))
        return feat, torch.cat([bb, bb[:, 4:5] * bb[:, 5:]], dim=-1), soft


class PretrainData:
    def __init__(self, c):
        self.task, self.seed = c['task'], c['seed']
        self.mask_prob, self.neg_p = c['mask_prob'], c['itm_neg_prob']
        self.txt = TxtTokLmdb(c['txt_db'], c['max_txt_len'])
        meta = json.load(open(f"{c['txt_db']}/meta.json"))
        self.v_range, self.mask = meta['v_range'], meta['MASK']
        self.img = ImgDb(c['img_db'])
        self.ids = list(self.txt.id2len.keys())
        self.txt_lens = [self.txt.id2len[i] for i in self.ids]
        self.gt = [self.txt.txt2img[i] for i in self.ids]
        self.all_imgs = sorted(set(self.gt))
        self.imgs, self.labels = list(self.gt), [1] * len(self.ids)

    def new_epoch(self, epoch):
        self.epoch = epoch
        if self.task == 'itm':
            random.seed(example_seed(self.seed, epoch, -1))
            self.labels = [0 if random.random() < self.neg_p else 1 for _ in self.ids]
            self.imgs = []
            for gt, label in zip(self.gt, self.labels):
                img = gt
                if label == 0:  # sample_negative(all_imgs, [gt], 1)
                    out = [gt]
                    while gt in out:
                        out = random.sample(self.all_imgs, 1)
                    img = out[0]
                self.imgs.append(img)
        self.lens = [tl + self.img.name2nbb[im] for tl, im in zip(self.txt_lens, self.imgs)]

    def get(self, i):
        random.seed(example_seed(self.seed, self.epoch, i))
        ex = self.txt[self.ids[i]]
        feat, pos, soft = self.img.get(self.imgs[i])
        n = feat.size(0)
        cls_, sep = self.txt.cls_, self.txt.sep
        if self.task == 'mlm':
            ids, labels = random_word(ex['input_ids'], self.v_range, self.mask)
            return {'ids': torch.tensor([cls_] + ids + [sep]), 'feat': feat, 'pos': pos,
                    'txt_labels': torch.tensor([-1] + labels + [-1])}
        ids = torch.tensor([cls_] + ex['input_ids'] + [sep])
        item = {'ids': ids, 'feat': feat, 'pos': pos}
        if self.task == 'itm':
            item['target'] = torch.tensor([self.labels[i]])
            return item
        mask = torch.tensor(get_img_mask(self.mask_prob, n))
        item['img_mask'] = mask
        item['img_mask_tgt'] = torch.cat([torch.zeros(len(ids), dtype=torch.bool), mask])
        item['soft'] = soft
        return item


def collate(task, items, ot):
    ids = [it['ids'] for it in items]
    txt_lens = [i.size(0) for i in ids]
    num_bbs = [it['feat'].size(0) for it in items]
    input_ids = pad_sequence(ids, batch_first=True, padding_value=0)
    img_feat = pad_tensors([it['feat'] for it in items], num_bbs)
    attn = pad_sequence([torch.ones(tl + nb, dtype=torch.long) for tl, nb in zip(txt_lens, num_bbs)],
                        batch_first=True, padding_value=0)
    bs, max_tl = input_ids.size()
    b = {'input_ids': input_ids, 'position_ids': torch.arange(0, max_tl, dtype=torch.long).unsqueeze(0),
         'img_pos_feat': pad_tensors([it['pos'] for it in items], num_bbs), 'attn_masks': attn,
         'gather_index': get_gather_index(txt_lens, num_bbs, bs, max_tl, attn.size(1))}
    if task == 'mlm':
        b['txt_labels'] = pad_sequence([it['txt_labels'] for it in items], batch_first=True, padding_value=-1)
    elif task == 'itm':
        b['targets'] = torch.cat([it['target'] for it in items], dim=0)
        if ot:
            joint = attn.size(1)
            scatter = torch.arange(0, joint, dtype=torch.long).unsqueeze(0).repeat(bs, 1)
            for i, tl in enumerate(txt_lens):
                scatter[i, tl:] = torch.arange(max(txt_lens), max(txt_lens) + joint - tl, dtype=torch.long)
            b['ot_scatter'] = scatter
            b['txt_pad'] = torch.arange(max(txt_lens)).unsqueeze(0) >= torch.tensor(txt_lens).unsqueeze(1)
            b['img_pad'] = torch.arange(max(num_bbs)).unsqueeze(0) >= torch.tensor(num_bbs).unsqueeze(1)
    else:
        masks = pad_sequence([it['img_mask'] for it in items], batch_first=True, padding_value=0)
        if task == 'mrfr':
            b['feat_targets'] = img_feat[masks.unsqueeze(-1).expand_as(img_feat)].contiguous().view(
                -1, img_feat.size(-1))
        else:
            soft = pad_tensors([it['soft'] for it in items], num_bbs)
            b['label_targets'] = soft[masks.unsqueeze(-1).expand_as(soft)].contiguous().view(-1, soft.size(-1))
        img_feat = img_feat.masked_fill(masks.unsqueeze(-1).expand_as(img_feat), 0)
        b['img_masks'] = masks
        b['img_mask_tgt'] = pad_sequence([it['img_mask_tgt'] for it in items], batch_first=True, padding_value=0)
    b['img_feat'] = img_feat
    return b


def batches(case_path, out):
    c = json.load(open(case_path))
    d = PretrainData(c)
    d.new_epoch(c['epoch'])
    tensors = {}
    for k, idx in enumerate(c['batches']):
        for key, t in collate(c['task'], [d.get(i) for i in idx], c['ot']).items():
            tensors[f'b{k}_{key}'] = t.numpy()
    np.savez(out + '.npz', **tensors)
    json.dump({'lens': d.lens, 'ids': d.ids, 'imgs': d.imgs}, open(out + '.json', 'w'))


class Endless:
    """A loader that never touches `random` (the mixing draws alone are compared)."""
    def __iter__(self):
        return iter(range(10 ** 9))


def mix(seed, accum, steps, specs):
    """data/loader.py MetaLoader.__iter__, as UNITER has it (one process)."""
    random.seed(seed)
    pools = []
    for spec in specs:
        name, ratio = spec.rsplit(':', 1)
        pools.extend([name] * int(ratio))
    task, step = pools[0], 0
    for _ in range(steps):
        if step % accum == 0:
            task = random.choice(pools)
        step += 1
        print(task)


# ------------------------------------------------------------- VCR 2nd stage
def vcr_gen(out, seed, feat_dim=16, label_dim=7, tok_hi=28996):
    """VCR-shaped dbs: answers / rationales of 1-9 tokens; gt images 2-8 boxes, det 1-45 (nbb 10-45)."""
    import lmdb
    rng = np.random.RandomState(seed)
    n_img = 12
    for kind in ('gt', 'det'):
        img_dir = f'{out}/vcr_{kind}'
        os.makedirs(img_dir, exist_ok=True)
        dumps = {}
        for i in range(n_img):
            n = int(rng.randint(2, 9) if kind == 'gt' else rng.randint(1, 46))
            x, y, w, h = (rng.rand(n) * 0.5 for _ in range(4))
            dumps[f'vcr_{kind}_{i}.npz'] = {
                'features': (rng.randn(n, feat_dim) * 3).astype(np.float16),
                'norm_bb': np.stack([x, y, x + w, y + h, w, h], 1).astype(np.float16),
                'conf': np.sort(rng.rand(n))[::-1].astype(np.float16),
                'soft_labels': rng.rand(n, label_dim).astype(np.float16)}
        db_name = 'feat_numbb100' if kind == 'gt' else 'feat_th0.2_max100_min10'
        env = lmdb.open(f'{img_dir}/{db_name}', map_size=1 << 28)
        with env.begin(write=True) as txn:
            for k, d in dumps.items():
                txn.put(k.encode(), msgpack.dumps(d, use_bin_type=True))
        env.close()
        if kind == 'det':
            nbb = {k: int(min(100, max(10, (d['conf'] > 0.2).sum()))) for k, d in dumps.items()}
            json.dump(nbb, open(f'{img_dir}/nbb_th0.2_max100_min10.json', 'w'))

    def toks(lo, hi):
        return [int(t) for t in rng.randint(106, tok_hi, size=int(rng.randint(lo, hi)))]

    exs, t2i, lens_qa, lens_qar = {}, {}, {}, {}
    for i in range(40):
        k = f'train-{i}'
        img = int(rng.randint(n_img))
        names = [f'vcr_gt_{img}.npz', f'vcr_det_{img}.npz']
        ex = {'input_ids': toks(1, 12), 'input_ids_as': [toks(1, 10) for _ in range(4)],
              'input_ids_rs': [toks(1, 10) for _ in range(4)], 'qa_target': int(rng.randint(4)),
              'qar_target': int(rng.randint(4)), 'img_fname': names}
        exs[k], t2i[k] = ex, names
        lens_qa[k] = len(ex['input_ids']) + len(ex['input_ids_as'][ex['qa_target']]) + 1
        lens_qar[k] = lens_qa[k] + len(ex['input_ids_rs'][ex['qar_target']]) + 1
    put_txt_db(f'{out}/vcr.db', exs, t2i, random.Random(seed))
    keys = list(exs)
    random.Random(seed + 1).shuffle(keys)
    lens_qar['train-3'] = 300  # over max_txt_len
    json.dump({k: lens_qa[k] for k in keys}, open(f'{out}/vcr.db/id2len_qa.json', 'w'))
    json.dump({k: lens_qar[k] for k in keys}, open(f'{out}/vcr.db/id2len_qar.json', 'w'))


class VcrImgDb:
    """DetectFeatLmdb as load_img_feat opens it (gt: conf_th -1, num_bb 100) with get_dump."""
    def __init__(self, img_dir, gt):
        import lmdb
        if gt:
            self.name2nbb, db_name = defaultdict(lambda: 100), 'feat_numbb100'
        else:
            self.name2nbb = json.load(open(f'{img_dir}/nbb_th0.2_max100_min10.json'))
            db_name = 'feat_th0.2_max100_min10'
        self.txn = lmdb.open(f'{img_dir}/{db_name}', readonly=True, create=False).begin(buffers=True)

    def get(self, fname, soft):
        d = msgpack.loads(self.txn.get(fname.encode()), raw=False)
        nbb = self.name2nbb[fname]
        feat = torch.tensor(d['features'][:nbb]).float()
        bb = torch.tensor(d['norm_bb'][:nbb]).float()
        out = [feat, torch.cat([bb, bb[:, 4:5] * bb[:, 5:]], dim=-1)]
        if soft:
            out.append(torch.tensor(d['soft_labels'][:nbb].astype(np.float32)))
        return out


class VcrPretrainData:
    """VcrTxtTokLmdb(task) + VcrPretrainDataset and the Mlm/Mrfr/MrcDatasetForVCR __getitem__s."""
    def __init__(self, c):
        import lmdb
        self.task, self.vcr_task, self.seed, self.mask_prob = c['task'], c['vcr_task'], c['seed'], c['mask_prob']
        db = c['txt_db']
        id2len = json.load(open(f"{db}/id2len_{self.vcr_task}.json"))
        if c['max_txt_len'] != -1:
            id2len = {k: v for k, v in id2len.items() if v <= c['max_txt_len']}
        self.ids = list(id2len)[c['rank']::c['world']]
        meta = json.load(open(f'{db}/meta.json'))
        self.cls_, self.sep, self.mask, self.v_range = meta['CLS'], meta['SEP'], meta['MASK'], meta['v_range']
        self.txn = lmdb.open(db, readonly=True, create=False).begin(buffers=True)
        t2i = json.load(open(f'{db}/txt2img.json'))
        self.gt, self.det = VcrImgDb(c['gt_db'], True), VcrImgDb(c['det_db'], False)
        self.lens = [id2len[k] + self.gt.name2nbb[t2i[k][0]] + self.det.name2nbb[t2i[k][1]] for k in self.ids]
        self.epoch = c['epoch']

    def input_ids(self, d, mask):
        """VcrPretrainDataset._get_input_ids + combine_txt_inputs."""
        def seg(ids):
            return random_word(list(ids), self.v_range, self.mask) if mask else (list(ids), list(ids))
        q, lq = seg(d['input_ids'])
        a, la = seg(d['input_ids_as'][d['qa_target']])
        ids, types, labels = q + [self.sep] + a, [0] * len(q) + [0] + [2] * len(a), lq + [-1] + la
        if self.vcr_task == 'qar':
            r, lr = seg(d['input_ids_rs'][d['qar_target']])
            ids, types, labels = ids + [self.sep] + r, types + [2] + [3] * len(r), labels + [-1] + lr
        return (torch.tensor([self.cls_] + ids + [self.sep]), torch.tensor([types[0]] + types + [types[-1]]),
                torch.tensor([-1] + labels + [-1]))

    def get(self, i):
        random.seed(example_seed(self.seed, self.epoch, i))
        from lz4.frame import decompress
        d = msgpack.loads(decompress(self.txn.get(self.ids[i].encode())), raw=False)
        ids, types, labels = self.input_ids(d, self.task == 'mlm')
        soft = self.task == 'mrc'
        g, t = self.gt.get(d['img_fname'][0], soft), self.det.get(d['img_fname'][1], soft)
        parts = [torch.cat([x, y], dim=0) for x, y in zip(g, t)]
        item = {'ids': ids, 'types': types, 'feat': parts[0], 'pos': parts[1]}
        if self.task == 'mlm':
            item['txt_labels'] = labels
            return item
        mask = torch.tensor(get_img_mask(self.mask_prob, parts[0].size(0)))
        item['img_mask'] = mask
        item['img_mask_tgt'] = torch.cat([torch.zeros(len(ids), dtype=torch.bool), mask])
        if soft:
            item['soft'] = parts[2]
        return item


def vcr_batches(case_path, out):
    c = json.load(open(case_path))
    d = VcrPretrainData(c)
    tensors = {}
    for k, idx in enumerate(c['batches']):
        items = [d.get(i) for i in idx]
        b = collate(c['task'], items, False)
        b['txt_type_ids'] = pad_sequence([it['types'] for it in items], batch_first=True, padding_value=0)
        for key, t in b.items():
            tensors[f'b{k}_{key}'] = t.numpy()
    np.savez(out + '.npz', **tensors)
    json.dump({'lens': d.lens, 'ids': d.ids}, open(out + '.json', 'w'))


if __name__ == '__main__':
    if sys.argv[1] == 'batches':
        batches(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'mix':
        mix(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    elif sys.argv[1] == 'vcr_gen':
        vcr_gen(sys.argv[2], *(int(a) for a in sys.argv[3:7]))
    elif sys.argv[1] == 'vcr_batches':
        vcr_batches(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f'unknown command {sys.argv[1]}')
