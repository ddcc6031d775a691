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
# Every message is kept in $TEST_TMP/errors.log for assert_error_names.
expect_error() {
    got=$(printf '%s' "$2" | jq -r '[.error.code, .error.data.class, (.id|tojson),
        .jsonrpc, (.error.message|type)] | map(tostring) | join(" ")' 2>/dev/null)
    printf '%s\t%s\n' "$1" "$(printf '%s' "$2" | jq -r '.error.message // empty' 2>/dev/null)" \
        >>"$TEST_TMP/errors.log"
    assert_eq "$3 $4 ${5:-null} 2.0 string" "$got" "$1: code class id jsonrpc message ($2)"
}
# expect_errors: a table on stdin, one request a line, fields separated by
# tabs ("-" for none; lines starting with # are comments):
#   WHAT  REQUEST  CODE  CLASS  ID  PARAM  MESSAGE
# REQUEST is sent alone (ask); its reply is the error CODE CLASS answering
# ID (JSON, null for none), as expect_error checks; PARAM is the JSON of
# error.data.param; MESSAGE an extended regex the error message matches.
expect_errors() {
    local what req code cls id param msg r
    while IFS=$'\t' read -r what req code cls id param msg; do
        case $what in ''|'#'*) continue;; esac
        r=$(ask "$req")
        expect_error "$what" "$r" "$code" "$cls" "$id"
        [ "$param" = - ] || assert_eq "$param" "$(field .error.data.param "$r")" "$what: data.param"
        [ "$msg" = - ] || assert_match "$msg" "$(field .error.message "$r")" "$what: message"
    done
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
expect_errors <<'EOT'
truncated JSON	{bad	-32700	ParseError	null	-	-
trailing garbage	{"jsonrpc":"2.0","method":"query-version","id":1} trailing	-32700	ParseError	null	-	-
duplicate key	{"jsonrpc":"2.0","method":"query-version","method":"query-version","id":1}	-32700	ParseError	null	-	duplicate
NUL in a string	{"jsonrpc":"2.0","method":"query-version","id":1,"params":{"x":"a\u0000b"}}	-32700	ParseError	null	-	-
EOT
r=$(printf '{"jsonrpc":"2.0","method":"query-version","id":1,"params":{"x":"\xff\xfe"}}\n' |
    raw --expect 1 --timeout-ms 10000)
expect_error "invalid UTF-8" "$r" -32700 ParseError
r=$(printf '{"jsonrpc":"2.0","method":"query-\xc3(version","id":1}\n' | raw --expect 1 --timeout-ms 10000)
expect_error "invalid UTF-8 in method" "$r" -32700 ParseError

note "at ${SECONDS}s"
# ---- invalid requests ---------------------------------------------------------
expect_errors <<'EOT'
jsonrpc 1.0	{"jsonrpc":"1.0","method":"query-version","id":7}	-32600	InvalidRequest	7	-	-
no jsonrpc member	{"method":"query-version","id":8}	-32600	InvalidRequest	8	-	-
jsonrpc as a number	{"jsonrpc":2.0,"method":"query-version","id":9}	-32600	InvalidRequest	9	-	-
object id	{"jsonrpc":"2.0","method":"query-version","id":{"a":1}}	-32600	InvalidRequest	null	-	-
array id	{"jsonrpc":"2.0","method":"query-version","id":[1]}	-32600	InvalidRequest	null	-	-
boolean id	{"jsonrpc":"2.0","method":"query-version","id":true}	-32600	InvalidRequest	null	-	-
empty batch	[]	-32600	InvalidRequest	null	-	-
a number as request	42	-32600	InvalidRequest	null	-	-
a string as request	"query-version"	-32600	InvalidRequest	null	-	-
numeric method	{"jsonrpc":"2.0","method":5,"id":10}	-32600	InvalidRequest	10	-	-
no method	{"jsonrpc":"2.0","id":11}	-32600	InvalidRequest	11	-	-
string params	{"jsonrpc":"2.0","method":"query-version","params":"x","id":12}	-32600	InvalidRequest	12	-	-
unknown request member	{"jsonrpc":"2.0","method":"query-version","id":13,"extra":1}	-32600	InvalidRequest	13	-	-
# an invalid request without an id is still answered (id null), as
# JSON-RPC 2.0 prescribes
invalid request without id	{"jsonrpc":"2.0","method":1,"params":"bar"}	-32600	InvalidRequest	null	-	-
EOT

note "at ${SECONDS}s"
# ---- methods and parameters ------------------------------------------------
expect_errors <<'EOT'
unknown method	{"jsonrpc":"2.0","method":"no-such-method","id":20}	-32601	MethodNotFound	20	-	no-such-method
unknown param	{"jsonrpc":"2.0","method":"query-version","params":{"bogus":1},"id":21}	-32602	InvalidParams	21	"bogus"	'bogus'
mistyped param	{"jsonrpc":"2.0","method":"volume-info","params":{"name":5},"id":22}	-32602	InvalidParams	22	"name"	'name'.*must be a string, not an integer
null for a string param	{"jsonrpc":"2.0","method":"volume-info","params":{"name":null},"id":23}	-32602	InvalidParams	23	-	-
missing required param	{"jsonrpc":"2.0","method":"volume-info","params":{},"id":24}	-32602	InvalidParams	24	"name"	required parameter 'name'
string for an integer param	{"jsonrpc":"2.0","method":"volume-add","params":{"name":"x","backend":"dir","debug":"9"},"id":25}	-32602	InvalidParams	25	"debug"	must be an integer, not a string
object for an array param	{"jsonrpc":"2.0","method":"volume-add","params":{"name":"x","backend":"dir","servers":{}},"id":26}	-32602	InvalidParams	26	-	must be an array, not an object
positional params	{"jsonrpc":"2.0","method":"query-version","params":[1,2],"id":27}	-32602	InvalidParams	27	-	-
# op-id belongs to mutating methods only, and must be a string
op-id on a query	{"jsonrpc":"2.0","method":"query-version","params":{"op-id":"a"},"id":28}	-32602	InvalidParams	28	"op-id"	-
numeric op-id	{"jsonrpc":"2.0","method":"volume-remove","params":{"name":"zz","op-id":7},"id":29}	-32602	InvalidParams	29	"op-id"	-
# a blocking method's own error comes back through the worker
volume-info of a missing volume	{"jsonrpc":"2.0","method":"volume-info","params":{"name":"no-such-volume"},"id":30}	-32000	NotFound	30	-	-
EOT
# an IMAGE reference is checked at the edge, when the table has such methods
if grep -q '"image-info"' "$GVM_SRCDIR/proto/methods.def"; then
    expect_errors <<'EOT'
malformed gluster URI	{"jsonrpc":"2.0","method":"image-info","params":{"image":"gluster+unix://host/vol/img"},"id":31}	-32602	InvalidParams	31	"image"	-
boolean IMAGE	{"jsonrpc":"2.0","method":"image-info","params":{"image":true},"id":32}	-32602	InvalidParams	32	-	-
EOT
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
# No error names anything by a bare catalog id (issue 16).
assert_error_names
stop_gvmd
[ ! -e "$GVM_SOCK" ] || check_fail "socket file left behind"
if grep -q 'AddressSanitizer\|runtime error' "$GVMD_DIR/gvmd.log"; then
    gvmd_log >&2; check_fail "sanitizer report in the daemon log"; fi
exit 0
