"""Checkpoint references for checkpoint_test.cc, written by Python torch.

write OUT_DIR TASK VARIANT: runs uniter_ref.py's heads() (io.pt: weights,
  batch, expected scores), then saves that state dict as torch does:
  zip.pt (zip format), legacy.pt (_use_new_zipfile_serialization=False),
  legacy_fp16_gamma.pt (fp16 tensors, LayerNorm keys as gamma/beta, legacy),
  pretrained.pt (the encoder alone, 2 type rows as uniter-base.pt, legacy),
  bert.pt (pytorch-pretrained-bert's BertForPreTraining state dict, legacy),
  misshaped.pt (nlvr2_output.weight transposed, zip).
check OUT_DIR TASK VARIANT FILE: torch.load(FILE), load_state_dict(strict=True)
  into the restatement of UNITER's model, prints the max |diff| of its scores
  against io.pt's expected scores; exits 1 if above 1e-5.
"""
import collections
import sys

import torch

import uniter_ref


def legacy(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def write_bert(enc, path):
    # pytorch-pretrained-bert's BertForPreTraining (the pytorch_model.bin
    # layout UNITER's pretraining starts from) holding the encoder's weights;
    # LayerNorm keys as gamma/beta, as the released bert-base-cased file has.
    try:
        from pytorch_pretrained_bert.modeling import BertConfig, BertForPreTraining
    except ImportError:
        return  # not in this venv (PyPI torch's): the test that needs bert.pt skips
    c = uniter_ref.SMALL
    bert_model = BertForPreTraining(BertConfig(
        c['vocab_size'], hidden_size=c['hidden_size'], num_hidden_layers=c['num_hidden_layers'],
        num_attention_heads=c['num_attention_heads'], intermediate_size=c['intermediate_size'],
        max_position_embeddings=c['max_position_embeddings'], type_vocab_size=2))
    own = {k.replace('uniter.', 'bert.', 1): v for k, v in enc.items() if not k.startswith('uniter.img_embeddings.')}
    missing, unexpected = bert_model.bert.load_state_dict(
        {k[len('bert.'):]: v for k, v in own.items()}, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    bert = collections.OrderedDict()
    for k, v in bert_model.state_dict().items():
        if 'LayerNorm' in k:
            k = k.replace('weight', 'gamma').replace('bias', 'beta')
        bert[k] = v
    legacy(bert, path)


def write(out_dir, task, variant):
    # model.state_dict() as UNITER's ModelSaver saves it: an OrderedDict
    # carrying _metadata (pickled with BUILD).
    sd = uniter_ref.heads(out_dir, task, variant).state_dict()
    assert hasattr(sd, '_metadata')
    torch.save(sd, f'{out_dir}/zip.pt')
    legacy(sd, f'{out_dir}/legacy.pt')
    old = collections.OrderedDict()
    for k, v in sd.items():
        if 'LayerNorm' in k or 'layer_norm' in k:
            k = k.replace('weight', 'gamma').replace('bias', 'beta')
        old[k] = v.half()
    legacy(old, f'{out_dir}/legacy_fp16_gamma.pt')
    enc = collections.OrderedDict((k, v) for k, v in sd.items() if k.startswith('uniter.'))
    enc['uniter.embeddings.token_type_embeddings.weight'] = sd['uniter.embeddings.token_type_embeddings.weight'][:2].clone()
    legacy(enc, f'{out_dir}/pretrained.pt')
    write_bert(enc, f'{out_dir}/bert.pt')
    bad = collections.OrderedDict(sd)
    bad['nlvr2_output.weight' if 'nlvr2_output.weight' in sd else 'vqa_output.3.weight'] = \
        sd['nlvr2_output.weight' if 'nlvr2_output.weight' in sd else 'vqa_output.3.weight'].t().contiguous()
    torch.save(bad, f'{out_dir}/misshaped.pt')


def check(out_dir, task, variant, path):
    io = torch.load(f'{out_dir}/io.pt')
    sd = torch.load(path)
    c = uniter_ref.Cfg(uniter_ref.SMALL)
    if task == 'nlvr2':
        model = {'paired': uniter_ref.Paired, 'triplet': uniter_ref.Triplet,
                 'paired-attn': uniter_ref.PairedAttn}[variant](c)
        model.init_type_embedding()
    else:
        model = uniter_ref.Vqa(c, io['out.scores'].size(1))
    model.load_state_dict(sd, strict=True)
    for k, v in sd.items():
        assert v.dtype == torch.float32, (k, v.dtype)
    batch = {k[len('batch.'):]: v for k, v in io.items() if k.startswith('batch.')}
    batch.setdefault('img_type_ids', None)
    model.eval()
    with torch.no_grad():
        diff = (model.scores(batch) - io['out.scores']).abs().max().item()
    print(f'torch {torch.__version__} keys {len(sd)} max_diff {diff:.3g}')
    sys.exit(0 if diff <= 1e-5 else 1)


if __name__ == '__main__':
    if sys.argv[1] == 'write':
        write(*sys.argv[2:5])
    else:
        check(*sys.argv[2:6])
