"""Reference side of the pretraining run's tests: generated caption dbs and
pretrain.py's validate_mlm / validate_mrfr / validate_mrc / validate_itm
restated (ChenRocks/UNITER pretrain.py) over pretrain_ref.py's model and
pretrain_data_ref.py's datasets and collates, with the run's validation
seeding (epoch 1, the config's seed; db order, batches of 8: validation sums
do not depend on how examples are batched).

  pretrain_val_ref.py gen OUT SEED          OUT/img (img_db with 1601-wide soft labels),
                                            OUT/txt_train, OUT/txt_val (caption txt_dbs)
  pretrain_val_ref.py validate CASE.json    one `task: loss=X [acc=Y]` line per val task
  pretrain_val_ref.py dumps DIR CKPT MODEL_JSON ITM_OT_LAMBDA [vcr]
                                            per --dump-batches file: `stem ours ref`, the dumped `loss`
                                            and pretrain.py's loss recomputed on the file's arrays with the
                                            checkpoint's weights; exits 1 when a file's keys are not the
                                            ones UNITER's collate yields; `vcr`: pretrain_vcr.py's model
                                            (init_type_embedding + init_word_embedding(81) before the
                                            weights load) and its collates (+ txt_type_ids)
  pretrain_val_ref.py bert MODEL_JSON OUT   a pytorch-pretrained-bert layout state dict (bert.* keys,
                                            LayerNorm gamma/beta, cls.predictions.*) of random weights
  pretrain_val_ref.py check_init BERT CKPT  `ok` when every BERT tensor reached its UNITER key in CKPT
                                            (and the tied decoder equals the word embeddings)
"""
import json
import os
import random
import sys
from os.path import dirname

import lmdb
import msgpack
import msgpack_numpy
import numpy as np
import torch
from lz4.frame import compress
from torch.nn import functional as F

msgpack_numpy.patch()
sys.path.insert(0, dirname(__file__))
from pretrain_data_ref import PretrainData, collate  # noqa: E402
from pretrain_ref import IMG_LABEL_DIM, Pretrain, train_loss  # noqa: E402
from uniter_ref import IMG_DIM, Cfg  # noqa: E402

COLORS, IMAGES, BOXES = 4, 48, 10


def gen(out, seed):
    """Image i has colour i % 4: its boxes carry a block of ones at the colour's
    64 feature dims and the detector's soft label peaks at class 1 + colour;
    each caption holds filler words and its image's colour word (10 + colour)."""
    rng = np.random.RandomState(seed)
    img_dir = f'{out}/img'
    os.makedirs(img_dir, exist_ok=True)
    names = [f'img_{i:03d}.npz' for i in range(IMAGES)]
    env = lmdb.open(f'{img_dir}/feat_th0.2_max100_min10', map_size=1 << 30)
    with env.begin(write=True) as txn:
        for i, name in enumerate(names):
            c = i % COLORS
            feat = rng.randn(BOXES, IMG_DIM) * 0.3
            feat[:, c * 64:(c + 1) * 64] += 1.0
            x, y = rng.rand(BOXES) * 0.5, rng.rand(BOXES) * 0.5
            w, h = 0.2 + rng.rand(BOXES) * 0.3, 0.2 + rng.rand(BOXES) * 0.3
            soft = rng.rand(BOXES, IMG_LABEL_DIM) * 0.01
            soft[:, 1 + c] = 0.9
            soft /= soft.sum(1, keepdims=True)  # a distribution, as the detector's
            d = {'features': feat.astype(np.float16),
                 'norm_bb': np.stack([x, y, x + w, y + h, w, h], 1).astype(np.float16),
                 'conf': np.full(BOXES, 0.9, np.float16), 'soft_labels': soft.astype(np.float16)}
            txn.put(name.encode(), msgpack.dumps(d, use_bin_type=True))
        txn.put(b'__keys__', json.dumps(names).encode())
    env.close()
    json.dump({n: BOXES for n in names}, open(f'{img_dir}/nbb_th0.2_max100_min10.json', 'w'))
    for split, n in (('train', 480), ('val', 64)):
        db = f'{out}/txt_{split}'
        os.makedirs(db, exist_ok=True)
        env = lmdb.open(db, map_size=1 << 28)
        id2len, txt2img, img2txts = {}, {}, {}
        with env.begin(write=True) as txn:
            for k in range(n):
                img = names[rng.randint(IMAGES)]
                ids = [int(t) for t in rng.randint(20, 100, size=rng.randint(3, 7))]
                ids[rng.randint(len(ids))] = 10 + names.index(img) % COLORS
                key = f'{split}_{k}'
                ex = {'input_ids': ids, 'img_fname': img, 'id': key}
                txn.put(key.encode(), compress(msgpack.dumps(ex, use_bin_type=True)))
                id2len[key], txt2img[key] = len(ids), img
                img2txts.setdefault(img, []).append(key)
        env.close()
        json.dump(id2len, open(f'{db}/id2len.json', 'w'))
        json.dump(txt2img, open(f'{db}/txt2img.json', 'w'))
        json.dump(img2txts, open(f'{db}/img2txts.json', 'w'))
        json.dump({'bert': 'generated', 'UNK': 100, 'CLS': 101, 'SEP': 102, 'MASK': 103, 'v_range': [10, 100]},
                  open(f'{db}/meta.json', 'w'))


def scores(model, b, task):
    """UniterForPretraining.forward(batch, task, compute_loss=False)."""
    if task == 'mlm':
        seq = model.encode(b)[:, :b['input_ids'].size(1), :]
        return model.cls(model.masked_hidden(seq, b['txt_labels'] != -1))
    hidden = model.masked_hidden(model.encode(b, b['img_masks']), b['img_mask_tgt'])
    return model.feat_regress(hidden) if task == 'mrfr' else model.region_classifier(hidden)


def soft_accuracy(out, labels):
    return (out.max(dim=-1)[1] == labels.max(dim=-1)[1]).sum().item()


def validate_task(model, task, loader, ot):
    loss, correct, n, ot_pos, ot_neg = 0.0, 0, 0, 0.0, 0.0
    for b in loader:
        if task == 'mlm':
            s = scores(model, b, task)
            labels = b['txt_labels'][b['txt_labels'] != -1]
            loss += F.cross_entropy(s, labels, reduction='sum').item()
            correct += (s.max(dim=-1)[1] == labels).sum().item()
            n += labels.numel()
        elif task == 'mrfr':
            loss += F.mse_loss(scores(model, b, task), b['feat_targets'], reduction='none').sum().item() / IMG_DIM
            n += b['img_mask_tgt'].sum().item()
        elif task.startswith('mrc'):
            pred = scores(model, b, task)
            t = b['label_targets']
            if 'kl' in task:
                pred = F.log_softmax(pred, dim=-1)
                loss += F.kl_div(pred, t, reduction='sum').item()
                correct += soft_accuracy(pred, t)
            else:  # what UNITER's branch means (it reads label_targets undefined)
                loss += F.cross_entropy(pred, t[:, 1:].max(dim=-1)[1] + 1, ignore_index=0, reduction='sum').item()
                correct += soft_accuracy(pred[:, 1:], t[:, 1:])
            n += b['img_mask_tgt'].sum().item()
        else:
            seq = model.encode(b)
            s = model.itm_output(model.uniter.pooler(seq))
            if ot:
                _, (pos, neg) = model(b, 'itm')
                ot_pos += pos.sum().item()
                ot_neg += neg.sum().item()
            loss += F.cross_entropy(s, b['targets'], reduction='sum').item()
            correct += (s.max(dim=-1)[1] == b['targets']).sum().item()
            n += len(b['targets'])
    line = f'loss={loss / n:.6f}'
    if task != 'mrfr':
        line += f' acc={correct / n:.6f}'
    return line


def validate(case_path):
    c = json.load(open(case_path))
    torch.manual_seed(0)
    model = Pretrain(Cfg(json.load(open(c['model_config']))))
    state = torch.load(c['checkpoint'])
    missing, _ = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    assert not [k for k in missing if 'position_ids' not in k], missing
    model.eval()
    with torch.no_grad():
        for d in c['val_datasets']:
            for t in d['tasks']:
                task = 'mrc-kl' if t.startswith('mrc') and 'kl' in t else t
                data = PretrainData({'task': 'mrc' if task.startswith('mrc') else task, 'seed': c['seed'],
                                     'mask_prob': c['mrm_prob'], 'itm_neg_prob': c['itm_neg_prob'],
                                     'txt_db': d['db'][0], 'img_db': d['img'][0], 'max_txt_len': -1})
                data.new_epoch(1)
                ot = task == 'itm' and c['itm_ot_lambda'] > 0
                idx = list(range(len(data.ids)))
                loader = (collate(data.task, [data.get(i) for i in idx[k:k + 8]], ot) for k in range(0, len(idx), 8))
                print(f"{t}_{d['name']}: {validate_task(model, task, loader, ot)}")


COLLATE_KEYS = {'input_ids', 'position_ids', 'img_feat', 'img_pos_feat', 'attn_masks', 'gather_index'}
TASK_KEYS = {'mlm': {'txt_labels'}, 'mrfr': {'img_masks', 'img_mask_tgt', 'feat_targets'},
             'mrc': {'img_masks', 'img_mask_tgt', 'label_targets'},
             'itm': {'targets', 'ot_inputs.ot_scatter', 'ot_inputs.scatter_max', 'ot_inputs.txt_pad',
                     'ot_inputs.img_pad'}}


def dumps(dump_dir, ckpt, model_json, itm_ot_lambda, vcr=False):
    """pretrain.py's (pretrain_vcr.py's) forward + loss reduction on each dumped micro-batch."""
    model = Pretrain(Cfg(json.load(open(model_json))))
    if vcr:
        model.init_type_embedding()
        model.init_word_embedding(81)
    model.load_state_dict({k: v.float() for k, v in torch.load(ckpt).items()}, strict=False)
    model.train()  # as the step ran it (the test's config has no dropout)
    bad = False
    for name in sorted(os.listdir(dump_dir)):
        stem = name[:-len('.npz')]
        task = stem.split('_')[0]
        z = np.load(f'{dump_dir}/{name}')
        want = COLLATE_KEYS | TASK_KEYS['mrc' if task.startswith('mrc') else task] | {'loss'}
        if vcr:
            want |= {'txt_type_ids'}
        if set(z.files) != want:
            print(f'{stem}: keys {sorted(set(z.files) ^ want)} differ from the collate', file=sys.stderr)
            bad = True
            continue
        b = {k.split('.')[-1]: torch.from_numpy(z[k]) for k in z.files if k != 'loss'}
        with torch.no_grad():
            loss, ot = model(b, 'mrc-kl' if task == 'mrckl' else task)
            ref = train_loss(task, loss, ot, itm_ot_lambda).item()
        print(stem, float(z['loss']), ref)
    sys.exit(1 if bad else 0)


def bert(model_json, out):
    torch.manual_seed(11)
    m = Pretrain(Cfg(json.load(open(model_json))))
    state = {}
    for k, v in m.state_dict().items():
        if 'img_embeddings' in k or not k.startswith(('uniter.', 'cls.')) or k == 'cls.predictions.decoder.weight':
            continue
        k = k.replace('uniter.', 'bert.', 1).replace('LayerNorm.weight', 'LayerNorm.gamma')
        state[k.replace('LayerNorm.bias', 'LayerNorm.beta')] = torch.randn(v.shape) * 0.1
    state['cls.predictions.decoder.weight'] = state['bert.embeddings.word_embeddings.weight']
    torch.save(state, out)


def check_init(bert_path, ckpt):
    b, c = torch.load(bert_path), torch.load(ckpt)
    for k, v in b.items():
        u = k.replace('bert.', 'uniter.', 1).replace('gamma', 'weight').replace('beta', 'bias')
        # learning_rate 0 runs at 1e-8 (get_lr_sched's floor): two steps move a weight by ~2e-8
        assert (c[u].float() - v).abs().max() < 1e-6, u
    assert torch.equal(c['cls.predictions.decoder.weight'], c['uniter.embeddings.word_embeddings.weight'])
    print('ok', len(b))


if __name__ == '__main__':
    if sys.argv[1] == 'gen':
        gen(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == 'validate':
        validate(sys.argv[2])
    elif sys.argv[1] == 'bert':
        bert(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'check_init':
        check_init(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'dumps':
        dumps(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6:7] == ['vcr'])
    else:
        sys.exit(f'unknown command {sys.argv[1]}')
