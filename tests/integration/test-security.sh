#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-security.sh — regression tests of issue 11's confirmed defects that
# need nothing but gvmd on a dir volume (item 4, volume-add by gvm members,
# is in test-permissions.sh):
#   1. a catalogued raw image whose content starts with a qcow2 header (its
#      guest wrote one naming another VM's image) stays raw: chain-audit
#      reports a format hazard, adopt-storage does not record it as
#      qcow2, and block-pull copies nothing into it; image-import without
#      a format refuses a probed qcow2 whose backing file lies outside its
#      own directory;
#   2. a backing name with a protocol prefix (file:, nbd:, anything QEMU
#      would take as "protocol:") is refused with Unsupported naming the
#      protocol, by image-info, image-import and image-create on it; and
#      gvmd writes the name of a file whose name has a ':' before any '/'
#      as "./NAME", which QEMU opens as that file;
#   (3. ".." after a symlink, on every backend: test-backing-symlink.sh)
#   5. a dir volume inside another, around another, or on the same
#      directory is refused, naming the other volume;
#   9. a FIFO in a volume is refused at once (InvalidParams naming it),
#      never a worker waiting for a writer;
#  11. a backing name that is not valid UTF-8, or holds a control
#      character, is refused (Corrupt, naming the image), and the reply is
#      valid JSON-RPC;
#  12. a path with a control character is refused (InvalidParams) by
#      image-create and domain-disk-xml; the <disk> XML is written by
#      libxml2, so names holding & < > ' " read back as they are;
#  13. a number past 2^63 - 1 is InvalidParams with the request's id, not a
#      parse error; a missing backing file is named as the backing file of
#      its image; an empty op-id is called empty;
#   6. from the read-only socket, a gluster URI (tcp or unix) of a volume
#      nobody registered is refused: gvmd connects nowhere, registers
#      nothing;
#   7. an op-id given on the read-only socket does not answer a later call
#      with that op-id on the read-write socket (per-uid eviction is in
#      test-permissions.sh);
#   8. while one user's checksums of a 1 TiB image occupy the read-only
#      socket, other users' light and heavy calls are answered; when that
#      user's connection goes, its queued and running checksums stop; batches
#      of replies over 16 MiB are one error, not 40 MiB held in gvmd.
# Each check fails on the code before issue 11.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img mkfifo timeout xmllint setpriv
RAW=$GVM_TOOLSDIR/rawsock

start_gvmd
IMAGES=$GVMD_DIR/state/images
SUB=sec-$$
mkdir -p "$IMAGES/$SUB"
D=$IMAGES/$SUB
# state: files under SUB and the catalog, to see that a refusal changed nothing.
state() { (cd "$D" && ls -la --time-style=+%s . | awk '{print $1, $5, $7}'); rpc image-list '{}' | jq -S -c 'map(del(."actual-size"))'; }

# ---- 2. protocol prefixes -------------------------------------------------------
for name in 'file:/etc/passwd' 'nbd:127.0.0.1:10809' 'ssh://127.0.0.1/x' 'host_device:/dev/sda' 'weird:x/y'; do
    f=p$(printf '%s' "$name" | md5sum | cut -c1-8).qcow2
    qemu-img create -q -f qcow2 -u -b "$name" -F raw "$D/$f" 1M || fail "qemu-img create with backing $name"
    proto=${name%%:*}
    before=$(state)
    for call in "image-info {\"image\":\"local:$SUB/$f\",\"backing-chain\":true}" \
                "image-import {\"image\":\"local:$SUB/$f\"}" \
                "image-create {\"volume\":\"local\",\"path\":\"$SUB/c-$f\",\"format\":\"qcow2\",\"backing\":\"local:$SUB/$f\"}"; do
        e=$(rpc_err ${call%% *} "${call#* }") || continue
        assert_eq Unsupported "$(err_class "$e")" "backing $name, ${call%% *}: class"
        assert_match "protocol '$proto:'" "$(err_msg "$e")" "backing $name, ${call%% *}: names the protocol"
    done
    assert_eq "$before" "$(state)" "backing $name: nothing changed"
done
# gvmd writes a name QEMU reads as the file: "./a:b.qcow2".
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/a:b.qcow2\",\"format\":\"qcow2\",\"size\":1048576}" >/dev/null ||
    fail "image-create a:b.qcow2"
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/child.qcow2\",\"format\":\"qcow2\",\"backing\":\"local:$SUB/a:b.qcow2\"}" >/dev/null ||
    fail "image-create over a:b.qcow2"
assert_eq "./a:b.qcow2" "$(qemu-img info -U --output=json "$D/child.qcow2" | jq -r '."backing-filename"')" \
    "the backing name gvmd writes for a:b.qcow2"
assert_eq "child.qcow2 a:b.qcow2" "$(qemu-img info -U --backing-chain --output=json "$D/child.qcow2" |
    jq -r '.[].filename' | xargs -n1 basename | xargs)" "QEMU opens a:b.qcow2 as the backing file"
got=$(rpc image-info "{\"image\":\"local:$SUB/child.qcow2\",\"backing-chain\":true}" | jq -r '.chain[].path' | xargs)
assert_eq "$SUB/child.qcow2 $SUB/a:b.qcow2" "$got" "gvmd's chain of child.qcow2"

# ---- 1. a catalogued raw image whose guest wrote a qcow2 header ------------------
# victim.qcow2 is another VM's image; guest.raw is a catalogued raw disk
# into which its guest writes a qcow2 header naming victim.qcow2.
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/victim.qcow2\",\"format\":\"qcow2\",\"size\":1048576}" >/dev/null ||
    fail "image-create victim"
qemu-io -f qcow2 -c "write -P 0x5a 0 64k" "$D/victim.qcow2" >/dev/null || fail "qemu-io victim"
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/guest.raw\",\"format\":\"raw\",\"size\":1048576}" >/dev/null ||
    fail "image-create guest.raw"
qemu-img create -q -f qcow2 -u -b victim.qcow2 -F qcow2 "$TEST_TMP/evil.qcow2" 1M || fail "qemu-img create evil"
dd if="$TEST_TMP/evil.qcow2" of="$D/guest.raw" conv=notrunc status=none || fail "the guest's write"
sum_guest=$(sha256sum <"$D/guest.raw")
a=$(rpc chain-audit "{\"image\":\"local:$SUB/guest.raw\"}") || fail "chain-audit of guest.raw"
assert_eq '["format-hazard"]' "$(jq -c '[.differences[].what]' <<<"$a")" "chain-audit of guest.raw: the difference"
assert_match "catalogued as raw but its content starts with a qcow2 header" "$(jq -r '.differences[0].message' <<<"$a")" \
    "chain-audit of guest.raw: the message"
f=$(rpc chain-audit "{\"image\":\"local:$SUB/guest.raw\",\"fix\":\"adopt-storage\"}") || fail "chain-audit adopt-storage"
assert_eq '[]' "$(jq -c '[.fixed[]?.what]' <<<"$f")" "adopt-storage fixes nothing of guest.raw"
assert_eq raw "$(rpc image-info "{\"image\":\"local:$SUB/guest.raw\"}" | jq -r .format)" "guest.raw's catalogued format"
assert_eq null "$(rpc image-info "{\"image\":\"local:$SUB/guest.raw\"}" | jq -r .backing)" "guest.raw has no backing"
e=$(rpc_err block-pull "{\"image\":\"local:$SUB/guest.raw\"}")
assert_eq "$sum_guest" "$(sha256sum <"$D/guest.raw")" "guest.raw after adopt-storage and block-pull"
# image-import without a format probes it: a probed qcow2 whose backing
# file lies outside its own directory is refused unless format says so.
mkdir -p "$D/vm2"
qemu-img create -q -f qcow2 -u -b ../victim.qcow2 -F qcow2 "$D/vm2/disk.img" 1M || fail "qemu-img create vm2/disk.img"
before=$(state)
e=$(rpc_err image-import "{\"image\":\"local:$SUB/vm2/disk.img\"}")
assert_eq Unsupported "$(err_class "$e")" "probed import of a qcow2 over ../victim.qcow2: class"
assert_match "outside its own directory" "$(err_msg "$e")" "probed import of a qcow2 over ../victim.qcow2: says why"
assert_eq "$before" "$(state)" "probed import refused: nothing changed"
rpc image-import "{\"image\":\"local:$SUB/vm2/disk.img\",\"format\":\"qcow2\"}" >/dev/null ||
    check_fail "import of vm2/disk.img with format qcow2"
rpc image-delete "{\"image\":\"local:$SUB/vm2/disk.img\"}" >/dev/null || check_fail "image-delete vm2/disk.img"
rm -f "$D/guest.raw"; rpc image-delete "{\"image\":\"local:$SUB/guest.raw\"}" >/dev/null 2>&1

# ---- 5. overlapping dir volumes --------------------------------------------------
mkdir -p "$TEST_TMP/v/in/deeper"
rpc volume-add "{\"name\":\"outer\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/v/in\"}" >/dev/null ||
    fail "volume-add outer"
for case in "inner $TEST_TMP/v/in/deeper lies inside" "around $TEST_TMP/v holds" "same $TEST_TMP/v/in/ is" \
            "local $IMAGES/$SUB lies inside"; do
    set -- $case
    e=$(rpc_err volume-add "{\"name\":\"o-$1\",\"backend\":\"dir\",\"path\":\"$2\"}") || continue
    assert_eq InvalidParams "$(err_class "$e")" "overlapping volume $1: class"
    assert_match "${*:3} the dir volume" "$(err_msg "$e")" "overlapping volume $1: says how"
done
assert_eq "local,outer" "$(rpc volume-list '{}' | jq -r '.[].name' | sort | paste -sd, -)" "volumes after the refusals"

# ---- 9. a FIFO --------------------------------------------------------------------
mkfifo "$D/fifo.qcow2" || fail "mkfifo"
for call in "image-info {\"image\":\"local:$SUB/fifo.qcow2\"}" "image-import {\"image\":\"local:$SUB/fifo.qcow2\"}"; do
    s=$SECONDS
    e=$(timeout 20 "$GVMCTL" --socket "$GVM_SOCK" --json --params "${call#* }" "${call%% *}" 2>&1 >/dev/null)
    [ $((SECONDS - s)) -lt 10 ] || check_fail "FIFO, ${call%% *}: took $((SECONDS - s)) s"
    assert_eq InvalidParams "$(err_class "$e")" "FIFO, ${call%% *}: class ($e)"
    assert_match "FIFO" "$(err_msg "$e")" "FIFO, ${call%% *}: names the type"
done
rpc query-version '{}' >/dev/null || fail "gvmd does not answer after the FIFO calls"
rm -f "$D/fifo.qcow2"

# ---- 11. backing names that are not text -----------------------------------------
for kind in utf8 control; do
    case $kind in
    utf8)    name=$(printf 'x\377\376.qcow2'); says="is not valid UTF-8";;
    control) name=$(printf 'x\033[2Jy.qcow2'); says="holds a control character";;
    esac
    qemu-img create -q -f qcow2 -u -b "$name" -F qcow2 "$D/n-$kind.qcow2" 1M || fail "qemu-img create n-$kind"
    for m in image-info image-import; do
        r=$(printf '{"jsonrpc":"2.0","method":"%s","params":{"image":"local:%s/n-%s.qcow2"},"id":11}\n' "$m" "$SUB" "$kind" |
            "$RAW" "$GVM_SOCK" --expect 1 --timeout-ms 10000)
        jq -e . >/dev/null 2>&1 <<<"$r" || { check_fail "$kind, $m: the reply is not JSON: $r"; continue; }
        assert_eq "11 Corrupt" "$(jq -r '"\(.id) \(.error.data.class)"' <<<"$r")" "$kind backing name, $m: id and class"
        assert_match "n-$kind.qcow2' has a backing file name that $says" "$(jq -r .error.message <<<"$r")" \
            "$kind backing name, $m: names the image"
    done
done
assert_eq 0 "$(rpc image-list '{}' | jq '[.[] | select(.path | test("n-"))] | length')" "no row for the images with such names"

# ---- 12. control characters in paths ----------------------------------------------
before=$(state)
e=$(rpc_err image-create "{\"volume\":\"local\",\"path\":\"$SUB/a\\nb.qcow2\",\"format\":\"qcow2\",\"size\":1048576}")
assert_eq InvalidParams "$(err_class "$e")" "image-create with a newline: class"
assert_match "control character" "$(err_msg "$e")" "image-create with a newline: says why"
e=$(rpc_err domain-disk-xml "{\"image\":\"local:$SUB/x\\u001b.qcow2\",\"target\":\"vda\"}")
assert_eq InvalidParams "$(err_class "$e")" "domain-disk-xml with an escape: class"
assert_eq "$before" "$(state)" "control characters: nothing changed"
# The <disk> XML is written by an XML writer: names with & < > ' " in them
# come out escaped and read back as they are.
W="$TEST_TMP/we'ird&<dir>\"x"
mkdir -p "$W" || fail "mkdir $W"
rpc volume-add "$(jq -nc --arg p "$W" '{name:"w", backend:"dir", path:$p}')" >/dev/null || fail "volume-add w"
rpc image-create "{\"volume\":\"w\",\"path\":\"x'y&z.qcow2\",\"format\":\"qcow2\",\"size\":1048576}" >/dev/null ||
    fail "image-create in w"
x=$(rpc domain-disk-xml "{\"image\":\"w:x'y&z.qcow2\",\"target\":\"vdb\"}" | jq -r .xml) || fail "domain-disk-xml in w"
assert_eq "$W/x'y&z.qcow2" "$(printf '%s' "$x" | xmllint --xpath 'string(/disk/source/@file)' - 2>&1)" \
    "domain-disk-xml of a path with XML's special characters"

# ---- 7. op-ids are the caller's, on the read-write socket --------------------------
# A chain-audit with op-id k1 on the read-only socket, then a difference
# made behind gvmd's back, then chain-audit with op-id k1 on the read-write
# socket: it must run (and find the difference), not answer the first
# call's result.
ro=$("$GVMCTL" --socket "$GVM_RO_SOCK" --json --params '{"op-id":"k1"}' chain-audit) ||
    fail "chain-audit on the read-only socket"
assert_eq 0 "$(jq '.differences | length' <<<"$ro")" "chain-audit on the read-only socket: clean"
qemu-img rebase -q -u -b "" "$D/child.qcow2" || fail "qemu-img rebase -u"
rw=$(rpc chain-audit '{"op-id":"k1"}') || fail "chain-audit on the read-write socket"
assert_eq 1 "$(jq '.differences | length' <<<"$rw")" \
    "chain-audit with the read-only caller's op-id on the read-write socket ran"
qemu-img rebase -q -u -b "./a:b.qcow2" -F qcow2 "$D/child.qcow2" || fail "qemu-img rebase -u back"
audit_clean "once child.qcow2's header is back"

# ---- 6. the read-only socket reaches registered volumes only ----------------------
# Listeners of the test's own (tcp on loopback, a unix socket) count the
# connections gvmd makes to them; image-info of a gluster URI pointing at
# each, from the read-only socket, must be refused without connecting or
# registering anything.
python3 - "$TEST_TMP/listen" <<'PY' &
import os, select, socket, sys, time
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen(8)
u = socket.socket(socket.AF_UNIX); u.bind(d + "/u.sock"); u.listen(8)
open(d + "/port.tmp", "w").write(str(t.getsockname()[1])); os.rename(d + "/port.tmp", d + "/port")
n = 0
end = time.time() + 120
while time.time() < end and not os.path.exists(d + "/stop"):
    r, _, _ = select.select([t, u], [], [], 0.2)
    for s in r:
        c, _ = s.accept(); c.close(); n += 1
        open(d + "/count", "w").write(str(n))
PY
LPID=$!
_test_pids="$_test_pids $LPID"
i=0; until [ -s "$TEST_TMP/listen/port" ]; do i=$((i+1)); [ $i -lt 100 ] || fail "the listeners did not start"; sleep 0.05; done
port=$(cat "$TEST_TMP/listen/port")
vols_before=$(rpc volume-list '{}' | jq -c 'map(.name)')
for uri in "gluster://127.0.0.1:$port/vx/a.qcow2" "gluster+unix:///vx/a.qcow2?socket=$TEST_TMP/listen/u.sock"; do
    e=$("$GVMCTL" --socket "$GVM_RO_SOCK" --json --params "{\"image\":\"$uri\"}" image-info 2>&1 >/dev/null)
    assert_eq PermissionDenied "$(err_class "$e")" "read-only image-info of $uri: class ($e)"
    assert_match "registered volumes only" "$(err_msg "$e")" "read-only image-info of $uri: says why"
done
: >"$TEST_TMP/listen/stop"; wait "$LPID" 2>/dev/null
assert_eq 0 "$(cat "$TEST_TMP/listen/count" 2>/dev/null || echo 0)" "connections gvmd made from read-only calls"
assert_eq "$vols_before" "$(rpc volume-list '{}' | jq -c 'map(.name)')" "volumes after the read-only calls"

# ---- 8. batches of large replies ------------------------------------------
# Two batches of 256 image-map calls on an image of 2048 extents (about
# 20 MiB of replies each) from the read-only socket: each is answered with
# one error saying the replies exceed 16 MiB (every call ran), not with
# 40 MiB of output held for a client; others are answered meanwhile.
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/frag.qcow2\",\"format\":\"qcow2\",\"size\":134217728,\"cluster-size\":65536}" >/dev/null ||
    fail "image-create frag"
for i in $(seq 0 1023); do printf 'write -P 1 %d 64k\n' $((i * 131072)); done |
    qemu-io -f qcow2 "$D/frag.qcow2" >/dev/null || fail "qemu-io frag"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$GVMD_PID/status"; }
rss0=$(rss)
python3 - "$GVM_RO_SOCK" "local:$SUB/frag.qcow2" >"$TEST_TMP/big.out" <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
for b in range(2):
    batch = [{"jsonrpc": "2.0", "method": "image-map", "params": {"image": sys.argv[2]},
              "id": b * 1000 + i} for i in range(256)]
    s.sendall((json.dumps(batch) + "\n").encode())
s.settimeout(120)
data = b""
while data.count(b"\n") < 2:
    d = s.recv(1 << 20)
    if not d:
        break
    data += d
sys.stdout.write(data.decode())
PY
BIG=$!
worst=0
while kill -0 "$BIG" 2>/dev/null; do
    t0=$(date +%s%N); rpc query-version '{}' >/dev/null || check_fail "query-version during the batches"
    ms=$(( ($(date +%s%N) - t0) / 1000000 )); [ $ms -gt $worst ] && worst=$ms
    sleep 0.2
done
wait "$BIG"
assert_eq "2 2" "$(wc -l <"$TEST_TMP/big.out") $(jq -s '[.[] | select(.error.message | test("exceed 16 MiB"))] | length' "$TEST_TMP/big.out")" \
    "two batches of too large replies: two error lines"
assert_eq 1 "$(( $(wc -c <"$TEST_TMP/big.out") < 4096 ))" "what the batches' client received is small"
note "batches of 2 x 256 image-map: slowest query-version meanwhile $worst ms; gvmd's RSS ${rss0} kB before, $(rss) kB after"
# Replies are serialised by the read-only pool's two workers and counted
# there: gvmd holds a few results at a time, not 256 of them.
# (Not under ASan, whose quarantine keeps freed memory on purpose.)
if ldd "$GVMD" 2>/dev/null | grep -q libasan; then
    note "the RSS bound is not checked under ASan"
else
    [ $(( $(rss) - rss0 )) -lt 131072 ] || check_fail "gvmd grew by more than 128 MiB: ${rss0} kB -> $(rss) kB"
fi

# ---- 8. heavy read-only work per uid, stopped when its caller goes --------------
# uid A asks two checksums of a sparse 1 TiB image (minutes each) and stays
# connected: uid B's image-info (a light call) and uid C's checksum of a
# small image are answered meanwhile (before: the read-only socket's two
# workers, first come first served, ran A's calls for ~20 minutes first).
# Then A's client is killed: its running checksum stops within one 8 MiB
# chunk and the queued one never starts, so A's next call is answered
# (before: a caller that left still had its calls run to the end).
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/huge.qcow2\",\"format\":\"qcow2\",\"size\":1099511627776}" >/dev/null ||
    fail "image-create huge"
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/small.qcow2\",\"format\":\"qcow2\",\"size\":1048576}" >/dev/null ||
    fail "image-create small"
chmod 755 "$TEST_TMP" "$GVMD_DIR"     # the read-only socket is for anyone
as_uid() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
ro_call() { # UID METHOD IMAGE: one call on the read-only socket, 60 s at most
    printf '{"jsonrpc":"2.0","method":"%s","params":{"image":"local:%s"},"id":8}\n' "$2" "$3" |
        as_uid "$1" "$RAW" "$GVM_RO_SOCK" --expect 1 --timeout-ms 60000
}
printf '[{"jsonrpc":"2.0","method":"image-checksum","params":{"image":"local:%s"},"id":1},{"jsonrpc":"2.0","method":"image-checksum","params":{"image":"local:%s"},"id":2}]\n' \
    "$SUB/huge.qcow2" "$SUB/huge.qcow2" >"$TEST_TMP/huge.req"
# Not through as_uid: $! must be the pid of rawsock itself (setpriv execs it).
setpriv --reuid=60101 --regid=60101 --clear-groups "$RAW" "$GVM_RO_SOCK" --expect 1 \
    --timeout-ms 3600000 <"$TEST_TMP/huge.req" >/dev/null &
HOLDER=$!
assert_eq 1048576 "$(ro_call 60102 image-info "$SUB/small.qcow2" | jq -r '.result."virtual-size"' 2>&1)" \
    "another uid's image-info while uid A's checksums run"
assert_match '^[0-9a-f]{64}$' "$(ro_call 60103 image-checksum "$SUB/small.qcow2" | jq -r .result.sha256 2>&1)" \
    "a third uid's checksum while uid A's checksums run"
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
assert_match '^[0-9a-f]{64}$' "$(ro_call 60101 image-checksum "$SUB/small.qcow2" | jq -r .result.sha256 2>&1)" \
    "uid A's next checksum once its client with two 1 TiB checksums was killed"

# ---- 13. numbers past 2^63 - 1 -----------------------------------------------------
r=$(printf '%s\n' "{\"jsonrpc\":\"2.0\",\"method\":\"image-create\",\"params\":{\"volume\":\"local\",\"path\":\"$SUB/big.qcow2\",\"format\":\"qcow2\",\"size\":9223372036854775808},\"id\":13}" |
    "$RAW" "$GVM_SOCK" --expect 1 --timeout-ms 10000)
assert_eq "13 -32602 InvalidParams" "$(jq -r '"\(.id) \(.error.code) \(.error.data.class)"' <<<"$r" 2>&1)" \
    "a size of 2^63: id, code and class"
assert_match "too large" "$(jq -r .error.message <<<"$r" 2>&1)" "a size of 2^63: says why"
[ -e "$D/big.qcow2" ] && check_fail "big.qcow2 was created"
# A missing backing file is named as that, with the image that names it.
qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 "$D/orphan.qcow2" 1M || fail "qemu-img create orphan"
e=$(rpc_err image-info "{\"image\":\"local:$SUB/orphan.qcow2\",\"backing-chain\":true}")
assert_eq NotFound "$(err_class "$e")" "missing backing file: class"
assert_match "backing file 'gone.qcow2' of image '$SUB/orphan.qcow2' does not exist" "$(err_msg "$e")" \
    "missing backing file: names it and its image"
# An empty op-id is said to be empty.
e=$(rpc_err image-create "{\"volume\":\"local\",\"path\":\"$SUB/e.qcow2\",\"format\":\"qcow2\",\"size\":1048576,\"op-id\":\"\"}")
assert_match "must be a non-empty string, not an empty one" "$(err_msg "$e")" "empty op-id: the message"
stop_gvmd
