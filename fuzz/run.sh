#!/usr/bin/env bash
# fuzz/run.sh TARGET SECONDS [libFuzzer flags...]: runs fuzz target TARGET (api, idx, safetensors) for
# SECONDS seconds, starting from the committed seed corpus fuzz/corpus/TARGET and growing a working
# corpus in .build/fuzz/corpus/TARGET (not committed). Crash reproducers go to .build/fuzz/artifacts/.
# Builds the ASan library and the fuzzers first (make fuzz-build) unless FUZZ_NO_BUILD=1.
# Exit status: libFuzzer's (non-zero on a crash, a leak or a contract violation).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
shift 2
[ -f "fuzz/fuzz_$target.c" ] || { echo "no fuzz target '$target' (fuzz/fuzz_*.c)" >&2; exit 2; }
[ "${FUZZ_NO_BUILD:-0}" = 1 ] || make --no-print-directory fuzz-build >&2
work=.build/fuzz/corpus/$target
artifacts=.build/fuzz/artifacts/$target
mkdir -p "$work" "$artifacts"
toolchain=$(dirname "$(realpath "$(command -v "${SWIFT:-swift}")")")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$toolchain/llvm-symbolizer}
# Files the targets write go to a per-process folder under this TMPDIR, removed afterwards.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bndrop-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dict=()
[ -f "fuzz/$target.dict" ] && dict=(-dict="fuzz/$target.dict")
TMPDIR=$tmp .build/fuzz/fuzz_"$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 \
  -max_len=8192 -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$@" "$work" "fuzz/corpus/$target"
