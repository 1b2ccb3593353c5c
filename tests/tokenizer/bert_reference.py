#!/usr/bin/env python3
"""Reference ids for the tokenizer tests, from the packages UNITER used.

  bert_reference.py --impl ppb|hf --vocab VOCAB.txt --lower 0|1 --input LINES --output IDS
                    [--save-json TOKENIZER.json]

LINES is read as bytes and cut at b"\\n" only (str.splitlines would also cut
at \\x1c, \\x85, U+2028...); each line is decoded with errors="replace", the
documented treatment of invalid UTF-8. IDS gets one line per input line:
space-separated ids.

ppb: UNITER's prepro bert_tokenize() over pytorch-pretrained-bert 0.6.2's
     BertTokenizer (what UNITER pins).
hf:  HF tokenizers' BertWordPieceTokenizer (BertNormalizer + BertPreTokenizer
     + WordPiece) on the whole line, no special tokens; --save-json writes its
     tokenizer.json.
"""
import argparse
import os
import sys


def bert_tokenize(tokenizer, text):
    # ChenRocks/UNITER prepro/*.py
    ids = []
    for word in text.strip().split():
        ws = tokenizer.tokenize(word)
        if not ws:
            continue
        ids.extend(tokenizer.convert_tokens_to_ids(ws))
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=["ppb", "hf"], required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--lower", type=int, required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--save-json")
    a = ap.parse_args()

    data = open(a.input, "rb").read()
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    lines = [r.decode("utf-8", errors="replace") for r in raw]

    out = []
    if a.impl == "ppb":
        import logging
        logging.disable(logging.WARNING)  # "sequence length is longer than" noise
        from pytorch_pretrained_bert import BertTokenizer
        tok = BertTokenizer(a.vocab, do_lower_case=bool(a.lower))
        for line in lines:
            out.append(" ".join(map(str, bert_tokenize(tok, line))))
    else:
        os.environ.setdefault("RAYON_NUM_THREADS", "1")
        from tokenizers import BertWordPieceTokenizer
        tok = BertWordPieceTokenizer(a.vocab, lowercase=bool(a.lower), clean_text=True,
                                     handle_chinese_chars=True, strip_accents=None)
        if a.save_json:
            tok.save(a.save_json)
        for enc in tok.encode_batch(lines, add_special_tokens=False):
            out.append(" ".join(map(str, enc.ids)))
    with open(a.output, "w") as f:
        for o in out:
            f.write(o + "\n")


if __name__ == "__main__":
    sys.exit(main())
