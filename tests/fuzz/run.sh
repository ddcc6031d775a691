#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/fuzz/run.sh — build gvmd's libFuzzer targets with clang (ASan +
# UBSan), replay their regression inputs, then fuzz.  See usage() below.
set -u

usage() {
    cat <<EOF
usage: $0 [--target qcow2|rpc|all] [SECONDS]
       $0 --help

Build a fuzz target with clang and libFuzzer (-fsanitize=fuzzer,address,
undefined) from the sources, replay its regression inputs, then fuzz it
for SECONDS (default 60; 0 only builds and replays).

Targets:
  qcow2  (default) the qcow2 reader (tests/fuzz/fuzz-qcow2.c), from seed
         images made with qemu-img; regressions: tests/fuzz/regressions/*
  rpc    the JSON-RPC edge of an in-process daemon over a socketpair
         (tests/fuzz/fuzz-rpc.c), from seeds generated from
         proto/methods.def with a dictionary of method and parameter
         names (tests/fuzz/rpc-seeds.sh); regressions:
         tests/fuzz/regressions/rpc/*
  all    qcow2, then rpc, SECONDS each

At the end of each run libFuzzer's final figures are printed: executions,
exec/s, new units, peak RSS (stat:: lines) and the last status line with
coverage (cov: edges, ft: features, corp: corpus units/bytes).

Exit: 0 nothing found; 1 a finding (its input is copied into the
target's regressions directory and named in the output) or a regression
input that fails again; 2 usage; 77 clang or libFuzzer missing (qemu-img
and qemu-io too for qcow2; with --target all, only when both are skipped).

Environment:
  GVM_FUZZ_KEEP=1      keep the work directory (binaries, corpus, logs)
  GVM_FUZZ_CORPUS=DIR  rpc: keep the corpus in DIR (grows across runs)
  GVM_FUZZ_RESET=N     rpc: a fresh daemon every N inputs (default 200)
EOF
}

target=qcow2
secs=60
while [ $# -gt 0 ]; do
    case $1 in
    -h|--help) usage; exit 0;;
    --target) [ $# -ge 2 ] || { usage >&2; exit 2; }; target=$2; shift 2;;
    --target=*) target=${1#--target=}; shift;;
    -*) echo "$0: unknown option $1" >&2; usage >&2; exit 2;;
    *) secs=$1; shift;;
    esac
done
case $secs in ''|*[!0-9]*) echo "$0: SECONDS must be a number, not '$secs'" >&2; usage >&2; exit 2;; esac
case $target in qcow2|rpc|all) ;; *) echo "$0: unknown target '$target'" >&2; usage >&2; exit 2;; esac

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
regress=$here/regressions

skip() { echo "SKIP: $*" >&2; exit 77; }
command -v clang >/dev/null 2>&1 || skip "clang is not installed"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config is not installed"

work=$(mktemp -d /tmp/gvm-fuzz.XXXXXX)
# The rpc target's daemon directory (catalog, images): on tmpfs when there
# is one, as sqlite's fsyncs on a disk would set the pace.
rpcroot=$work/r
if [ -d /dev/shm ] && [ -w /dev/shm ]; then rpcroot=$(mktemp -u /dev/shm/gvm-fuzz-rpc.XXXXXX); fi
cleanup() {
    case $rpcroot in /dev/shm/gvm-fuzz-rpc.*) rm -rf "$rpcroot";; esac
    [ "${GVM_FUZZ_KEEP:-0}" = 1 ] && echo "# work dir kept: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

# libFuzzer's runtime ships in libclang-rt-NN-dev: check it links.
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    >"$work/probe.c"
clang -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" >/dev/null 2>&1 ||
    skip "clang cannot link -fsanitize=fuzzer (install libclang-rt-dev)"

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -1)
CFLAGS=(-g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=undefined -fno-omit-frame-pointer
        -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DGVMD_VERSION="\"${version:-fuzz}\""
        -Wall -Wno-unused-parameter -I"$src/proto")
# Every layer's folder (gvmd/meson.build): the targets span several.
while IFS= read -r d; do CFLAGS+=(-I"$d"); done < <(find "$src/gvmd" -type d | sort)

# Our own settings, not the test harness's: a malloc over -rss_limit_mb is a
# finding (libFuzzer's malloc limit), smaller failed ones return NULL.
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# leaks in gvmd are findings: no suppressions from the test suite (the rpc
# target sets its own, for third-party libraries only)
unset LSAN_OPTIONS

# ---- helpers ----------------------------------------------------------------------

# replay NAME BINARY DIR [libFuzzer options...]: every regular file of DIR
# but README*; 1 if one fails.
replay() {
    local name=$1 bin=$2 dir=$3 f; shift 3
    local files=()
    if [ -d "$dir" ]; then
        for f in "$dir"/*; do
            [ -f "$f" ] || continue
            case $(basename "$f") in README*) continue;; esac
            files+=("$f")
        done
    fi
    [ ${#files[@]} -gt 0 ] || return 0
    echo "# $name: replaying ${#files[@]} regression input(s)" >&2
    if ! "$bin" "$@" "${files[@]}" >"$work/replay-$name.log" 2>&1; then
        tail -60 "$work/replay-$name.log" >&2
        echo "FAIL: a regression input of $name fails again" >&2
        return 1
    fi
    return 0
}

# fuzz NAME BINARY DEST [libFuzzer options and corpus dirs...]: fuzz for
# $secs, print the final figures, copy findings to DEST; 1 on a finding.
fuzz() {
    local name=$1 bin=$2 dest=$3 frc a found=0 log=$work/fuzz-$1.log; shift 3
    mkdir -p "$work/artifacts-$name"
    echo "# $name: fuzzing for $secs s" >&2
    "$bin" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$work/artifacts-$name/" "$@" >"$log" 2>&1
    frc=$?
    echo "# $name: final figures" >&2
    grep -E '^(stat::|Done)' "$log" >&2
    # The last status line (DONE, or the last before a crash): cov, ft, corp.
    grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse|RELOAD)' "$log" | tail -1 >&2
    for a in "$work/artifacts-$name"/*; do
        [ -f "$a" ] || continue
        case $(basename "$a") in
        slow-unit-*)
            # Slow is not broken, and how slow depends on the machine's load:
            # report it, do not fail on it (a hang still fails as timeout-*).
            echo "# $name: slow input (not a failure): $(basename "$a")" >&2
            continue;;
        esac
        found=1
        mkdir -p "$dest"
        cp "$a" "$dest/$(basename "$a")"
        echo "FINDING: $(basename "$a") copied to $dest/$(basename "$a")" >&2
    done
    if [ $frc -ne 0 ] || [ $found -ne 0 ]; then
        grep -E -B2 -A40 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz-rpc: |SUMMARY' \
            "$log" | head -100 >&2
        echo "FAIL: the $name fuzzer found a problem (exit $frc)" >&2
        return 1
    fi
    return 0
}

# ---- the qcow2 reader ------------------------------------------------------------
run_qcow2() {
    local s rc=0 n=0 srcfiles=() seeds=$work/qcow2-seeds
    command -v qemu-img >/dev/null 2>&1 || { echo "SKIP: qcow2: qemu-img is not installed" >&2; return 77; }
    command -v qemu-io >/dev/null 2>&1 || { echo "SKIP: qcow2: qemu-io is not installed" >&2; return 77; }
    # The engine's sources, compiled directly: the fuzzer needs its own
    # instrumentation, so it cannot link the meson-built library.
    # (qcow2*.c by pattern, so a new file of the engine needs no change here)
    for s in image/image image/image-lock image/raw base/error store/path base/text store/store base/log; do
        srcfiles+=("$src/gvmd/$s.c")
    done
    for s in "$src"/gvmd/image/qcow2*.c; do srcfiles+=("$s"); done
    echo "# building the qcow2 fuzz target" >&2
    # shellcheck disable=SC2046
    if ! clang "${CFLAGS[@]}" $(pkg-config --cflags jansson zlib) \
            "$here/fuzz-qcow2.c" "${srcfiles[@]}" \
            $(pkg-config --libs jansson zlib) -lpthread -lm \
            -o "$work/fuzz-qcow2" 2>"$work/build-qcow2.log"; then
        cat "$work/build-qcow2.log" >&2
        echo "FAIL: the qcow2 fuzz target does not build" >&2
        return 1
    fi
    replay qcow2 "$work/fuzz-qcow2" "$regress" -rss_limit_mb=2048 -timeout=60 || rc=1

    mkdir -p "$seeds" "$work/qcow2-corpus"
    mk() { # NAME SIZE [qemu-img create options...]  (image is $seeds/NAME)
        local name=$1 size=$2; shift 2
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
    for s in "$seeds"/*; do
        [ -f "$s" ] || continue
        [ "$(stat -c %s "$s")" -le 1048576 ] || truncate -s 1048576 "$s"
    done
    echo "# $n seed images" >&2
    [ "$n" -gt 0 ] || { echo "FAIL: no seed image could be made" >&2; return 1; }
    [ "$secs" -gt 0 ] || return $rc
    fuzz qcow2 "$work/fuzz-qcow2" "$regress" -max_len=1048576 -timeout=60 \
        -rss_limit_mb=2048 "$work/qcow2-corpus" "$seeds" || rc=1
    return $rc
}

# ---- the JSON-RPC edge --------------------------------------------------------------
run_rpc() {
    local s o rc=0 pkgs objs=() seeds=$work/rpc-seeds
    local corpus=${GVM_FUZZ_CORPUS:-$work/rpc-corpus}
    pkgs="glusterfs-api jansson libevent libevent_pthreads sqlite3 libvirt libxml-2.0 zlib"
    # shellcheck disable=SC2086
    pkg-config --exists $pkgs || { echo "FAIL: rpc: pkg-config misses one of $pkgs" >&2; return 1; }
    echo "# building the rpc fuzz target" >&2
    mkdir -p "$work/rpc-obj"
    "$src/db/embed-schema.sh" "$work/rpc-obj/schema.c" "$src"/db/schema/*.sql || return 1
    # The handlers' typed parameters, generated from the method table as
    # the meson build does (gvmd/rpc/meson.build).
    python3 "$src/gvmd/rpc/gen-params.py" "$src/proto/methods.def" \
        "$work/rpc-obj/rpc-params.h" "$work/rpc-obj/rpc-params.c" || return 1
    # Every daemon source but main.c (the process; the target starts the
    # daemon with daemon.c as main.c does), compiled directly with the fuzzer's instrumentation, two at a
    # time.
    local list=("$here/fuzz-rpc.c" "$work/rpc-obj/schema.c" "$work/rpc-obj/rpc-params.c")
    # (store-faulty.c: test builds' GVMD_FAULT, which the fuzzer leaves out)
    while IFS= read -r s; do
        case $(basename "$s") in main.c|store-faulty.c) ;; *) list+=("$s") ;; esac
    done < <(find "$src/gvmd" -name '*.c' | sort)
    # shellcheck disable=SC2046,SC2086
    if ! printf '%s\n' "${list[@]}" |
        CFL="${CFLAGS[*]} -I$work/rpc-obj $(pkg-config --cflags $pkgs)" OBJ=$work/rpc-obj \
        xargs -P "$(nproc 2>/dev/null || echo 2)" -I{} sh -c \
            'o=$OBJ/$(basename "{}" .c).o; clang $CFL -c "{}" -o "$o" 2>"$o.log" || { cat "$o.log"; exit 255; }' \
            >"$work/build-rpc.log" 2>&1; then
        cat "$work/build-rpc.log" >&2
        echo "FAIL: the rpc fuzz target does not build" >&2
        return 1
    fi
    for s in "${list[@]}"; do objs+=("$work/rpc-obj/$(basename "$s" .c).o"); done
    # --wrap: the containment of fuzz-rpc.c (no gluster, no DNS, connect()
    # only inside the fuzz directory).
    # shellcheck disable=SC2046,SC2086
    if ! clang "${CFLAGS[@]}" "${objs[@]}" \
            -Wl,--wrap=connect,--wrap=getaddrinfo,--wrap=glfs_new \
            $(pkg-config --libs $pkgs) -lpthread -lm \
            -o "$work/fuzz-rpc" 2>"$work/build-rpc.log"; then
        cat "$work/build-rpc.log" >&2
        echo "FAIL: the rpc fuzz target does not link" >&2
        return 1
    fi

    # Leaks of libvirt, glib and gfapi are theirs (tests/lsan.supp); gvmd's
    # are findings.
    local lsan=$work/rpc-lsan.supp
    cat "$src/tests/lsan.supp" >"$lsan"
    echo 'leak:libglib-2.0.so' >>"$lsan"
    export LSAN_OPTIONS="suppressions=$lsan:print_suppressions=0"
    local opts=(-max_len=65536 -timeout=30 -rss_limit_mb=4096
                -dict="$work/rpc.dict")
    mkdir -p "$seeds" "$corpus"
    export GVM_FUZZ_ROOT=$rpcroot
    "$here/rpc-seeds.sh" "$src/proto/methods.def" "$seeds" "$work/rpc.dict" || return 1

    # Replay: every input from a fresh daemon, so it behaves as when found.
    rm -rf "$GVM_FUZZ_ROOT"
    GVM_FUZZ_RESET=1 replay rpc "$work/fuzz-rpc" "$regress/rpc" "${opts[@]}" || rc=1
    rm -rf "$GVM_FUZZ_ROOT"
    # The seeds too: each must run through (a seed that crashes is a finding).
    [ "$secs" -gt 0 ] || return $rc
    # -detect_leaks=0: fuzz-rpc.c checks for leaks itself at each daemon
    # reset (libFuzzer's per-input check would cost 8x the speed here).
    fuzz rpc "$work/fuzz-rpc" "$regress/rpc" "${opts[@]}" -detect_leaks=0 \
        "$corpus" "$seeds" || rc=1
    rm -rf "$GVM_FUZZ_ROOT"
    unset LSAN_OPTIONS GVM_FUZZ_ROOT
    return $rc
}

status=0
ran=0
for t in qcow2 rpc; do
    [ "$target" = all ] || [ "$target" = "$t" ] || continue
    "run_$t"
    r=$?
    case $r in
    0) ran=1;;
    77) ;;
    *) ran=1; status=1;;
    esac
done
[ $ran -eq 1 ] || exit 77
exit $status
