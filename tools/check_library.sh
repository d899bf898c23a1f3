#!/usr/bin/env bash
# Checks the shipped library: no Swift runtime dependency, only hy_* exported (version node hy_abi_0),
# the SONAME, and that every exported function is declared in the header and exercised by a C test.
# usage: check_library.sh LIB HEADER CAPI_TEST_DIR
set -euo pipefail
lib=$1 header=$2 tests=$3
fail=0
# (here-strings, not pipes into grep -q: with pipefail, grep -q's early exit would fail the pipe)
deps=$(ldd "$lib")
if grep -qi swift <<< "$deps"; then echo "FAIL: $lib depends on the Swift runtime:"; grep -i swift <<< "$deps"; fail=1; fi
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
bad=$(echo "$exported" | grep -v -E '^(hy_[a-z0-9_]+|hy_abi_0)$' || true)
if [ -n "$bad" ]; then echo "FAIL: symbols other than hy_* exported:"; echo "$bad" | head -20; fail=1; fi
dynsyms=$(nm -D --defined-only "$lib")
if ! grep -q '@@hy_abi_0' <<< "$dynsyms"; then echo "FAIL: symbols lack the hy_abi_0 version node"; fail=1; fi
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libhunyuan.so.0" ] || { echo "FAIL: SONAME is '$soname', expected libhunyuan.so.0"; fail=1; }
funcs=$(echo "$exported" | grep -v '^hy_abi_0$')
for f in $funcs; do
  grep -q -E "\\b$f\\(" "$header" || { echo "FAIL: $f exported but not declared in $header"; fail=1; }
  grep -q -E "LOAD\\($f\\)" "$tests"/*.c || { echo "FAIL: $f is not exercised by a C test in $tests"; fail=1; }
done
declared=$(grep -o -E 'HY_API [^;]*\b(hy_[a-z0-9_]+)\(' "$header" | grep -o -E 'hy_[a-z0-9_]+\($' | tr -d '(' | sort -u)
for f in $declared; do
  grep -qx "$f" <<< "$funcs" || { echo "FAIL: $f declared in $header but not exported"; fail=1; }
done
n=$(echo "$funcs" | wc -l)
size=$(stat -c %s "$lib")
if [ $fail = 0 ]; then
  echo "check_library: $n functions exported (hy_* under hy_abi_0), SONAME $soname, no Swift runtime dependency, $((size / 1024 / 1024)) MB"
fi
exit $fail
