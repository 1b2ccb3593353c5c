#!/usr/bin/env bash
# `make demo`: `uniter pipeline demo` — the whole job on a small default it
# generates itself (nothing from outside the clone, nothing downloaded):
# synthetic images drawn with OpenCV (one coloured shape each) and NLVR2-style
# statements true or false by their colours and shapes, a WordPiece vocab of
# their words, a narrow random BUTD detector (extract-tools make-caffemodel),
# a tiny UNITER config; then one flow graph converts the annotations and
# extracts the features concurrently, trains, infers and scores the dev split
# and writes report.html. Finally `uniter dump` looks into the dbs it made.
set -euo pipefail
BUILD="${1:-build}"
UNITER="$BUILD/tools/uniter"
OUT="${DEMO_OUT:-demo-out}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$OUT"
step "uniter pipeline demo --dir $OUT"
start=$(date +%s.%N)
"$UNITER" pipeline demo --dir "$OUT"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "raw images to report in %.1f s\n", e-s }'

step "uniter dump"
"$UNITER" dump "$OUT/out/txt_db/nlvr2_dev.db" --stats
key=$("$UNITER" dump "$OUT/out/txt_db/nlvr2_dev.db" | sed -n 1p)
"$UNITER" dump "$OUT/out/txt_db/nlvr2_dev.db" "$key" --vocab "$OUT/vocab-uncased.txt"
db=$(ls -d "$OUT"/out/img_db/nlvr2_dev/feat_*)
"$UNITER" dump "$db" --stats
step "done: report $(cd "$OUT/out" && pwd)/report.html"
