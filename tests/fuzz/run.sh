#!/usr/bin/env bash
# Fuzz one reader of untrusted files with libFuzzer (clang), AddressSanitizer and UBSan.
#   bash tests/fuzz/run.sh NAME SECONDS        NAME: image safetensors config tokenizer regex data jinja
#   bash tests/fuzz/run.sh all SECONDS         each target in turn (CI: 20 s each)
# Seeds: tests/fuzz/corpus/NAME (committed); regressions: tests/fuzz/regressions/NAME (every
# crash found, committed, replayed first). New inputs collect in build/fuzz/corpus/NAME; a
# crash is written to build/fuzz/crashes/ and the script fails: copy it into regressions/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:?usage: run.sh NAME SECONDS}
seconds=${2:?usage: run.sh NAME SECONDS}
out="$root/build/fuzz"
bin="$out/vila_fuzz"
mkdir -p "$out/crashes"
# rebuild when a header or the harness is newer than the binary
if [ ! -x "$bin" ] || [ -n "$(find "$root/include" "$root/tests/fuzz/fuzz.cpp" -newer "$bin" -name '*.[ch]pp' | head -1)" ]; then
  echo "building $bin"
  ${FUZZ_CXX:-clang++} -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$root/include" -isystem /usr/include/eigen3 \
    "$root/tests/fuzz/fuzz.cpp" -o "$bin" -ljpeg -lpng -lgif
fi
targets=("$name")
[ "$name" = all ] && targets=(image safetensors config tokenizer regex data jinja)
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "$root/tests/fuzz/regressions/$t"
  echo "=== fuzz $t for $seconds s"
  # -timeout: one input may take at most 10 s; -rss_limit_mb: the issue's "well under 2 GB"
  log="$out/$t.log"
  rc=0
  VILA_FUZZ=$t "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$out/crashes/$t-" -print_final_stats=1 \
    "$out/corpus/$t" "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t" > "$log" 2>&1 || rc=$?
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|stat::(number_of_executed_units|peak_rss_mb)|ERROR|SUMMARY|Test unit written" "$log" || true
  [ "$rc" -eq 0 ] || { tail -40 "$log"; echo "fuzz $t failed (rc $rc): see $log and $out/crashes/"; exit 1; }
done
