#!/usr/bin/env python3
"""Generates the README demo's small default data, so `make demo` needs nothing
from outside the clone:

  corpus.txt      N caption-like lines (English, with accents, CJK and emoji mixed in)
  vocab-uncased.txt  a WordPiece vocab trained on them by HF `tokenizers` (BERT layout:
                  [PAD] [unused..] [UNK] [CLS] [SEP] [MASK] first)
  nlvr2/{train,dev}.json  NLVR2-style JSON lines (identifier, sentence, label)
  npz/nlvr2_{train,dev}/  BUTD-style .npz feature files for the images the NLVR2 lines
                  name, one folder per UNITER img_db split

Deterministic for a given --seed.
"""
import argparse
import json
import os
import random

SUBJECTS = ["a dog", "two cats", "the man", "a woman", "three birds", "a child", "the chef",
            "a red car", "an old bus", "the café owner", "a cyclist", "two horses", "the pianist",
            "a pelican", "some penguins", "the astronaut", "a naïve robot", "a zebra"]
VERBS = ["is sitting on", "runs across", "looks at", "stands next to", "is holding", "jumps over",
         "is painting", "walks toward", "sleeps under", "is eating", "rides", "carries"]
OBJECTS = ["a wooden bench", "the snowy field", "a bowl of noodles", "the city street",
           "a blue umbrella", "the kitchen table", "an ice-cream cone", "the river bank",
           "a pile of books", "the 東京 skyline", "a crêpe stand", "the football pitch"]
TAILS = ["", ".", " at night.", " in the rain!", ", smiling.", " (photo taken in 2019).",
         " — what a day", " 🙂", " near the Zürich station.", "?"]


def sentence(rng):
    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"
    return s[0].upper() + s[1:] if rng.random() < 0.7 else s


def write_vocab(corpus_path, out_path, vocab_size):
    from tokenizers import BertWordPieceTokenizer
    tok = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    specials = ["[PAD]"] + [f"[unused{i}]" for i in range(10)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train([corpus_path], vocab_size=vocab_size, min_frequency=1, special_tokens=specials,
              limit_alphabet=1000, wordpieces_prefix="##")
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    with open(out_path, "w", encoding="utf-8") as f:
        for token, _ in vocab:
            f.write(token + "\n")
    return len(vocab)


def write_npz(path, rng, n_boxes):
    import numpy as np
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    feats = np.maximum(nrng.normal(0, 1, (n_boxes, 2048)), 0).astype(np.float16)
    x1 = nrng.uniform(0, 0.6, n_boxes)
    y1 = nrng.uniform(0, 0.6, n_boxes)
    w = nrng.uniform(0.05, 0.4, n_boxes)
    h = nrng.uniform(0.05, 0.4, n_boxes)
    norm_bb = np.stack([x1, y1, x1 + w, y1 + h, w, h], 1).astype(np.float16)
    conf = np.sort(nrng.uniform(0.05, 1.0, n_boxes))[::-1].astype(np.float16)
    logits = nrng.normal(0, 3, (n_boxes, 1601))
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft = (soft / soft.sum(1, keepdims=True)).astype(np.float16)
    np.savez_compressed(path, features=feats, norm_bb=norm_bb, conf=conf, soft_labels=soft)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output folder")
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--pairs", type=int, default=80, help="NLVR2-style examples per split")
    ap.add_argument("--vocab-size", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    corpus = os.path.join(args.out, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for _ in range(args.lines):
            f.write(sentence(rng) + "\n")
    n_vocab = write_vocab(corpus, os.path.join(args.out, "vocab-uncased.txt"), args.vocab_size)

    n_npz = 0
    for split in ("train", "dev"):
        npz_dir = os.path.join(args.out, "npz", f"nlvr2_{split}")
        os.makedirs(npz_dir, exist_ok=True)
        os.makedirs(os.path.join(args.out, "nlvr2"), exist_ok=True)
        with open(os.path.join(args.out, "nlvr2", f"{split}.json"), "w", encoding="utf-8") as f:
            for i in range(args.pairs):
                base = f"{split}-{i // 4}-{i % 4}"
                for k in range(2):
                    p = os.path.join(npz_dir, f"nlvr2_{base}-img{k}.npz")
                    if not os.path.exists(p):
                        write_npz(p, rng, rng.randint(10, 36))
                        n_npz += 1
                rec = {"identifier": f"{base}-{i % 3}", "sentence": sentence(rng),
                       "label": rng.choice(["True", "False"])}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"demo data in {args.out}: {args.lines} lines, vocab {n_vocab}, "
          f"{2 * args.pairs} NLVR2 examples, {n_npz} npz files")


if __name__ == "__main__":
    main()
