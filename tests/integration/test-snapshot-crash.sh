#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-snapshot-crash.sh — crash safety of snapshot-create and
# snapshot-delete (offline path, dir volume): gvmd is killed (SIGKILL from
# inside, GVMD_FAULT="step:NAME:kill") at every journaled step and at the
# named points between them, then restarted.  After recovery:
#   - the interrupted job concluded (snapshot-create: either rolled back, with
#     an error saying nothing was recorded, or rolled forward when the
#     catalog change had been committed; snapshot-delete: finished);
#   - the catalog agrees with the qcow2 headers (image-info chain == qemu-img
#     info --backing-chain for every active image) and every qcow2 file of
#     the domain's directory is catalogued (no orphan overlay);
#   - qemu-img check is clean everywhere;
#   - the guest content of every image that remains is unchanged.
# snapshot-delete is crashed in both of its ways to move data: pulling the
# freed image's data into its child (the parent is frozen by another
# snapshot), and committing it into the parent (the parent has no other
# user: bare images base(4M) <- d1(6M), snapshots s1 on d1 and s2 on its
# overlay o1; deleting s1 commits d1 into base, which grows; base must
# then read what d1 read, and o1/o2 as before).
. "$GVM_TESTDIR/lib.sh"
need_fault_injection
. "$GVM_TESTDIR/lib-image.sh"
. "$GVM_TESTDIR/lib-crash.sh"

ROOT=$GVMD_DIR/state/images
VOL=local
mkdir -p "$ROOT"
n=0

bn() { xargs -r -n1 basename | tr '\n' ' ' | sed 's/ $//'; }
qchain() { qemu-img info --backing-chain --output=json "$1" | jq -r '.[].filename' | bn; }
gchain() { rpc image-info "{\"image\":\"local:$1\",\"backing-chain\":true}" | jq -r '.chain[].path' | bn; }
active() { rpc domain-list '{}' | jq -r --arg d "$1" --arg t "$2" \
    '.[] | select(.name == $d) | .disks[] | select(.target == $t) | ."image-name"' | sed 's/^local://'; }
sums() { for f in "$ROOT/$1"/*.qcow2; do echo "$(basename "$f") $(qemu_sha256 "$f")"; done; }

# invariants DIR DOMAIN WHAT: catalog == headers, check clean, no orphans.
invariants() {
    for t in vda vdb; do
        a=$(active "$2" $t)
        [ -n "$a" ] || { check_fail "$3: no active image for $t"; continue; }
        assert_eq "$(qchain "$ROOT/$a")" "$(gchain "$a")" "$3: chain of $t ($a)"
    done
    cat=$(rpc image-list '{}' | jq -r '.[].path')
    for f in "$ROOT/$1"/*.qcow2; do
        out=$(qemu-img check "$f" 2>&1) || check_fail "$3: qemu-img check $(basename "$f"): $out"
        grep -qx "$1/$(basename "$f")" <<<"$cat" || check_fail "$3: orphan file $(basename "$f")"
    done
    audit_clean "$3"
}

# A domain with two disks holding data, in DIR.
setup() {
    mkdir -p "$ROOT/$1"
    qimg create -q -f qcow2 "$ROOT/$1/base.qcow2" 4M
    qimg create -q -f qcow2 "$ROOT/$1/data.qcow2" 2M
    qio "$ROOT/$1/base.qcow2" "write -P 0x11 0 1M" "write -P 0x12 3M 512k"
    qio "$ROOT/$1/data.qcow2" "write -P 0x21 0 512k"
    rpc image-import "{\"image\":\"local:$1/base.qcow2\"}" >/dev/null || fail "import"
    rpc image-import "{\"image\":\"local:$1/data.qcow2\"}" >/dev/null || fail "import"
    rpc domain-attach "{\"domain\":\"$2\",\"disks\":[{\"target\":\"vda\",\"image\":\"local:$1/base.qcow2\"},{\"target\":\"vdb\",\"image\":\"local:$1/data.qcow2\"}]}" \
        >/dev/null || fail "domain-attach"
}

job_of_type() { rpc query-jobs '{}' | jq -c --arg t "$1" '[.[] | select(.type == $t)] | last'; }

# ---- snapshot-create --------------------------------------------------------------------
# committed: 1 if the kill comes after the catalog change was committed.
crash_create() {
    spec=$1 committed=$2
    n=$((n+1)); p=c$n; dom=d$n
    # Nothing before snapshot-create reaches a journal step.
    crash_start "$spec"
    setup $p $dom
    [ -s "$TEST_TMP/before-create" ] || sums $p >"$TEST_TMP/before-create"
    rpc snapshot-create "{\"name\":\"s$n\",\"domain\":\"$dom\"}" >/dev/null 2>&1
    crash_restart "$spec" $n 15
    j=$(job_of_type snapshot-create)
    assert_eq concluded "$(jq -r .status <<<"$j")" "$spec: job concluded after recovery"
    if [ "$committed" = 1 ]; then
        assert_eq null "$(jq -c .error <<<"$j")" "$spec: rolled forward"
        assert_eq "$p/base.s$n.qcow2" "$(active $dom vda)" "$spec: vda overlay active"
        rpc snapshot-info "{\"snapshot\":\"s$n\"}" >/dev/null || check_fail "$spec: snapshot missing"
    else
        assert_match "nothing was recorded" "$(jq -r .error.message <<<"$j")" "$spec: rolled back"
        assert_eq "$p/base.qcow2" "$(active $dom vda)" "$spec: vda unchanged"
        assert_eq "$p/data.qcow2" "$(active $dom vdb)" "$spec: vdb unchanged"
        ls "$ROOT/$p" | grep -q "\.s$n\." && check_fail "$spec: overlay left behind: $(ls "$ROOT/$p")"
        rpc_err snapshot-info "{\"snapshot\":\"s$n\"}" >/dev/null || check_fail "$spec: half snapshot recorded"
    fi
    invariants $p $dom "$spec"
    sums $p | grep -v "\.s$n\.qcow2 " | diff "$TEST_TMP/before-create" - >&2 || check_fail "$spec: guest content changed"
    # Nothing left in the way: the snapshot can be taken (again).
    if [ "$committed" != 1 ]; then
        rpc snapshot-create "{\"name\":\"s$n\",\"domain\":\"$dom\"}" >/dev/null || check_fail "$spec: retry failed"
        invariants $p $dom "$spec (retry)"
    fi
    note "$spec: $(grep -hE 'Snapshot|snapshot' "$GVMD_DIR/gvmd.log" | grep -v 'Job ' | sed 's/^.*: info: //' | head -3 | tr '\n' ' ')"
    stop_gvmd
}

crash_create step:snapshot-create:kill 0
crash_create step:create-overlay:kill 0
crash_create step:snapshot-create.overlays-created:kill 0
crash_create step:commit-catalog:kill 0
crash_create step:snapshot-create.committed:kill 1

# ---- snapshot-delete ------------------------------------------------------------------
# Chain per disk: base <- base.a <- base.b <- base.c (data in each); delete
# the middle snapshot b (frozen image base.a, pulled into base.b).  Overlay
# paths are given explicitly so every scenario holds the same files.
crash_delete() {
    spec=$1
    n=$((n+1)); p=c$n; dom=d$n
    start_gvmd
    setup $p $dom
    for s in a b c; do
        rpc snapshot-create "{\"name\":\"$s$n\",\"domain\":\"$dom\",\"disks\":[{\"target\":\"vda\",\"overlay\":\"$p/base.$s.qcow2\"},{\"target\":\"vdb\",\"overlay\":\"$p/data.$s.qcow2\"}]}" \
            >/dev/null || fail "snapshot $s$n"
        case $s in
        a) qio "$ROOT/$p/base.a.qcow2" "write -P 0x13 512k 128k" "write -z 3M 64k"
           qio "$ROOT/$p/data.a.qcow2" "write -P 0x22 64k 64k";;
        b) qio "$ROOT/$p/base.b.qcow2" "write -P 0x14 1M 64k";;
        esac
    done
    [ -s "$TEST_TMP/before-delete" ] || sums $p >"$TEST_TMP/before-delete"
    stop_gvmd
    crash_start "$spec"
    rpc snapshot-delete "{\"snapshot\":\"b$n\",\"op-id\":\"del$n\"}" >/dev/null 2>&1
    crash_restart "$spec" $n 15
    crash_job del$n "$spec" || return
    assert_eq "concluded null" "$(jq -r -c '"\(.status) \(.error)"' <<<"$CRASH_JOB")" "$spec: job after recovery"
    rpc_err snapshot-info "{\"snapshot\":\"b$n\"}" >/dev/null || check_fail "$spec: snapshot still there"
    for f in base data; do
        [ -e "$ROOT/$p/$f.a.qcow2" ] && check_fail "$spec: freed $f.a.qcow2 still there"
    done
    assert_eq "base.b.qcow2 base.qcow2" "$(qchain "$ROOT/$p/base.b.qcow2")" "$spec: chain of base.b"
    invariants $p $dom "$spec"
    sums $p | diff <(grep -v "\.a\.qcow2 " "$TEST_TMP/before-delete") - >&2 || check_fail "$spec: guest content changed"
    note "$spec: $(crash_log_lines 'recover|header|leak|rolled' 3)"
    stop_gvmd
}

for spec in step:snapshot-delete:kill step:pull:kill step:switch-backing:kill \
            step:forget:kill step:snapshot-delete.forgotten:kill write:2:kill write:5:kill; do
    crash_delete "$spec"
done

# ---- snapshot-delete committing into the parent ---------------------------------------------
crash_commit() {
    spec=$1
    n=$((n+1)); p=c$n
    start_gvmd
    mkdir -p "$ROOT/$p"
    qimg create -q -f qcow2 "$ROOT/$p/base.qcow2" 4M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$ROOT/$p/d1.qcow2" 6M
    qio "$ROOT/$p/base.qcow2" "write -P 0x41 0 4M"
    qio "$ROOT/$p/d1.qcow2" "write -P 0x42 1M 512k" "write -z 0 64k" "write -P 0x43 5M 512k"
    rpc image-import "{\"image\":\"local:$p/d1.qcow2\"}" >/dev/null || fail "import"
    rpc snapshot-create "{\"name\":\"s$n\",\"disks\":[{\"image\":\"local:$p/d1.qcow2\",\"overlay\":\"$p/o1.qcow2\"}]}" \
        >/dev/null || fail "s$n"
    qio "$ROOT/$p/o1.qcow2" "write -P 0x44 2M 64k" "write -z 5M 64k"
    rpc snapshot-create "{\"name\":\"t$n\",\"disks\":[{\"image\":\"local:$p/o1.qcow2\",\"overlay\":\"$p/o2.qcow2\"}]}" \
        >/dev/null || fail "t$n"
    qio "$ROOT/$p/o2.qcow2" "write -P 0x45 3M 64k"
    if [ ! -s "$TEST_TMP/cc-d1.raw" ]; then
        for i in d1 o1 o2; do qemu-img convert -O raw "$ROOT/$p/$i.qcow2" "$TEST_TMP/cc-$i.raw"; done
    fi
    stop_gvmd
    crash_start "$spec"
    rpc snapshot-delete "{\"snapshot\":\"s$n\",\"op-id\":\"del$n\"}" >/dev/null 2>&1
    crash_restart "$spec" $n 15
    crash_job del$n "$spec" || return
    assert_eq "concluded null" "$(jq -r -c '"\(.status) \(.error)"' <<<"$CRASH_JOB")" "$spec: job after recovery"
    rpc_err snapshot-info "{\"snapshot\":\"s$n\"}" >/dev/null || check_fail "$spec: snapshot still there"
    [ -e "$ROOT/$p/d1.qcow2" ] && check_fail "$spec: freed d1.qcow2 still there"
    for i in o1 o2; do
        qemu-img compare -q "$ROOT/$p/$i.qcow2" "$TEST_TMP/cc-$i.raw" || check_fail "$spec: $i changed"
    done
    qemu-img compare -q "$ROOT/$p/base.qcow2" "$TEST_TMP/cc-d1.raw" || check_fail "$spec: base does not read what d1 read"
    assert_eq 6291456 "$(rpc image-info "{\"image\":\"local:$p/base.qcow2\"}" | jq '."virtual-size"')" \
        "$spec: catalogued size of base"
    assert_eq "o2.qcow2 o1.qcow2 base.qcow2" "$(qchain "$ROOT/$p/o2.qcow2")" "$spec: chain of o2"
    assert_eq "o2.qcow2 o1.qcow2 base.qcow2" "$(gchain "$p/o2.qcow2")" "$spec: catalogued chain of o2"
    cat=$(rpc image-list '{}' | jq -r '.[].path')
    for f in "$ROOT/$p"/*.qcow2; do
        out=$(qemu-img check "$f" 2>&1) || check_fail "$spec: qemu-img check $(basename "$f"): $out"
        grep -qx "$p/$(basename "$f")" <<<"$cat" || check_fail "$spec: orphan file $(basename "$f")"
    done
    grep -q "committing local:$p/d1.qcow2 into its backing" "$GVMD_DIR/gvmd.log" "$TEST_TMP/gvmd-$n.log" ||
        check_fail "$spec: the delete did not commit into the parent"
    note "$spec: $(crash_log_lines 'recover|grew|rolled|switching|Commit' 3)"
    stop_gvmd
}

for spec in step:snapshot-delete:kill step:commit:kill step:grow:kill step:copying:kill \
            step:block-commit.run:kill step:switch:kill step:block-commit.child-switched:kill \
            step:forget:kill step:snapshot-delete.forgotten:kill write:1:kill write:2:kill \
            write:4:kill flush:2:kill; do
    crash_commit "$spec"
done

exit $_test_failed
