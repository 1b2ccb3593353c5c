"""UNITER's pretraining datasets and collates restated (ChenRocks/UNITER
data/mlm.py MlmDataset + mlm_collate, data/mrm.py MrfrDataset/MrcDataset +
mrfr_collate/mrc_collate, data/itm.py ItmDataset + itm_collate/itm_ot_collate),
over Python's own lmdb, lz4, msgpack, numpy, random and torch, with the
seeding trainer/data/pretrain_datasets.h documents: example i of epoch e draws
from random.seed(example_seed(seed, e, i)), ITM's new_epoch from index -1.

  pretrain_data_ref.py batches CASE.json OUT   OUT.npz: b{k}_{key} per batch; OUT.json: lens
  pretrain_data_ref.py mix SEED ACCUM STEPS NAME:RATIO...   MetaLoader's task per micro-batch, one per line
"""
import json
import random
import sys
from os.path import dirname

import msgpack
import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

sys.path.insert(0, dirname(__file__))
from pretrain_ref import get_img_mask, random_word  # noqa: E402  (UNITER's masking, restated once)
from uniter_data_ref import TxtTokLmdb, get_gather_index, pad_tensors  # noqa: E402


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


if __name__ == '__main__':
    if sys.argv[1] == 'batches':
        batches(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'mix':
        mix(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    else:
        sys.exit(f'unknown command {sys.argv[1]}')
