#!/usr/bin/env bash
# The kernels (Sources/BNDropKernels) built once per instruction set and compared bit for bit.
#
# usage: isa_check.sh CC OUTDIR EMULATED_AVX512_CFLAGS
#
# The library compiles each kernel for AVX-512, AVX2+FMA and the x86-64 baseline (target_clones) and
# the loader picks one; a machine runs only one of them, so the test suite on this machine would never
# run the others. Here the kernels are compiled four times with CC (the compiler SwiftPM uses, clang):
# as the library compiles them (clones) and once for each instruction set alone (-DBNDK_NO_CLONES
# -march=...). Each build runs Tests/kernels/isa_check.c, which checks every result against a scalar
# computation and prints a hash of each call's output (every NaN hashed alike: see isa_check.c). Every
# build this CPU can run must print the same hashes; the convolution's lines are compared among the builds with fused multiply-adds only (AVX2,
# AVX-512, clones here), as bndrop_kernels.h documents. Builds this CPU cannot run are reported as
# skipped (exit status 77 of the program); the baseline and AVX2 builds run on every x86-64 machine
# this project supports, and avx512_emulated on every one with AVX2.
set -euo pipefail
cc=${1:?usage: isa_check.sh CC OUTDIR EMULATED_AVX512_CFLAGS}
out=${2:?usage: isa_check.sh CC OUTDIR EMULATED_AVX512_CFLAGS}
emulated_flags=${3:?usage: isa_check.sh CC OUTDIR EMULATED_AVX512_CFLAGS (from the Makefile)}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"

if [ "$(uname -m)" != x86_64 ]; then
    echo "isa_check: not an x86-64 machine; the kernels have one build here, which make test runs"
    exit 0
fi

# avx512_emulated: linear.c's hand-written AVX-512 kernels and the convolution's AVX-512 blocking, on
# this CPU's AVX2 with the AVX-512 intrinsics emulated (SIMDe, Debian's libsimde-dev, and the few it
# lacks: emulated_avx512/emulated_avx512.h). It runs on every CPU with AVX2, so the code users with
# AVX-512 get is checked here too when this CPU has none (the avx512 build is then skipped). Its flags
# are the Makefile's EMULATED_AVX512_CFLAGS, which make test-avx512-emulated builds the whole library with.
builds=(clones baseline avx2 avx512 avx512_emulated)
declare -A flags=(
    [clones]=""
    [baseline]="-DBNDK_NO_CLONES -march=x86-64"
    [avx2]="-DBNDK_NO_CLONES -march=x86-64-v3"
    [avx512]="-DBNDK_NO_CLONES -march=x86-64-v4"
    [avx512_emulated]="$emulated_flags"
)
if ! echo '#include <simde/x86/avx512.h>' | "$cc" -E -x c - > /dev/null 2>&1; then
    echo "isa_check: SIMDe's headers are missing (Debian's libsimde-dev; make deps installs it)" >&2
    exit 1
fi
ran=()
for b in "${builds[@]}"; do
    # shellcheck disable=SC2086
    "$cc" -std=gnu11 -O2 -Wall -Wextra -Werror ${flags[$b]} -I"$root/Sources/BNDropKernels/include" \
        -o "$out/isa_check_$b" "$here/isa_check.c" "$root"/Sources/BNDropKernels/*.c -lm
    status=0
    "$out/isa_check_$b" > "$out/$b.txt" || status=$?
    case $status in
        0) ran+=("$b"); echo "isa_check: $b build: $(grep -vc '^#' "$out/$b.txt") kernel calls checked ($(head -1 "$out/$b.txt" | sed 's/^# //'))" ;;
        77) echo "isa_check: $b build skipped: $(cat "$out/$b.txt")" ;;
        *) echo "isa_check: $b build failed its checks (status $status)"; exit 1 ;;
    esac
done

# Compare every build that ran with the first one (clones, which always runs).
reference=${ran[0]}
failed=0
for b in "${ran[@]:1}"; do
    if [ "$b" = baseline ]; then
        filter='^(#|conv/|conv_pooled/)'   # the baseline has no FMA: its convolution rounds each multiply
    else
        filter='^#'
    fi
    if ! diff <(grep -Ev "$filter" "$out/$reference.txt") <(grep -Ev "$filter" "$out/$b.txt") > "$out/$b.diff"; then
        echo "isa_check: the $b build's results differ from the $reference build's:"
        cat "$out/$b.diff"
        failed=1
    else
        echo "isa_check: $b build: the same bits as the $reference build"
    fi
done
exit $failed
