#!/usr/bin/env python3
"""Reference check of a txt_db written by `uniter convert <task>`.

Rebuilds every expected record from the raw annotation files the way UNITER's
preprocessing does (prepro.py / the fuller fork's process_* functions), with
pytorch-pretrained-bert 0.6.2 applied UNITER's way (bert_tokenize: whitespace
split, per-word WordPiece, empty words dropped), then reads the db the way
UNITER's TxtLmdb / TxtTokLmdb do (lmdb + lz4.frame + msgpack raw=False) and
compares records and sidecars. Prints "OK <n records>" or the differences;
exits non-zero on any difference.

usage: check_txtdb.py TASK DB_DIR --vocab VOCAB [--lower] --ann FILE... [--opt k=v ...]
"""
import argparse
import json
import os
import pickle
import re
import sys
from collections import OrderedDict, defaultdict

import lmdb
import lz4.frame
import msgpack
from pytorch_pretrained_bert import BertTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vqa_eval_ref import preprocess_answer, vqa_score  # noqa: E402


def make_bert_tokenize(toker):
    def bert_tokenize(text):
        ids = []
        for word in text.strip().split():
            ws = toker.tokenize(word)
            if not ws:
                continue
            ids.extend(toker.convert_tokens_to_ids(ws))
        return ids
    return bert_tokenize


def read_db(db_dir):
    env = lmdb.open(db_dir, readonly=True, create=False, lock=False)
    out = {}
    with env.begin() as txn:
        for k, v in txn.cursor():
            out[k.decode('utf-8')] = msgpack.loads(lz4.frame.decompress(v), raw=False)
    env.close()
    return out


def load_json(path):
    with open(path) as f:
        return json.load(f)


def jsonl(path):
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def normalize(v):
    """msgpack gives lists for tuples; compare like with like."""
    if isinstance(v, (list, tuple)):
        return [normalize(x) for x in v]
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    return v


# ---------------------------------------------------------------- per task
def exp_nlvr2(args, tok):
    ex, lens, t2i = OrderedDict(), {}, {}
    for path in args.ann:
        for e in jsonl(path):
            id_ = e['identifier']
            img_id = '-'.join(id_.split('-')[:-1])
            fn = [f'nlvr2_{img_id}-img0.npz', f'nlvr2_{img_id}-img1.npz']
            ids = tok(e['sentence'])
            e['input_ids'] = ids
            e['img_fname'] = fn
            e['target'] = (1 if e['label'] == 'True' else 0) if 'label' in e else None
            ex[id_] = e
            lens[id_] = len(ids)
            t2i[id_] = fn
    return {'': (ex, {'id2len': lens}, t2i)}


def exp_ve(args, tok):
    ex, lens, t2i = OrderedDict(), {}, {}
    label = {'contradiction': 0, 'entailment': 1, 'neutral': 2}
    for path in args.ann:
        for h in jsonl(path):
            img = h.get('Flikr30kID', h.get('Flickr30K_ID'))
            h['image_id'] = int(img.split('.')[0])
            ids = tok(h['sentence2'])
            h['input_ids'] = ids
            h['target'] = {'labels': [label[h['gold_label']]], 'scores': [1.0]}
            h['img_fname'] = f"flickr30k_{h['image_id']:012}.npz"
            ex[h['pairID']] = h
            lens[h['pairID']] = len(ids)
            t2i[h['pairID']] = h['img_fname']
    return {'': (ex, {'id2len': lens}, t2i)}


def exp_vqa_vg(args, tok, images):
    # Visual Genome question_answers.json: one record per QA pair, its single
    # answer counted as 10 annotators (UNITER's vqa_vg db).
    ans2label = load_json(args.opt['ans2label'])
    ex, lens, t2i = OrderedDict(), {}, {}
    for img in images:
        for qa in img['qas']:
            k = str(qa['qa_id'])
            qa['input_ids'] = ids = tok(qa['question'])
            qa['img_fname'] = f"vg_{qa['image_id']:012}.npz"
            a = preprocess_answer(qa['answer'])
            qa['target'] = ({'labels': [ans2label[a]], 'scores': [vqa_score(10)]} if a in ans2label
                            else {'labels': [], 'scores': []})
            ex[k] = qa
            lens[k] = len(ids)
            t2i[k] = qa['img_fname']
    return {'': (ex, {'id2len': lens}, t2i)}


def exp_vqa(args, tok):
    root = load_json(args.ann[0])
    if isinstance(root, list):
        return exp_vqa_vg(args, tok, root)
    qs = root['questions']
    anns = load_json(args.ann[1])['annotations'] if len(args.ann) > 1 else None
    split = args.opt['image-split']
    ans2label = load_json(args.opt['ans2label']) if 'ans2label' in args.opt else None
    ex, lens, t2i = OrderedDict(), {}, {}
    for q in qs:
        qid = str(q['question_id'])
        ids = tok(q['question'])
        q['input_ids'] = ids
        q['img_fname'] = (f"vg_{q['image_id']:012}.npz" if split == 'vg'
                          else f"coco_{split}_{q['image_id']:012}.npz")
        ex[qid] = q
        lens[qid] = len(ids)
        t2i[qid] = q['img_fname']
    if anns is not None:
        for a in anns:
            q = ex[str(a['question_id'])]
            for k, v in a.items():
                q[k] = v
            counts = OrderedDict()
            if len(a['answers']) == 1:
                counts[preprocess_answer(a['answers'][0]['answer'])] = 10
            else:
                for x in a['answers']:
                    n = preprocess_answer(x['answer'])
                    counts[n] = counts.get(n, 0) + 1
            labels, scores = [], []
            for ans, c in counts.items():
                if ans in ans2label:
                    labels.append(ans2label[ans])
                    scores.append(vqa_score(c))
            q['target'] = {'labels': labels, 'scores': scores}
    return {'': (ex, {'id2len': lens}, t2i)}


def exp_itm(args, tok):
    data = load_json(args.ann[0])
    dataset = data.get('dataset', args.opt.get('dataset'))
    dbs = {}
    for im in data['images']:
        fname = im['filename']
        if dataset == 'coco':
            iid = im['cocoid']
            img = f"coco_{im['filepath']}_{iid:012}.npz"
        else:
            iid = int(fname.split('.')[0])
            img = f'flickr30k_{iid:012}.npz'
        name = f"itm_{'coco' if dataset == 'coco' else 'flickr30k'}_{im['split']}.db"
        ex, lens, t2i = dbs.setdefault(name, (OrderedDict(), {}, {}))
        for s in im['sentences']:
            s = dict(s)
            id_ = str(s['sentid'])
            ids = tok(s['raw'])
            s['image_id'] = iid
            s['input_ids'] = ids
            s['img_fname'] = img
            ex[id_] = s
            lens[id_] = len(ids)
            t2i[id_] = img
    return {k: (e, {'id2len': l}, t) for k, (e, l, t) in dbs.items()}


def exp_refcoco(args, tok):
    with open(args.ann[0], 'rb') as f:
        refs = pickle.load(f, encoding='latin1')
    instances = load_json(args.ann[1])
    iid2ann = load_json(args.ann[2])
    iid2ann = iid2ann.get('iid_to_ann_ids', iid2ann)
    dataset = args.opt.get('dataset', 'refcoco')
    out, sidecars = {}, {}
    for split in OrderedDict((r['split'], 1) for r in refs):
        image_set = set(r['image_id'] for r in refs if r['split'] == split)
        images = [{'id': im['id'], 'file_name': im['file_name'],
                   'ann_ids': iid2ann[str(im['id'])],
                   'height': im['height'], 'width': im['width']}
                  for im in instances['images'] if im['id'] in image_set]
        annotations = [{'id': a['id'], 'area': a['area'], 'bbox': a['bbox'],
                        'image_id': a['image_id'], 'category_id': a['category_id'],
                        'iscrowd': a['iscrowd']}
                       for a in instances['annotations'] if a['image_id'] in image_set]
        anns = {a['id']: a for a in annotations}
        split_refs = [r for r in refs if r['split'] == split]
        ex, lens, t2i = OrderedDict(), {}, {}
        for r in split_refs:
            for s in r['sentences']:
                ids = tok(s['sent'])
                img = f"visual_grounding_coco_gt_{int(r['image_id']):012}.npz"
                ex[str(s['sent_id'])] = {
                    'sent_id': s['sent_id'], 'sent': s['sent'], 'ref_id': r['ref_id'],
                    'ann_id': r['ann_id'], 'image_id': r['image_id'],
                    'bbox': anns[r['ann_id']]['bbox'], 'input_ids': ids, 'img_fname': img}
                lens[str(s['sent_id'])] = len(ids)
                t2i[str(s['sent_id'])] = img
        name = f'{dataset}_{split}.db'
        out[name] = (ex, {'id2len': lens}, t2i)
        sidecars[name] = {'images.json': images, 'annotations.json': annotations,
                          'categories.json': instances['categories'],
                          'refs.json': normalize(split_refs)}
    args.sidecars = sidecars
    return out


def exp_vcr(args, tok_text):
    toker = args.toker
    specials = {f'person_{i}': i for i in range(81)}
    vocab = len(toker.vocab)

    def words_of(tokens, objects):
        words = []
        for w in tokens:
            if isinstance(w, str):
                words.extend(w.split(' '))
            else:
                for i in w:
                    name = objects[i]
                    if 'person' in name:
                        name = f'{name}_{i}'
                    words.append(name)
        return ' '.join(words)

    def tok(text):
        ids = []
        for w in text.strip().split():
            if w in specials:
                ids.append(vocab + specials[w])
            else:
                ids.extend(toker.convert_tokens_to_ids(toker.tokenize(w)))
        return ids

    split = args.opt.get('image-split', os.path.splitext(os.path.basename(args.ann[0]))[0])
    ex, lens, t2i = OrderedDict(), {'id2len': {}, 'id2len_qa': {}, 'id2len_qar': {}}, {}
    for q in jsonl(args.ann[0]):
        stem = os.path.splitext(q['img_fn'].split('/')[-1])[0]
        qid = str(q['annot_id'])
        q['image_id'] = stem
        q['qa_target'] = q.get('answer_label', -1)
        q['qar_target'] = q.get('rationale_label', -1)
        q['raw_q'] = words_of(q['question'], q['objects'])
        q['input_ids'] = tok(q['raw_q'])
        q['raw_as'] = [words_of(a, q['objects']) for a in q['answer_choices']]
        q['raw_rs'] = [words_of(r, q['objects']) for r in q['rationale_choices']]
        q['img_fname'] = [f'vcr_gt_{split}_{stem}.npz', f'vcr_{split}_{stem}.npz']
        q['input_ids_as'] = [tok(a) for a in q['raw_as']]
        q['input_ids_rs'] = [tok(r) for r in q['raw_rs']]
        qa = (len(q['input_ids']) + max(len(a) for a in q['input_ids_as'])) * 4
        lens['id2len'][qid] = len(q['input_ids'])
        lens['id2len_qa'][qid] = qa
        lens['id2len_qar'][qid] = qa + max(len(r) for r in q['input_ids_rs'])
        t2i[qid] = q['img_fname']
        ex[qid] = q
    return {'': (ex, lens, t2i)}


def exp_captions(args, tok):
    src = args.opt['source']
    ex, lens, t2i = OrderedDict(), {}, {}

    def add(id_, rec, text, img):
        ids = tok(text)
        rec['input_ids'] = ids
        rec['img_fname'] = img
        ex[id_] = rec
        lens[id_] = len(ids)
        t2i[id_] = img

    for path in args.ann:
        if src == 'coco':
            split = args.opt.get('image-split') or re.search(
                r'(train2014|val2014|test2015|train2017|val2017|test2017)', os.path.basename(path)).group(1)
            for a in load_json(path)['annotations']:
                add(str(a['id']), dict(a), a['caption'], f"coco_{split}_{a['image_id']:012}.npz")
        elif src == 'cc':
            split = args.opt.get('split') or ('train' if 'train' in os.path.basename(path).lower() else 'val')
            with open(path, encoding='utf-8') as f:
                for row, line in enumerate(f):
                    fields = line.rstrip('\n').rstrip('\r').split('\t')
                    if len(fields) == 2:
                        id_, cap, url = str(row), fields[0], fields[1]
                    else:
                        id_, url, cap, status = fields
                        if status == 'fail':
                            continue
                    if not tok(cap):
                        continue  # the converter rejects empty captions
                    add(id_, {'id': id_, 'caption': cap, 'url': url}, cap,
                        f'gcc_{split}_{int(id_):012}.npz')
        elif src == 'vg':
            for im in load_json(path):
                for r in im['regions']:
                    add(str(r['region_id']), dict(r), r['phrase'], f"vg_{r['image_id']:012}.npz")
        elif src == 'sbu':
            for e in load_json(path):
                id_ = str(int(e['iid']))
                add(id_, {'id': id_, 'sent': e['sent']}, e['sent'], f'sbu_{id_}.npz')
    return {'': (ex, {'id2len': lens}, t2i)}


TASKS = {'nlvr2': exp_nlvr2, 've': exp_ve, 'vqa': exp_vqa, 'itm': exp_itm,
         'refcoco': exp_refcoco, 'vcr': exp_vcr, 'captions': exp_captions}
IMG2TXTS = {'nlvr2', 've', 'vqa', 'itm', 'vcr', 'captions'}


def main():
    p = argparse.ArgumentParser()
    p.add_argument('task')
    p.add_argument('db')
    p.add_argument('--vocab', required=True)
    p.add_argument('--lower', action='store_true')
    p.add_argument('--ann', action='append', required=True)
    p.add_argument('--opt', action='append', default=[])
    args = p.parse_args()
    args.opt = dict(o.split('=', 1) for o in args.opt)
    toker = BertTokenizer(args.vocab, do_lower_case=args.lower)
    args.toker = toker
    args.sidecars = {}
    expected = TASKS[args.task](args, make_bert_tokenize(toker))

    errors = []
    total = 0
    for name, (ex, lens, t2i) in expected.items():
        db_dir = os.path.join(args.db, name) if name else args.db
        got = read_db(db_dir)
        total += len(got)
        if set(got) != set(ex):
            errors.append(f'{name}: keys differ: missing {sorted(set(ex) - set(got))[:5]}, '
                          f'extra {sorted(set(got) - set(ex))[:5]}')
        for k, v in ex.items():
            if k in got and normalize(got[k]) != normalize(v):
                errors.append(f'{name}[{k}]: got {got[k]!r}\n  want {normalize(v)!r}')
                if len(errors) > 5:
                    break
        for lname, want in lens.items():
            if load_json(f'{db_dir}/{lname}.json') != want:
                errors.append(f'{name}: {lname}.json differs')
        if load_json(f'{db_dir}/txt2img.json') != normalize(t2i):
            errors.append(f'{name}: txt2img.json differs')
        if args.task in IMG2TXTS:
            want = defaultdict(list)
            for k, f in t2i.items():
                for x in (f if isinstance(f, list) else [f]):
                    want[x].append(k)
            got_i2t = load_json(f'{db_dir}/img2txts.json')
            if {k: sorted(v) for k, v in got_i2t.items()} != {k: sorted(v) for k, v in want.items()}:
                errors.append(f'{name}: img2txts.json differs')
        meta = load_json(f'{db_dir}/meta.json')
        want_meta = {'UNK': toker.vocab['[UNK]'], 'CLS': toker.vocab['[CLS]'], 'SEP': toker.vocab['[SEP]'],
                     'MASK': toker.vocab['[MASK]'],
                     'v_range': [toker.convert_tokens_to_ids(['!'])[0], len(toker.vocab)]}
        for mk, mv in want_meta.items():
            if meta.get(mk) != mv:
                errors.append(f'{name}: meta.json {mk} = {meta.get(mk)!r}, want {mv!r}')
        name_want = os.path.basename(args.vocab).replace('-vocab.txt', '')
        for mk in ('bert', 'toker'):
            if meta.get(mk) != name_want:
                errors.append(f'{name}: meta.json {mk} = {meta.get(mk)!r}, want {name_want!r}')
        for sname, want in args.sidecars.get(name, {}).items():
            if load_json(f'{db_dir}/{sname}') != want:
                errors.append(f'{name}: {sname} differs')
    if errors:
        print('\n'.join(errors[:20]))
        sys.exit(1)
    print(f'OK {total}')


if __name__ == '__main__':
    main()
