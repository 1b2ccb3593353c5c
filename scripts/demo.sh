#!/usr/bin/env bash
# `make demo`: the main job on a small default the demo generates itself
# (nothing from outside the clone): a caption corpus, a WordPiece vocab trained
# on it, NLVR2-style annotations and BUTD-style .npz features; then
#   1. uniter tokenize        corpus -> ids (throughput shown)
#   2. uniter convert nlvr2   annotations -> txt_db
#   3. uniter featdb pack     .npz dir -> img_db
#   4. uniter dump            inspect both databases
set -euo pipefail
BUILD="${1:-build}"
UNITER="$BUILD/tools/uniter"
OUT="${DEMO_OUT:-demo-out}"
PY="${UNITER_VENV:-$HOME/.cache/uniter/venv}/bin/python"

has() { "$UNITER" --help 2>/dev/null | grep -qE "^  $1( |$)"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$OUT"
step "generating demo data in $OUT/data"
"$PY" scripts/demo_data.py "$OUT/data" 2>/dev/null | tail -1
VOCAB="$OUT/data/vocab-uncased.txt"

step "uniter tokenize: $(wc -l <"$OUT/data/corpus.txt") lines"
head -3 "$OUT/data/corpus.txt" | "$UNITER" tokenize --vocab "$VOCAB" --output jsonl
start=$(date +%s.%N)
"$UNITER" tokenize --vocab "$VOCAB" --output ids "$OUT/data/corpus.txt" > "$OUT/corpus.ids"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v b="$(stat -c %s "$OUT/data/corpus.txt")" \
  'BEGIN { printf "tokenized %.1f MB in %.2f s (%.1f MB/s, all cores)\n", b/1e6, e-s, b/1e6/(e-s) }'

if has convert; then
  step "uniter convert nlvr2 -> $OUT/txt_db"
  for split in train dev; do
    "$UNITER" convert nlvr2 --ann "$OUT/data/nlvr2/$split.json" --vocab "$VOCAB" \
      --output "$OUT/txt_db/nlvr2_$split.db"
  done
fi

if has featdb; then
  step "uniter featdb pack -> $OUT/img_db"
  for split in train dev; do
    "$UNITER" featdb pack "$OUT/data/npz/nlvr2_$split" "$OUT/img_db" --conf-th 0.2 --max-bb 100 --min-bb 10
  done
fi

if has dump; then
  step "uniter dump"
  if [ -d "$OUT/txt_db/nlvr2_dev.db" ]; then
    "$UNITER" dump "$OUT/txt_db/nlvr2_dev.db" --stats
    key=$("$UNITER" dump "$OUT/txt_db/nlvr2_dev.db" | sed -n 1p)
    "$UNITER" dump "$OUT/txt_db/nlvr2_dev.db" "$key" --vocab "$VOCAB"
  fi
  db="$OUT/img_db/nlvr2_dev/feat_th0.2_max100_min10"
  if [ -d "$db" ]; then
    "$UNITER" dump "$db" --stats
    "$UNITER" dump "$db" "$("$UNITER" dump "$db" | sed -n 1p)" | sed -n 1,12p
  fi
fi
step "done: outputs in $OUT/"
