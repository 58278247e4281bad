#!/usr/bin/env bash
# make install-test: what a user of an installed bndrop gets, checked in a temporary staging root.
#   1. `make install DESTDIR=<tmp> PREFIX=/usr/local`: the versioned file, its two links, the header and
#      bndrop.pc; the library's soname is libbndrop.so.<major of the header>, and it needs no Swift
#      runtime library (NEEDED, RUNPATH).
#   2. install_prog.c built with `gcc prog.c $(pkg-config --cflags --libs bndrop)` (pkg-config sees only
#      the staged bndrop.pc, its paths moved under the staging root by PKG_CONFIG_SYSROOT_DIR).
#   3. ldd of the program in a clean environment (`env -i`, LD_LIBRARY_PATH = the staged lib folder;
#      OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE pass through when set, as a machine may need them):
#      libbndrop.so.0 from the staging root, nothing from the toolchain's runtime folder.
#   4. The program run the same way, in a mount namespace where that runtime folder is an empty
#      tmpfs (when the system allows one: root, or unprivileged user namespaces); it prints its losses.
#   5. `make uninstall` with the same variables leaves no file in the staging root.
# Usage: install_test.sh MAKE SWIFT VERSION   (the Makefile passes $(MAKE), $(SWIFT), $(VERSION))
set -euo pipefail
make_cmd=$1 swift=$2 version=$3
major=${version%%.*}
here=$(cd "$(dirname "$0")" && pwd)
prefix=/usr/local
work=$(mktemp -d "${TMPDIR:-/tmp}/bndrop-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
lib=$stage$prefix/lib
fail() { echo "install-test FAIL: $*" >&2; exit 1; }
# The toolchain's runtime folder (<toolchain>/usr/lib/swift, holding linux/libswiftCore.so).
runtime=$(dirname "$(dirname "$(readlink -f "$(command -v "$swift")")")")/lib/swift
[ -e "$runtime/linux/libswiftCore.so" ] || fail "no Swift runtime at $runtime (from $swift)"

echo "== make install DESTDIR=$stage PREFIX=$prefix"
$make_cmd --no-print-directory install DESTDIR="$stage" PREFIX="$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "make install failed"; }
(cd "$stage" && find . ! -type d | sort | while read -r f; do
  if [ -L "$f" ]; then echo "  ${f#.} -> $(readlink "$f")"; else echo "  ${f#.} ($(stat -c %s "$f") bytes)"; fi
done)
real=$lib/libbndrop.so.$version
[ -f "$real" ] && [ ! -L "$real" ] || fail "$real is not a file"
[ "$(readlink "$lib/libbndrop.so.$major")" = "libbndrop.so.$version" ] || fail "libbndrop.so.$major does not link to libbndrop.so.$version"
[ "$(readlink "$lib/libbndrop.so")" = "libbndrop.so.$major" ] || fail "libbndrop.so does not link to libbndrop.so.$major"
cmp -s include/bndrop.h "$stage$prefix/include/bndrop.h" || fail "the installed header differs from include/bndrop.h"

dynamic=$(readelf -d "$real")
soname=$(sed -n 's/.*Library soname: \[\(.*\)\]/\1/p' <<<"$dynamic")
[ "$soname" = "libbndrop.so.$major" ] || fail "soname is '$soname', expected libbndrop.so.$major (BND_VERSION_MAJOR; Package.swift's -soname)"
needed=$(sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' <<<"$dynamic" | tr '\n' ' ')
runpath=$(sed -n 's/.*Library \(runpath\|rpath\): \[\(.*\)\]/\2/p' <<<"$dynamic")
echo "soname $soname; needs: $needed; runpath: ${runpath:-none}"
! grep -q 'swift\|dispatch\|BlocksRuntime\|Foundation' <<<"$needed" || fail "the library needs Swift runtime libraries: $needed"
case "$runpath" in *"$runtime"*) fail "the library's runpath points into the toolchain: $runpath" ;; esac

echo "== gcc install_prog.c \$(pkg-config --cflags --libs bndrop)"
export PKG_CONFIG_LIBDIR=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
unset PKG_CONFIG_PATH
[ "$(pkg-config --modversion bndrop)" = "$version" ] || fail "pkg-config --modversion is not $version"
flags=$(pkg-config --cflags --libs bndrop)
echo "  pkg-config: $flags"
[[ "$flags" == *"-I$stage$prefix/include"* && "$flags" == *"-L$lib"* ]] || fail "pkg-config flags do not point into the staging root"
gcc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -o "$work/prog" "$here/install_prog.c" $flags
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

clean_env=(env -i LD_LIBRARY_PATH="$lib")
for name in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [ -n "${!name+set}" ]; then clean_env+=("$name=${!name}"); echo "(passing $name=${!name} through env -i)"; fi
done
echo "== env -i LD_LIBRARY_PATH=$lib ldd prog"
ldd_out=$("${clean_env[@]}" ldd "$work/prog")
sed 's/^\s*/  /' <<<"$ldd_out"
grep -q "libbndrop.so.$major => $lib/libbndrop.so.$major " <<<"$ldd_out" || fail "ldd does not resolve libbndrop.so.$major in the staging root"
! grep -q "not found" <<<"$ldd_out" || fail "ldd: a library is not found"
! grep -q "$runtime\|libswift" <<<"$ldd_out" || fail "ldd: something comes from the Swift toolchain ($runtime)"

# The program in a mount namespace where the runtime folder is an empty tmpfs (checked inside).
hidden='mount -t tmpfs bndrop-install-test "$1" && [ ! -e "$1/linux/libswiftCore.so" ] || exit 97; shift; exec "$@"'
if [ "$(id -u)" = 0 ]; then namespace=(unshare --mount); else namespace=(unshare --map-root-user --mount); fi
if "${namespace[@]}" sh -c "$hidden" sh "$runtime" true 2>/dev/null; then
  echo "== env -i LD_LIBRARY_PATH=$lib prog, with $runtime hidden (empty tmpfs)"
  run=("${namespace[@]}" sh -c "$hidden" sh "$runtime" "${clean_env[@]}" "$work/prog")
else
  echo "== env -i LD_LIBRARY_PATH=$lib prog (no mount namespace here: $runtime stays visible; ldd above shows it is not used)"
  run=("${clean_env[@]}" "$work/prog")
fi
output=$("${run[@]}") || { echo "$output"; fail "the program failed"; }
sed 's/^/  /' <<<"$output"
grep -q "^trained .* loss" <<<"$output" && grep -q "^BLAS: OpenBLAS" <<<"$output" || fail "the program printed no loss or no OpenBLAS"

echo "== make uninstall DESTDIR=$stage PREFIX=$prefix"
$make_cmd --no-print-directory uninstall DESTDIR="$stage" PREFIX="$prefix" >"$work/uninstall.log" 2>&1 ||
  { cat "$work/uninstall.log"; fail "make uninstall failed"; }
left=$(cd "$stage" && find . ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install-test OK: installed, built with pkg-config, ran without the toolchain, uninstalled (no file left)"
