#!/usr/bin/env python3
"""Writes small annotation files in the official schemas of the benchmarks
that ../shared/data lacks (VQA questions/annotations, Karpathy splits, RefCOCO
refs pickle, VCR lines, VG regions, SBU) plus bad-record NLVR2 lines.

  make_fixtures.py OUTDIR SHARED_DATA_DIR
"""
import json
import os
import pickle
import sys


def dump(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f)


def lines(path, objs):
    with open(path, 'w') as f:
        for o in objs:
            f.write((o if isinstance(o, str) else json.dumps(o)) + '\n')


def vqa(out):
    # v2_OpenEnded_mscoco_val2014_questions.json / v2_mscoco_val2014_annotations.json schemas.
    answers = [
        ['yes'] * 10,
        ['two', '2', '2', 'Two.', '2', 'two', '2 ', '3', 'three', '2'],
        ['the red one', 'red', 'Red', 'red!', 'red', 'dark red', 'a red', 'RED', 'red;', 'maroon'],
        ["it's raining", 'raining', 'rain', 'rainy', 'rain', 'rain', 'its raining', 'wet', 'rainy', 'rainy'],
        ['10:30', '10:30.', '1030', '10,30', 'ten thirty', '10:30', '10 30', 'morning', '10:30', '10:35'],
        ['dont know', "don't know", 'unknown', 'no idea', 'nothing', 'none', 'zero', '0', 'n/a', 'not sure'],
        ['tennis racket', 'racket', 'tennis racquet', 'racquet', 'racket', 'racket', 'tennis', 'bat',
         'racket', 'tennis racket'],
        ['3.5', '3.5', '3 1/2', '3.50', 'three and half', '3.5', '4', '3', '3.5', '3.5'],
    ]
    questions, anns = [], []
    for i, ans in enumerate(answers):
        qid = 262148000 + i
        image_id = 262148 + (i // 3)
        questions.append({'image_id': image_id, 'question': f'What is shown in picture {i}, really?',
                          'question_id': qid})
        anns.append({'question_type': 'what is', 'multiple_choice_answer': ans[0],
                     'answers': [{'answer': a, 'answer_confidence': 'yes', 'answer_id': j + 1}
                                 for j, a in enumerate(ans)],
                     'image_id': image_id, 'answer_type': 'other', 'question_id': qid})
    # A VG-style question with one answer (scored as 10 annotators).
    questions.append({'image_id': 1, 'question': 'Who?', 'question_id': 9})
    anns.append({'answers': [{'answer': 'Man'}], 'image_id': 1, 'question_id': 9,
                 'question_type': 'who', 'answer_type': 'other', 'multiple_choice_answer': 'man'})
    dump(f'{out}/v2_OpenEnded_mscoco_val2014_questions.json',
         {'info': {}, 'task_type': 'Open-Ended', 'data_type': 'mscoco', 'license': {},
          'data_subtype': 'val2014', 'questions': questions})
    dump(f'{out}/v2_mscoco_val2014_annotations.json',
         {'info': {}, 'license': {}, 'data_subtype': 'val2014', 'annotations': anns, 'data_type': 'mscoco'})
    # Visual Genome question_answers.json (v1.2 schema): images with their QA pairs.
    dump(f'{out}/vg_question_answers.json', [
        {'id': 1, 'qas': [
            {'a_objects': [], 'question': 'What color is the clock?', 'image_id': 1, 'qa_id': 986768,
             'answer': 'Green.', 'q_objects': []},
            {'a_objects': [], 'question': 'How many people are there?', 'image_id': 1, 'qa_id': 986769,
             'answer': 'Two.', 'q_objects': []}]},
        {'id': 2, 'qas': []},
        {'id': 107899, 'qas': [
            {'a_objects': [], 'question': 'Where is the man?', 'image_id': 107899, 'qa_id': 1,
             'answer': 'On the Beach', 'q_objects': []},
            {'a_objects': [], 'question': 'What is the man holding?', 'image_id': 107899, 'qa_id': 2,
             'answer': 'A surfboard', 'q_objects': []}]}])
    # Test split: questions only.
    dump(f'{out}/v2_OpenEnded_mscoco_test2015_questions.json', {'questions': questions[:3]})


def karpathy(out):
    def img(split, i, dataset):
        sents = [{'tokens': ['a', 'man', str(j)], 'raw': f'A man riding wave number {j}, in image {i}.',
                  'imgid': i, 'sentid': i * 5 + j} for j in range(5)]
        if dataset == 'coco':
            folder = 'train2014' if split == 'train' else 'val2014'
            cocoid = 391895 + i
            return {'filepath': folder, 'sentids': [s['sentid'] for s in sents],
                    'filename': f'COCO_{folder}_{cocoid:012}.jpg', 'imgid': i, 'split': split,
                    'sentences': sents, 'cocoid': cocoid}
        return {'sentids': [s['sentid'] for s in sents], 'imgid': i, 'sentences': sents, 'split': split,
                'filename': f'{1000092795 + i}.jpg'}
    splits = ['train', 'restval', 'val', 'test', 'train', 'val']
    dump(f'{out}/dataset_coco.json', {'images': [img(s, i, 'coco') for i, s in enumerate(splits)],
                                      'dataset': 'coco'})
    dump(f'{out}/dataset_flickr30k.json', {'images': [img(s, i, 'flickr') for i, s in enumerate(
        ['train', 'val', 'test'])], 'dataset': 'flickr30k'})


def refcoco(out, shared):
    inst = json.load(open(f'{shared}/coco-mini/annotations/instances_val2017.json'))
    by_image = {}
    for a in inst['annotations']:
        by_image.setdefault(a['image_id'], []).append(a['id'])
    image_ids = [im['id'] for im in inst['images'] if im['id'] in by_image][:6]
    refs, sent_id = [], 0
    for r, iid in enumerate(image_ids):
        for k, ann_id in enumerate(by_image[iid][:2]):
            sents = []
            for s in range(2):
                text = f'the {"left" if s else "right"} thing number {k} in image {r}'
                sents.append({'tokens': text.split(), 'raw': text.upper() + '!', 'sent_id': sent_id,
                              'sent': text})
                sent_id += 1
            refs.append({'image_id': iid, 'split': ['train', 'val', 'testA', 'testB'][r % 4],
                         'sentences': sents, 'file_name': f'COCO_train2014_{iid:012}_{ann_id}.jpg',
                         'category_id': 1, 'ann_id': ann_id,
                         'sent_ids': [s['sent_id'] for s in sents], 'ref_id': len(refs)})
    with open(f'{out}/refs(unc).p', 'wb') as f:
        pickle.dump(refs, f, protocol=2)
    dump(f'{out}/iid_to_ann_ids.json', {'iid_to_ann_ids': {str(i): by_image[i] for i in image_ids}})


def vcr(out):
    objects = ['person', 'person', 'car', 'traffic light', 'person']
    recs = []
    for i in range(4):
        recs.append({
            'movie': '1054_Harry_Potter', 'objects': objects,
            'interesting_scores': [0], 'answer_likelihood': 'likely',
            'img_fn': f'lsmdc_1054_Harry_Potter/1054_Harry_Potter_00.{i:02}.jpg',
            'metadata_fn': f'lsmdc_1054_Harry_Potter/1054_Harry_Potter_00.{i:02}.json',
            'answer_orig': 'x', 'question_orig': 'y', 'rationale_orig': 'z',
            'question': ['Why', 'is', [0], 'looking', 'at', [2, 3], '?'],
            'answer_match_iter': [3, 0, 1, 2], 'answer_sources': [1, 2, 3, 4],
            'answer_choices': [[[0], 'is', 'hungry', '.'], ['He', 'wants', 'the', [2], '.'],
                               [[1], 'and', [4], 'are', 'waiting', '.'], ['No', 'reason', '.']],
            'answer_label': i % 4,
            'rationale_choices': [['Because', [0], 'smiles', '.'], [[3], 'is', 'red', '.'],
                                  ['It', 'is', 'late', '.'], [[0, 1], 'talk', 'in', 'a', 'café', '.']],
            'rationale_label': (i + 1) % 4, 'rationale_sources': [1, 2, 3, 4],
            'rationale_match_iter': [0, 1, 2, 3], 'annot_id': f'val-{i}', 'img_id': f'val-{i}'})
    lines(f'{out}/val.jsonl', recs)
    test = [dict(r) for r in recs[:2]]
    for r in test:
        del r['answer_label'], r['rationale_label']
        r['annot_id'] = r['annot_id'].replace('val', 'test')
    lines(f'{out}/test.jsonl', test)


def vg_sbu(out):
    dump(f'{out}/region_descriptions.json', [
        {'regions': [{'region_id': 1382, 'width': 82, 'height': 139, 'image_id': 1,
                      'phrase': 'the clock is green in colour', 'y': 57, 'x': 421},
                     {'region_id': 1383, 'width': 182, 'height': 109, 'image_id': 1,
                      'phrase': 'shade is along the street ', 'y': 372, 'x': 194}], 'id': 1},
        {'regions': [{'region_id': 5000, 'width': 10, 'height': 10, 'image_id': 2,
                      'phrase': 'Man wearing a HAT', 'y': 0, 'x': 0}], 'id': 2}])
    dump(f'{out}/sbu.json', [{'iid': '0001', 'sent': 'Little girl and her dog in northern Thailand.'},
                             {'iid': 42, 'sent': 'A tree, on a hill; at sunset'}])


def nlvr2_bad(out):
    good = {'identifier': 'dev-1-0-0', 'sentence': 'There are two dogs.', 'label': 'True',
            'left_url': 'a', 'right_url': 'b'}
    lines(f'{out}/nlvr2_bad.json', [
        good,
        '{"identifier": "dev-1-1-0", "sentence": "truncated',
        {'identifier': 'dev-1-2-0', 'label': 'False'},
        {'identifier': 'dev-1-3-0', 'sentence': 'A cat.', 'label': 'maybe'},
        '',
        {'identifier': 'dev-1-4-1', 'sentence': 'No label: hidden test.'},
        {'identifier': 'dev-1-0-0', 'sentence': 'Duplicate key.', 'label': 'False'},
        {'identifier': 'dev-1-5-0', 'sentence': 'Last one.', 'label': 'False'},
        {'identifier': 'dev-' + 'x' * 600 + '-0', 'sentence': 'Key too long for LMDB.', 'label': 'True'},
    ])


def ve_extra(out):
    lines(f'{out}/ve_flickr30k_id.jsonl', [
        {'Flickr30K_ID': '1000092795.jpg', 'gold_label': 'neutral', 'pairID': '1000092795.jpg#0r1n',
         'sentence1': 'Two men.', 'sentence2': 'Two men are friends.'}])


def main():
    out, shared = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    vqa(out)
    karpathy(out)
    refcoco(out, shared)
    vcr(out)
    vg_sbu(out)
    nlvr2_bad(out)
    ve_extra(out)


if __name__ == '__main__':
    main()
