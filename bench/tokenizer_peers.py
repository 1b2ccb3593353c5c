#!/usr/bin/env python3
"""Peers for bench/tokenizer: MB/s of HF tokenizers (batch API, 1 thread),
flash-tokenizer (C++ LinMaxMatch, 1 thread) and pytorch-pretrained-bert 0.6.2
under UNITER's bert_tokenize, on the same lines file as the C++ side.

  tokenizer_peers.py --vocab VOCAB --lower 0|1 --input LINES [--seconds S] [--ppb-lines N]

Prints one JSON object: {"hf": MB/s, "flash": MB/s, "ppb": MB/s, ...}. Rates
use process CPU time (time.process_time), like the C++ single-thread
figures, so other load on a shared machine does not skew the ratio.
"""
import argparse
import json
import os
import time

os.environ["RAYON_NUM_THREADS"] = "1"        # HF's thread pool: one thread
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def rate(fn, nbytes, seconds):
    fn()  # warm up
    reps, t0 = 0, time.process_time()
    while True:
        fn()
        reps += 1
        dt = time.process_time() - t0
        if dt >= seconds and reps >= 2:
            return nbytes * reps / dt / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--lower", type=int, required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--ppb-lines", type=int, default=3000)
    a = ap.parse_args()
    raw = open(a.input, "rb").read().split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    lines = [r.decode("utf-8", errors="replace") for r in raw]
    nbytes = sum(len(r) for r in raw)
    out = {"lines": len(lines), "bytes": nbytes}

    from tokenizers import BertWordPieceTokenizer
    hf = BertWordPieceTokenizer(a.vocab, lowercase=bool(a.lower))
    out["hf"] = rate(lambda: hf.encode_batch(lines, add_special_tokens=False), nbytes, a.seconds)

    try:
        from flash_tokenizer import BertTokenizerFlash
        ft = BertTokenizerFlash(a.vocab, do_lower_case=bool(a.lower), model_max_length=1 << 20)
        core = ft.tokenizer
        # Its two single-thread APIs; the faster one counts.
        per_line = rate(lambda: [core.encode(l, "longest", 1 << 20) for l in lines], nbytes, a.seconds)
        batch = rate(lambda: core.batch_encode(lines, "longest", 1 << 20, False), nbytes, a.seconds)
        out["flash"] = max(per_line, batch)
        out["flash_api"] = "encode" if per_line >= batch else "batch_encode"
    except ImportError:
        out["flash"] = None

    import logging
    logging.disable(logging.WARNING)
    from pytorch_pretrained_bert import BertTokenizer
    ppb = BertTokenizer(a.vocab, do_lower_case=bool(a.lower))
    sub = lines[: a.ppb_lines]
    sub_bytes = sum(len(l.encode("utf-8", errors="replace")) for l in sub)

    def bert_tokenize_all():
        for text in sub:
            ids = []
            for word in text.strip().split():
                ws = ppb.tokenize(word)
                if ws:
                    ids.extend(ppb.convert_tokens_to_ids(ws))

    out["ppb"] = rate(bert_tokenize_all, sub_bytes, a.seconds)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
