#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-protocol.sh — JSON-RPC conformance and the protocol's limits, spoken
# byte for byte through tests/tools/rawsock: parse errors, invalid
# requests, unknown methods and parameters, batches, notifications, the
# size/depth/string limits, invalid UTF-8, connection caps and clients
# that vanish mid-message or while their call runs.  After each abuse the
# daemon must still answer other clients; at the end it must stop cleanly.
. "$GVM_TESTDIR/lib.sh"
need jq head tr
RAW=$GVM_TOOLSDIR/rawsock
[ -x "$RAW" ] || fail "rawsock not built at $RAW"

start_gvmd

# raw [rawsock options]: stdin to the rw socket, reply lines on stdout.
raw() { "$RAW" "$GVM_SOCK" "$@"; }
# ask JSON: one message, its one reply line.
ask() { printf '%s\n' "$1" | raw --expect 1 --timeout-ms 10000; }
# field JQ-FILTER JSON
field() { printf '%s' "$2" | jq -c "$1" 2>/dev/null || echo "<not JSON: $2>"; }
# expect_error WHAT JSON-REPLY CODE CLASS [ID]  (one jq run: jq starts slowly)
expect_error() {
    got=$(printf '%s' "$2" | jq -r '[.error.code, .error.data.class, (.id|tojson),
        .jsonrpc, (.error.message|type)] | map(tostring) | join(" ")' 2>/dev/null)
    assert_eq "$3 $4 ${5:-null} 2.0 string" "$got" "$1: code class id jsonrpc message ($2)"
}
# alive: the daemon still answers a fresh client.
alive() {
    r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":"alive"}')
    assert_eq '"alive"' "$(field .id "$r")" "daemon alive after $1"
    assert_eq 1 "$(field .result.protocol "$r")" "query-version after $1"
    kill -0 "$GVMD_PID" 2>/dev/null || fail "gvmd died after $1"
}

note "at ${SECONDS}s"
# ---- a good call ------------------------------------------------------------
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":1}')
assert_eq 1 "$(field .id "$r")" "query-version id"
assert_match '^"[0-9]+\.[0-9]+\.[0-9]+"$' "$(field .result.version "$r")" "version"
assert_eq '"2.0"' "$(field .jsonrpc "$r")" "jsonrpc"
r=$(ask '{"jsonrpc":"2.0","method":"query-version","params":{},"id":"s-1"}')
assert_eq '"s-1"' "$(field .id "$r")" "string id echoed"
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":null}')
assert_eq 'null' "$(field .id "$r")" "null id echoed"
assert_eq 1 "$(field .result.protocol "$r")" "null id answered"
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":2.5}')
assert_eq '2.5' "$(field .id "$r")" "fractional id echoed"
r=$(ask '{"jsonrpc":"2.0","method":"query-capabilities","id":3}')
assert_eq '["dir","gluster"]' "$(field .result.backends "$r")" "capabilities backends"
assert_eq 'true' "$(field .result.live "$r")" "capabilities live"
assert_eq 'true' "$(field '.result.qcow2.versions | index(3) != null' "$r")" "capabilities qcow2 v3"
r=$(ask '{"jsonrpc":"2.0","method":"events-subscribe","id":4}')
assert_eq '{}' "$(field .result "$r")" "events-subscribe result"

# events go to subscribed connections only (a job's status changes)
if grep -q '"image-rebase"' "$GVM_SRCDIR/proto/methods.def" &&
   grep -q '"image-create"' "$GVM_SRCDIR/proto/methods.def"; then
    for n in 1 2; do
        r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"image-create\",\"params\":{\"volume\":\"local\",\"path\":\"ev$n.qcow2\",\"format\":\"qcow2\",\"size\":1048576},\"id\":1}")
        assert_eq '"qcow2"' "$(field .result.format "$r")" "image-create for the events test"
    done
    out=$(printf '%s\n' '{"jsonrpc":"2.0","method":"events-subscribe","id":"sub"}' \
        '{"jsonrpc":"2.0","method":"image-rebase","params":{"image":"local:ev1.qcow2","backing":null,"mode":"unsafe"},"id":"rb"}' |
        raw --expect 5 --timeout-ms 10000)
    assert_eq '{}' "$(printf '%s\n' "$out" | jq -c 'select(.id == "sub") | .result')" "events-subscribe reply"
    jid=$(printf '%s\n' "$out" | jq -c 'select(.id == "rb") | .result.id')
    evs=$(printf '%s\n' "$out" | jq -r "select(.method == \"event\" and .params.event == \"job-status-change\" and .params.job.id == $jid) | .params.job.status" | paste -sd, -)
    assert_match 'concluded$' "$evs" "job-status-change events on the subscribed connection"
    out=$(printf '%s\n' '{"jsonrpc":"2.0","method":"image-rebase","params":{"image":"local:ev2.qcow2","backing":null,"mode":"unsafe"},"id":"rb2"}' |
        raw --timeout-ms 1500)
    assert_eq 0 "$(printf '%s\n' "$out" | grep -c '"method":"event"')" "no events without events-subscribe"
fi

note "at ${SECONDS}s"
# ---- parse errors -----------------------------------------------------------
r=$(ask '{bad')
expect_error "truncated JSON" "$r" -32700 ParseError
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":1} trailing')
expect_error "trailing garbage" "$r" -32700 ParseError
r=$(ask '{"jsonrpc":"2.0","method":"query-version","method":"query-version","id":1}')
expect_error "duplicate key" "$r" -32700 ParseError
assert_match 'duplicate' "$(field .error.message "$r")" "duplicate key message"
r=$(printf '{"jsonrpc":"2.0","method":"query-version","id":1,"params":{"x":"\xff\xfe"}}\n' |
    raw --expect 1 --timeout-ms 10000)
expect_error "invalid UTF-8" "$r" -32700 ParseError
r=$(printf '{"jsonrpc":"2.0","method":"query-\xc3(version","id":1}\n' | raw --expect 1 --timeout-ms 10000)
expect_error "invalid UTF-8 in method" "$r" -32700 ParseError
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":1,"params":{"x":"a\u0000b"}}')
expect_error "NUL in a string" "$r" -32700 ParseError

note "at ${SECONDS}s"
# ---- invalid requests ---------------------------------------------------------
r=$(ask '{"jsonrpc":"1.0","method":"query-version","id":7}')
expect_error "jsonrpc 1.0" "$r" -32600 InvalidRequest 7
r=$(ask '{"method":"query-version","id":8}')
expect_error "no jsonrpc member" "$r" -32600 InvalidRequest 8
r=$(ask '{"jsonrpc":2.0,"method":"query-version","id":9}')
expect_error "jsonrpc as a number" "$r" -32600 InvalidRequest 9
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":{"a":1}}')
expect_error "object id" "$r" -32600 InvalidRequest
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":[1]}')
expect_error "array id" "$r" -32600 InvalidRequest
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":true}')
expect_error "boolean id" "$r" -32600 InvalidRequest
r=$(ask '[]')
expect_error "empty batch" "$r" -32600 InvalidRequest
r=$(ask '42')
expect_error "a number as request" "$r" -32600 InvalidRequest
r=$(ask '"query-version"')
expect_error "a string as request" "$r" -32600 InvalidRequest
r=$(ask '{"jsonrpc":"2.0","method":5,"id":10}')
expect_error "numeric method" "$r" -32600 InvalidRequest 10
r=$(ask '{"jsonrpc":"2.0","id":11}')
expect_error "no method" "$r" -32600 InvalidRequest 11
r=$(ask '{"jsonrpc":"2.0","method":"query-version","params":"x","id":12}')
expect_error "string params" "$r" -32600 InvalidRequest 12
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":13,"extra":1}')
expect_error "unknown request member" "$r" -32600 InvalidRequest 13
# an invalid request without an id is still answered (id null), as
# JSON-RPC 2.0 prescribes
r=$(ask '{"jsonrpc":"2.0","method":1,"params":"bar"}')
expect_error "invalid request without id" "$r" -32600 InvalidRequest

note "at ${SECONDS}s"
# ---- methods and parameters ------------------------------------------------
r=$(ask '{"jsonrpc":"2.0","method":"no-such-method","id":20}')
expect_error "unknown method" "$r" -32601 MethodNotFound 20
assert_match 'no-such-method' "$(field .error.message "$r")" "unknown method named"
r=$(ask '{"jsonrpc":"2.0","method":"query-version","params":{"bogus":1},"id":21}')
expect_error "unknown param" "$r" -32602 InvalidParams 21
assert_eq '"bogus"' "$(field .error.data.param "$r")" "unknown param data.param"
assert_match "'bogus'" "$(field .error.message "$r")" "unknown param named in message"
r=$(ask '{"jsonrpc":"2.0","method":"volume-info","params":{"name":5},"id":22}')
expect_error "mistyped param" "$r" -32602 InvalidParams 22
assert_eq '"name"' "$(field .error.data.param "$r")" "mistyped param data.param"
assert_match "'name'.*must be a string, not an integer" "$(field .error.message "$r")" "mistyped param message"
r=$(ask '{"jsonrpc":"2.0","method":"volume-info","params":{"name":null},"id":23}')
expect_error "null for a string param" "$r" -32602 InvalidParams 23
r=$(ask '{"jsonrpc":"2.0","method":"volume-info","params":{},"id":24}')
expect_error "missing required param" "$r" -32602 InvalidParams 24
assert_eq '"name"' "$(field .error.data.param "$r")" "missing param data.param"
assert_match "required parameter 'name'" "$(field .error.message "$r")" "missing param message"
r=$(ask '{"jsonrpc":"2.0","method":"volume-add","params":{"name":"x","backend":"dir","debug":"9"},"id":25}')
expect_error "string for an integer param" "$r" -32602 InvalidParams 25
assert_eq '"debug"' "$(field .error.data.param "$r")" "mistyped integer param"
assert_match "must be an integer, not a string" "$(field .error.message "$r")" "mistyped integer message"
r=$(ask '{"jsonrpc":"2.0","method":"volume-add","params":{"name":"x","backend":"dir","servers":{}},"id":26}')
expect_error "object for an array param" "$r" -32602 InvalidParams 26
assert_match "must be an array, not an object" "$(field .error.message "$r")" "mistyped array message"
r=$(ask '{"jsonrpc":"2.0","method":"query-version","params":[1,2],"id":27}')
expect_error "positional params" "$r" -32602 InvalidParams 27
# op-id belongs to mutating methods only, and must be a string
r=$(ask '{"jsonrpc":"2.0","method":"query-version","params":{"op-id":"a"},"id":28}')
expect_error "op-id on a query" "$r" -32602 InvalidParams 28
assert_eq '"op-id"' "$(field .error.data.param "$r")" "op-id on a query names op-id"
r=$(ask '{"jsonrpc":"2.0","method":"volume-remove","params":{"name":"zz","op-id":7},"id":29}')
expect_error "numeric op-id" "$r" -32602 InvalidParams 29
assert_eq '"op-id"' "$(field .error.data.param "$r")" "numeric op-id named"
# a blocking method's own error comes back through the worker
r=$(ask '{"jsonrpc":"2.0","method":"volume-info","params":{"name":"no-such-volume"},"id":30}')
expect_error "volume-info of a missing volume" "$r" -32000 NotFound 30
# an IMAGE reference is checked at the edge, when the table has such methods
if grep -q '"image-info"' "$GVM_SRCDIR/proto/methods.def"; then
    r=$(ask '{"jsonrpc":"2.0","method":"image-info","params":{"image":"gluster+unix://host/vol/img"},"id":31}')
    expect_error "malformed gluster URI" "$r" -32602 InvalidParams 31
    assert_eq '"image"' "$(field .error.data.param "$r")" "malformed gluster URI names the param"
    r=$(ask '{"jsonrpc":"2.0","method":"image-info","params":{"image":true},"id":32}')
    expect_error "boolean IMAGE" "$r" -32602 InvalidParams 32
fi

note "at ${SECONDS}s"
# ---- batches ---------------------------------------------------------------------
r=$(ask '[{"jsonrpc":"2.0","method":"query-version","id":1},{"jsonrpc":"2.0","method":"nope","id":2},{"jsonrpc":"2.0","method":"query-version"},42,{"jsonrpc":"2.0","method":"volume-info","params":{"name":"local"},"id":3},{"jsonrpc":"2.0","method":"volume-info","params":{"name":5},"id":4},{"jsonrpc":"2.0","method":"volume-list","id":5}]')
assert_eq 'true' "$(field 'type == "array"' "$r")" "batch reply is an array"
assert_eq '[1,2,null,3,4,5]' "$(field '[.[].id]' "$r")" "batch reply ids in request order, no notification"
assert_eq '[null,-32601,-32600,null,-32602,null]' "$(field '[.[].error.code]' "$r")" "batch error codes"
assert_eq '1' "$(field '.[0].result.protocol' "$r")" "batch good call"
assert_eq '"local"' "$(field '.[3].result.name' "$r")" "batch blocking call"
assert_eq '"local"' "$(field '.[5].result[0].name' "$r")" "batch inline list"
# all notifications: no reply at all (the next request's reply comes first)
out=$(printf '%s\n%s\n' '[{"jsonrpc":"2.0","method":"query-version"},{"jsonrpc":"2.0","method":"volume-info","params":{"name":"local"}}]' \
    '{"jsonrpc":"2.0","method":"query-version","id":"after"}' | raw --timeout-ms 1500)
assert_eq 1 "$(printf '%s\n' "$out" | grep -c .)" "all-notification batch answered with nothing"
assert_eq '"after"' "$(field .id "$out")" "reply after an all-notification batch"
# a batch over the limit
big=$(for i in $(seq 1 257); do printf '{"jsonrpc":"2.0","method":"query-version","id":%d},' "$i"; done)
r=$(ask "[${big%,}]")
expect_error "batch of 257" "$r" -32600 InvalidRequest
assert_match '256' "$(field .error.message "$r")" "batch limit named"

note "at ${SECONDS}s"
# ---- notifications ---------------------------------------------------------------
out=$(printf '%s\n' \
    '{"jsonrpc":"2.0","method":"query-version"}' \
    '{"jsonrpc":"2.0","method":"no-such-method"}' \
    '{"jsonrpc":"2.0","method":"query-version","params":{"bogus":1}}' \
    '{"jsonrpc":"2.0","method":"volume-info","params":{"name":"no-such-volume"}}' \
    '{"jsonrpc":"2.0","method":"query-version","id":"last"}' | raw --timeout-ms 1500)
assert_eq 1 "$(printf '%s\n' "$out" | grep -c .)" "notifications (good and failing) get no reply"
assert_eq '"last"' "$(field .id "$out")" "only the request with an id is answered"

note "at ${SECONDS}s"
# ---- framing -------------------------------------------------------------------------
# several messages in one write, blank lines and CRLF tolerated
out=$(printf '\n{"jsonrpc":"2.0","method":"query-version","id":1}\r\n\n{"jsonrpc":"2.0","method":"query-version","id":2}\n' |
      raw --expect 2 --timeout-ms 10000)
assert_eq '1,2' "$(printf '%s\n' "$out" | jq -r .id | paste -sd, -)" "pipelined messages with CRLF and blank lines"
# the last message without a newline, then end of file: still answered
out=$(printf '{"jsonrpc":"2.0","method":"query-version","id":"eof"}' | raw --shutdown --expect 1 --timeout-ms 10000)
assert_eq '"eof"' "$(field .id "$out")" "message ended by EOF"

note "at ${SECONDS}s"
# ---- limits ---------------------------------------------------------------------------
# a 2 MiB message: refused, and the same connection goes on at the next '\n'
pad=$TEST_TMP/pad
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'A' >"$pad"
{ printf '{"jsonrpc":"2.0","method":"query-version","id":1,"params":{"x":"'; cat "$pad"
  printf '"}}\n{"jsonrpc":"2.0","method":"query-version","id":"next"}\n'; } >"$TEST_TMP/big"
out=$(raw --expect 2 --timeout-ms 20000 <"$TEST_TMP/big")
first=$(printf '%s\n' "$out" | sed -n 1p)
second=$(printf '%s\n' "$out" | sed -n 2p)
expect_error "2 MiB message" "$first" -32600 InvalidRequest
assert_match '1048576' "$(field .error.message "$first")" "size limit named"
assert_eq '"next"' "$(field .id "$second")" "connection resyncs after an oversized message"
assert_eq 2 "$(printf '%s\n' "$out" | grep -c .)" "one error for one oversized message"
# a 2 MiB line that never ends, then the client leaves
{ printf '{"jsonrpc":"2.0","method":"query-version","params":{"x":"'; cat "$pad"; } |
    raw --timeout-ms 500 >/dev/null
alive "a 2 MiB unterminated message"
# exactly at the limit: parsed (refused for its long string, not its size)
pre='{"jsonrpc":"2.0","method":"query-version","id":1,"params":{"x":"'
suf='"}}'
{ printf '%s' "$pre"; head -c $((1024 * 1024 - ${#pre} - ${#suf})) "$pad"; printf '%s\n' "$suf"; } >"$TEST_TMP/limit"
assert_eq $((1024 * 1024 + 1)) "$(stat -c %s "$TEST_TMP/limit")" "size of the at-the-limit message"
r=$(raw --expect 1 --timeout-ms 20000 <"$TEST_TMP/limit")
expect_error "a message of exactly 1 MiB" "$r" -32602 InvalidParams 1

# nesting: 64 deep refused, 30 deep accepted by the envelope
deep=$(printf '%.0s[' $(seq 1 64))1$(printf '%.0s]' $(seq 1 64))
r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"query-version\",\"id\":1,\"params\":{\"x\":$deep}}")
expect_error "64-deep nesting" "$r" -32600 InvalidRequest
assert_match '32' "$(field .error.message "$r")" "depth limit named"
r=$(ask "$(printf '%.0s[' $(seq 1 64))$(printf '%.0s]' $(seq 1 64))")
expect_error "64-deep batch" "$r" -32600 InvalidRequest
shallow=$(printf '%.0s[' $(seq 1 30))1$(printf '%.0s]' $(seq 1 30))
r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"volume-info\",\"id\":1,\"params\":{\"name\":$shallow}}")
expect_error "30-deep value" "$r" -32602 InvalidParams 1
# brackets inside strings do not count
r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"volume-info\",\"id\":2,\"params\":{\"name\":\"$(printf '%.0s[{' $(seq 1 100))\\\"\"}}")
assert_eq 2 "$(field .id "$r")" "brackets in a string: answered"
[ "$(field .error.code "$r")" != "-32600" ] || check_fail "brackets inside a string counted as nesting: $r"

# strings: over 4096 bytes refused naming the parameter; 4096 is fine
long=$(head -c 5000 /dev/zero | tr '\0' 'n')
r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"volume-info\",\"id\":40,\"params\":{\"name\":\"$long\"}}")
expect_error "5000-byte string" "$r" -32602 InvalidParams 40
assert_eq '"name"' "$(field .error.data.param "$r")" "long string names the param"
assert_match '4096' "$(field .error.message "$r")" "string limit named"
r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"volume-add\",\"id\":41,\"params\":{\"name\":\"x\",\"backend\":\"gluster\",\"servers\":[{\"type\":\"tcp\",\"host\":\"$long\"}]}}")
expect_error "long string nested in an array" "$r" -32602 InvalidParams 41
assert_eq '"servers"' "$(field .error.data.param "$r")" "nested long string names the param"
ok4096=$(head -c 4096 /dev/zero | tr '\0' 'n')
r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"volume-info\",\"id\":42,\"params\":{\"name\":\"$ok4096\"}}")
case $(field .error.message "$r") in *"limit is 4096"*) check_fail "a 4096-byte string was refused: $r";; esac
assert_eq 42 "$(field .id "$r")" "a 4096-byte string is answered"
r=$(ask "{\"jsonrpc\":\"2.0\",\"method\":\"$long\",\"id\":43}")
expect_error "5000-byte method name" "$r" -32600 InvalidRequest 43
[ "$(printf '%s' "$r" | wc -c)" -lt 1000 ] || check_fail "error reply echoes a 5000-byte name"

note "at ${SECONDS}s"
# ---- clients that vanish --------------------------------------------------------------
# mid-message
printf '{"jsonrpc":"2.0","method":"volume-in' | raw --close-after-write
printf '[{"jsonrpc":"2.0","method":"volume-info","params":{"name":"local"},"id":1},{"jsonrpc":"2.0"' |
    raw --close-after-write
alive "clients that disconnect mid-message"
# while their calls run on workers (and with replies still queued)
calls=$TEST_TMP/calls
: >"$calls"
for i in $(seq 1 200); do
    printf '{"jsonrpc":"2.0","method":"volume-info","params":{"name":"local"},"id":%d}\n' "$i" >>"$calls"
done
batch=$(for i in $(seq 1 100); do printf '{"jsonrpc":"2.0","method":"volume-info","params":{"name":"local"},"id":%d},' "$i"; done)
printf '[%s]\n' "${batch%,}" >>"$calls"
bg=""
for i in 1 2 3 4 5; do raw --close-after-write <"$calls" >/dev/null & bg="$bg $!"; done
raw --close-after-write --hold-ms 20 <"$calls" >/dev/null
wait $bg
alive "clients that disconnect while their calls run"
# a client that never reads its replies cannot make the daemon stall
for i in $(seq 1 20); do cat "$calls"; done | raw --close-after-write --hold-ms 300 >/dev/null
alive "a client that does not read"
# all 200 pipelined calls are answered when the client stays
n=$(raw --expect 201 --timeout-ms 20000 <"$calls" | grep -c '"result"')
assert_eq 201 "$n" "200 pipelined blocking calls and a batch all answered"

note "at ${SECONDS}s"
# ---- connection caps -------------------------------------------------------------------
# GVM_MAX_CONN_PER_UID (160) connections held open: the next is refused
cap=$(sed -n 's/^#define GVM_MAX_CONN_PER_UID *\([0-9]*\).*/\1/p' "$GVM_SRCDIR/proto/gvm-proto.h")
[ -n "$cap" ] || fail "cannot read GVM_MAX_CONN_PER_UID"
holders=""
for i in $(seq 1 "$cap"); do
    "$RAW" "$GVM_SOCK" --timeout-ms 120000 </dev/null >/dev/null &
    holders="$holders $!"
done
i=0
while :; do
    n=$(ls -l /proc/"$GVMD_PID"/fd 2>/dev/null | grep -c socket)
    [ "$n" -ge $((cap + 2)) ] && break
    i=$((i+1)); [ $i -lt 300 ] || { check_fail "holders did not connect ($n sockets)"; break; }
    sleep 0.1
done
r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":1}')
expect_error "connection over the per-uid cap" "$r" -32000 Busy
for p in $holders; do kill "$p" 2>/dev/null; done
wait $holders 2>/dev/null
i=0
until r=$(ask '{"jsonrpc":"2.0","method":"query-version","id":"back"}') && [ "$(field .id "$r")" = '"back"' ]; do
    i=$((i+1)); [ $i -lt 50 ] || { check_fail "connections not accepted again after the holders left: $r"; break; }
    sleep 0.1
done

alive "the whole protocol test"
stop_gvmd
[ ! -e "$GVM_SOCK" ] || check_fail "socket file left behind"
if grep -q 'AddressSanitizer\|runtime error' "$GVMD_DIR/gvmd.log"; then
    gvmd_log >&2; check_fail "sanitizer report in the daemon log"; fi
exit 0
