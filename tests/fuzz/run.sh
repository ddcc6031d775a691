#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/fuzz/run.sh [SECONDS] — build the qcow2 fuzz target with clang and
# libFuzzer (ASan + UBSan), replay tests/fuzz/regressions/*, then fuzz for
# SECONDS (default 60) from a seed corpus of small images made with
# qemu-img: v2 and v3, several cluster sizes, refcount widths, a backing
# file, compressed clusters, internal snapshots, zero clusters, lazy
# refcounts, a dirty image, extended L2.
#
# Exit: 0 nothing found, 1 a finding (its input is copied into
# tests/fuzz/regressions/ and named in the output), 77 clang, libFuzzer or
# qemu-img missing.  Set GVM_FUZZ_KEEP=1 to keep the work directory.
set -u

secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2;; esac

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
regress=$here/regressions

skip() { echo "SKIP: $*" >&2; exit 77; }
command -v clang >/dev/null 2>&1 || skip "clang is not installed"
command -v qemu-img >/dev/null 2>&1 || skip "qemu-img is not installed"
command -v qemu-io >/dev/null 2>&1 || skip "qemu-io is not installed"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config is not installed"

work=$(mktemp -d /tmp/gvm-fuzz.XXXXXX)
cleanup() { [ "${GVM_FUZZ_KEEP:-0}" = 1 ] && echo "# work dir kept: $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT

# libFuzzer's runtime ships in libclang-rt-NN-dev: check it links.
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    >"$work/probe.c"
clang -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" >/dev/null 2>&1 ||
    skip "clang cannot link -fsanitize=fuzzer (install libclang-rt-dev)"

# ---- build -------------------------------------------------------------------
# The engine's sources, compiled directly: the fuzzer needs its own
# instrumentation, so it cannot link the meson-built library.
# (qcow2*.c by pattern, so a new file of the engine needs no change here)
srcfiles=""
for s in image image-lock raw error path text store log; do srcfiles="$srcfiles $src/gvmd/$s.c"; done
for s in "$src"/gvmd/qcow2*.c; do srcfiles="$srcfiles $s"; done
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -1)

echo "# building the fuzz target" >&2
# shellcheck disable=SC2046,SC2086
if ! clang -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
        -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DGVMD_VERSION="\"${version:-fuzz}\"" \
        -Wall -Wno-unused-parameter \
        -I"$src/proto" -I"$src/gvmd" $(pkg-config --cflags jansson zlib) \
        "$here/fuzz-qcow2.c" $srcfiles \
        $(pkg-config --libs jansson zlib) -lpthread -lm \
        -o "$work/fuzz-qcow2" 2>"$work/build.log"; then
    cat "$work/build.log" >&2
    echo "FAIL: the fuzz target does not build" >&2
    exit 1
fi

# Our own settings, not the test harness's: a malloc over -rss_limit_mb is a
# finding (libFuzzer's malloc limit), smaller failed ones return NULL.
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# leaks in the engine are findings: no suppressions from the test suite
unset LSAN_OPTIONS

# ---- replay the regressions ----------------------------------------------------
rc=0
replay=()
if [ -d "$regress" ]; then
    for f in "$regress"/*; do
        [ -f "$f" ] || continue
        case $(basename "$f") in README*) continue;; esac
        replay+=("$f")
    done
fi
if [ ${#replay[@]} -gt 0 ]; then
    echo "# replaying ${#replay[@]} regression input(s)" >&2
    if ! "$work/fuzz-qcow2" -rss_limit_mb=2048 -timeout=60 "${replay[@]}" \
            >"$work/replay.log" 2>&1; then
        tail -60 "$work/replay.log" >&2
        echo "FAIL: a regression input crashes the qcow2 reader again" >&2
        rc=1
    fi
fi

# ---- seed corpus ------------------------------------------------------------------
seeds=$work/seeds
mkdir -p "$seeds" "$work/corpus" "$work/artifacts"
n=0
mk() { # NAME SIZE [qemu-img create options...]  (image is $seeds/NAME)
    name=$1 size=$2; shift 2
    if qemu-img create -q -f qcow2 "$@" "$seeds/$name" "$size" >/dev/null 2>&1; then
        n=$((n+1))
    else
        echo "# seed $name: qemu-img create $* failed, skipped" >&2
        rm -f "$seeds/$name"
    fi
}
io() { qemu-io -f qcow2 "$@" >/dev/null 2>&1 || echo "# qemu-io $* failed" >&2; }

mk v3-empty 1M
mk v2-empty 1M -o compat=0.10
mk v3-c512 256K -o cluster_size=512
io -c 'write -P 0x11 0 4k' -c 'write -z 8k 4k' "$seeds/v3-c512"
mk v3-c4k 1M -o cluster_size=4096,refcount_bits=1
io -c 'write -P 0x22 4k 12k' -c 'write -P 0x23 512k 4k' "$seeds/v3-c4k"
mk v3-c64k-rc64 4M -o refcount_bits=64
io -c 'write -P 0x33 0 64k' -c 'write -z 128k 64k' -c 'discard 0 64k' "$seeds/v3-c64k-rc64"
mk v2-data 1M -o compat=0.10,cluster_size=4096
io -c 'write -P 0x44 0 8k' -c 'write -z 16k 4k' "$seeds/v2-data"
mk v3-lazy 1M -o lazy_refcounts=on,cluster_size=4096
io -c 'write -P 0x55 0 4k' "$seeds/v3-lazy"
mk v3-extl2 1M -o extended_l2=on,cluster_size=16384
io -c 'write -P 0x66 0 2k' -c 'write -z 4k 2k' "$seeds/v3-extl2"
# backing file (the fuzz store answers every path with the same bytes)
mk base 1M -o cluster_size=4096
io -c 'write -P 0x77 0 16k' "$seeds/base"
mk overlay 1M -o cluster_size=4096 -b base -F qcow2
io -c 'write -P 0x78 4k 4k' "$seeds/overlay"
# internal snapshots
mk snaps 1M -o cluster_size=4096
io -c 'write -P 0x88 0 8k' "$seeds/snaps"
qemu-img snapshot -c s1 "$seeds/snaps" >/dev/null 2>&1
io -c 'write -P 0x89 0 4k' "$seeds/snaps"
qemu-img snapshot -c s2 "$seeds/snaps" >/dev/null 2>&1
# compressed clusters
mk raw-src 256K -o cluster_size=4096
io -c 'write -P 0x99 0 64k' "$seeds/raw-src"
if qemu-img convert -c -O qcow2 -o cluster_size=4096 "$seeds/raw-src" "$seeds/compressed" >/dev/null 2>&1; then
    n=$((n+1)); fi
rm -f "$seeds/raw-src"
# a dirty image (lazy refcounts, killed mid-write is what sets it)
if cp "$seeds/v3-lazy" "$seeds/dirty" 2>/dev/null; then
    printf '\x01' | dd of="$seeds/dirty" bs=1 seek=79 conv=notrunc status=none
    n=$((n+1)); fi
# keep only what fits in -max_len
for f in "$seeds"/*; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le 1048576 ] || truncate -s 1048576 "$f"
done
echo "# $n seed images" >&2
[ "$n" -gt 0 ] || { echo "FAIL: no seed image could be made" >&2; exit 1; }

# ---- fuzz ----------------------------------------------------------------------------
echo "# fuzzing for $secs s" >&2
"$work/fuzz-qcow2" -max_len=1048576 -max_total_time="$secs" -timeout=60 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" \
    "$work/corpus" "$seeds" >"$work/fuzz.log" 2>&1
frc=$?
grep -E '^(stat::|Done|#[0-9]+ +DONE)' "$work/fuzz.log" >&2

found=0
for a in "$work"/artifacts/*; do
    [ -f "$a" ] || continue
    case $(basename "$a") in
    slow-unit-*)
        # Slow is not broken, and how slow depends on the machine's load:
        # report it, do not fail on it (a hang still fails as timeout-*).
        echo "# slow input (over 10 s, not a failure): $(basename "$a")" >&2
        continue;;
    esac
    found=1
    mkdir -p "$regress"
    dest=$regress/$(basename "$a")
    cp "$a" "$dest"
    echo "FINDING: $(basename "$a") copied to $dest" >&2
done
if [ $frc -ne 0 ] || [ $found -ne 0 ]; then
    grep -E -A40 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' \
        "$work/fuzz.log" | head -80 >&2
    echo "FAIL: the fuzzer found a problem (exit $frc)" >&2
    exit 1
fi
exit $rc
