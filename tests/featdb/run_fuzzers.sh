#!/usr/bin/env bash
# Builds featdb's libFuzzer targets with clang (-fsanitize=fuzzer,address) from
# the few sources they need and runs each for a bounded time. Used by ctest
# (test featdb_fuzz); by hand: tests/featdb/run_fuzzers.sh [seconds] [workdir].
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECONDS_EACH="${1:-20}"
WORK="${2:-$(mktemp -d)}"
PY="${UNITER_PYTHON:-$HOME/.cache/uniter/venv/bin/python}"
CXX="${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++ || true)}"
# Strict mode (CI=true or UNITER_STRICT=1): what cannot be checked fails.
strict() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ] || [ "${UNITER_STRICT:-}" = 1 ]; }
if [ -z "$CXX" ]; then
  msg="clang++ not found (apt-get install clang libclang-rt-14-dev)"
  strict && { echo "FAIL (strict mode, CI=true): $msg"; exit 1; }
  echo "SKIP: $msg"; exit 77
fi
mkdir -p "$WORK"
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$ROOT")
LIBS=(-lzip -llz4 -lzstd -lz)
if pkg-config --exists libdeflate 2>/dev/null; then  # the same npz inflate path as the library build
  FLAGS+=(-DUNITER_HAVE_LIBDEFLATE)
  LIBS+=(-ldeflate)
fi
SRCS=(common/error.cc featdb/array.cc featdb/npy.cc featdb/internal/zip_reader.cc featdb/value.cc featdb/msgpack_numpy.cc featdb/native_codec.cc)
# Library objects once, without the fuzzer main.
OBJS=()
for s in "${SRCS[@]}"; do
  o="$WORK/$(basename "$s" .cc).o"
  "$CXX" "${FLAGS[@]/-fsanitize=fuzzer,address,undefined/-fsanitize=fuzzer-no-link,address,undefined}" -c "$ROOT/$s" -o "$o"
  OBJS+=("$o")
done

# Seeds: valid inputs of each format, so mutation starts from the real structure.
mkdir -p "$WORK/seed_npz" "$WORK/seed_msgpack" "$WORK/seed_native"
if ! "$PY" -c "import numpy, msgpack, msgpack_numpy, lz4.frame" 2>/dev/null; then
  msg="$PY lacks numpy/msgpack/msgpack_numpy/lz4: fuzzing without the seed corpus"
  strict && { echo "FAIL (strict mode, CI=true): $msg"; exit 1; }
  echo "WARNING: $msg"
else
  "$PY" - "$WORK" "$ROOT/tests/featdb" <<'PYEOF'
import io, sys, numpy as np, msgpack, msgpack_numpy, lz4.frame
w = sys.argv[1]
r = np.random.RandomState(0)
d = dict(features=r.rand(3, 8).astype(np.float16), norm_bb=r.rand(3, 6).astype(np.float16),
         conf=r.rand(3).astype(np.float32), ids=np.arange(4))
for i, comp in enumerate((np.savez, np.savez_compressed)):
    b = io.BytesIO(); comp(b, **d); open(f"{w}/seed_npz/{i}.npz", "wb").write(b.getvalue())
b = io.BytesIO(); np.save(b, d["features"]); open(f"{w}/seed_npz/x.npy", "wb").write(b.getvalue())
# zip64 records/extra fields and data descriptors (tests/featdb/npz_zip_ref.py builds them).
sys.path.insert(0, sys.argv[2]); import npz_zip_ref as ref
s = ref.Unseekable(); np.savez_compressed(s, **d); open(f"{w}/seed_npz/streamed.npz", "wb").write(bytes(s.buf))
npys = []
for k in ("features", "ids"):
    b = io.BytesIO(); np.save(b, d[k]); npys.append((k.encode() + b".npy", b.getvalue()))
open(f"{w}/seed_npz/zip64.npz", "wb").write(ref.zip64_everywhere(npys))
open(f"{w}/seed_msgpack/img", "wb").write(msgpack.dumps(d, default=msgpack_numpy.encode, use_bin_type=True))
open(f"{w}/seed_msgpack/txt", "wb").write(msgpack.dumps({"input_ids": [1, 2, 300, -4], "t": {"a": [1.5, None, True]},
                                                          "s": "x", "b": b"\x00"}, use_bin_type=True))
open(f"{w}/seed_msgpack/lz4", "wb").write(lz4.frame.compress(b"hello" * 40))
PYEOF
fi
status=0
for t in npz msgpack native; do
  "$CXX" "${FLAGS[@]}" "$ROOT/tests/featdb/fuzz/${t}_fuzzer.cc" "${OBJS[@]}" "${LIBS[@]}" -o "$WORK/${t}_fuzzer"
done
# A native seed: the binary encodes the npz seed arrays (helper mode of the npz fuzzer is not needed;
# the native fuzzer wraps raw bytes in a valid envelope itself).
cp "$WORK"/seed_npz/* "$WORK/seed_native/" 2>/dev/null || true
for t in npz msgpack native; do
  mkdir -p "$WORK/corpus_$t"
  echo "== fuzzing $t for ${SECONDS_EACH}s"
  if ! "$WORK/${t}_fuzzer" -artifact_prefix="$WORK/$t-" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
       "$WORK/corpus_$t" "$WORK/seed_$t" > "$WORK/$t.log" 2>&1; then
    echo "FAIL: $t fuzzer found a crash:"; tail -40 "$WORK/$t.log"; status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$WORK/$t.log" | tail -2
  fi
done
exit $status
