#!/usr/bin/env bash
# The dynamic symbol table of libbndrop.so must hold only bnd_* names, and exactly the functions that
# include/bndrop.h declares. Usage: check_exports.sh LIB HEADER
set -euo pipefail
lib=$1 header=$2
others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^bnd_' || true)
if [ -n "$others" ]; then
  echo "FAIL: $lib exports non-bnd_ symbols:"; echo "$others" | head -20; exit 1
fi
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
declared=$(grep -oE '\bbnd_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)
if [ "$exported" != "$declared" ]; then
  echo "FAIL: exported and declared functions differ (< exported, > declared):"
  diff <(echo "$exported") <(echo "$declared") || true
  exit 1
fi
echo "exports OK: $(echo "$exported" | wc -l) bnd_* functions, nothing else"
