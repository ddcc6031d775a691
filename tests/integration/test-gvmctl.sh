#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-gvmctl.sh — gvmctl's command line contract: help and bash completion
# built from proto/methods.def, human (--bytes) and --json output, parameter
# conversion, and the exit codes (1 RPC error, 2 usage, 3 cannot connect).
# tests/integration/test-transcript.sh checks the human output whole.
. "$GVM_TESTDIR/lib.sh"
need jq qemu-img

out=$TEST_TMP/out
err=$TEST_TMP/err

# run_rc EXPECTED_RC ARGS...: run gvmctl, capture stdout/stderr, check rc.
run_rc() {
    want=$1; shift
    "$GVMCTL" "$@" >"$out" 2>"$err"
    rc=$?
    [ "$rc" = "$want" ] || check_fail "gvmctl $*: exit $rc, expected $want; stderr: $(cat "$err")"
}

# ---- without a daemon -------------------------------------------------------

run_rc 0 --version
assert_match '^gvmctl [0-9]+\.[0-9]+\.[0-9]+' "$(cat "$out")" "--version"

# help lists every method of methods.def, with its help line
run_rc 0 help
methods=$(sed -n 's/^GVM_METHOD([a-z_0-9]*, *"\([^"]*\)".*/\1/p' "$GVM_SRCDIR/proto/methods.def")
[ -n "$methods" ] || fail "no methods found in methods.def"
n=0
for m in $methods; do
    grep -Eq "^  $m +[A-Z]" "$out" || check_fail "help does not list $m"
    n=$((n+1))
done
note "help lists all $n methods"
run_rc 0 --help
grep -q '^  volume-list ' "$out" || check_fail "--help lacks the command list"

# help COMMAND: params with types and optional markers
run_rc 0 help volume-add
grep -Eq -- '--name +STRING +required' "$out" || check_fail "help volume-add: --name line: $(cat "$out")"
grep -Eq -- '--servers +JSON-ARRAY +optional' "$out" || check_fail "help volume-add: --servers line"
grep -Eq -- '--debug +INTEGER +optional' "$out" || check_fail "help volume-add: --debug line"
grep -Eq -- '--op-id +STRING +optional' "$out" || check_fail "help volume-add: mutating methods take --op-id"
grep -q 'Usage: gvmctl .* volume-add --name STRING --backend STRING \[--volume STRING\]' "$out" ||
    check_fail "help volume-add: usage line: $(head -1 "$out")"
run_rc 0 help volume-list
grep -q 'No parameters' "$out" || check_fail "help volume-list should say it has no parameters"
run_rc 2 help no-such-method
assert_match "unknown command 'no-such-method'" "$(cat "$err")" "help of an unknown command"

# the man page lists every method (man/update-commands.py regenerates it)
python3 "$GVM_SRCDIR/man/update-commands.py" --check ||
    check_fail "man/gvmctl.1 is out of date with proto/methods.def"
if command -v man >/dev/null 2>&1; then
    for page in gvmctl.1 gvmd.8; do
        w=$(man --warnings -l -E UTF-8 "$GVM_SRCDIR/man/$page" 2>&1 >/dev/null)
        [ -z "$w" ] || check_fail "man $page renders with warnings: $w"
    done
fi

# the bash completion is generated from the same table: every command, and
# each command's parameters
comp=$GVM_BUILDDIR/contrib/bash-completion/gvmctl
if [ -f "$comp" ]; then
    bash -n "$comp" || check_fail "the bash completion is not valid bash"
    for m in $methods; do
        grep -Eq "^ +$m\) params=" "$comp" || check_fail "the bash completion lacks $m"
    done
    words=$(bash -c '. "$1"; COMP_WORDS=(gvmctl image-create --ba); COMP_CWORD=2; _gvmctl; echo "${COMPREPLY[*]}"' _ "$comp")
    assert_eq "--backing --backing-format" "$words" "completion of image-create --ba"
else
    check_fail "no bash completion was built at $comp"
fi
run_rc 0 --help
grep -q -- '--bytes' "$out" || check_fail "--help does not mention --bytes"
grep -q '…' "$out" || check_fail "--help does not say long names are elided with …"

# usage errors (no connection is attempted: the socket does not exist)
nosock=$TEST_TMP/nothing-here.sock
run_rc 2 --socket "$nosock"
run_rc 2 --socket "$nosock" no-such-method
run_rc 2 --socket "$nosock" --bogus-option volume-list
run_rc 2 --socket "$nosock" volume-info --nmae x
assert_match "volume-info has no parameter '--nmae'" "$(cat "$err")" "unknown param message"
assert_match "Valid parameters of volume-info: --name" "$(cat "$err")" "unknown param lists the valid ones"
run_rc 2 --socket "$nosock" volume-add --name x --backend dir --debug high
assert_match "--debug: 'high' is not an integer" "$(cat "$err")" "integer conversion"
run_rc 2 --socket "$nosock" volume-add --name x --backend dir --debug 3x
# SIZE parameters take units; other integers do not
run_rc 2 --socket "$nosock" image-create --volume local --path x --format raw --size 1X
assert_match "--size: '1X' is not a size" "$(cat "$err")" "size conversion: bad unit"
run_rc 2 --socket "$nosock" image-create --volume local --path x --format raw --size 1.5G
run_rc 2 --socket "$nosock" image-create --volume local --path x --format raw --size 99999999P
assert_match "is not a size" "$(cat "$err")" "size conversion: overflow"
run_rc 2 --socket "$nosock" volume-add --name x --backend dir --debug 1K
assert_match "--debug: '1K' is not an integer" "$(cat "$err")" "a plain integer takes no unit"
run_rc 0 help image-create
grep -Eq -- '--size +SIZE +optional' "$out" || check_fail "help image-create: --size is a SIZE"
run_rc 0 help block-pull
grep -Eq -- '--base +IMAGE\|none +optional' "$out" || check_fail "help block-pull: --base is IMAGE|none"
run_rc 2 --socket "$nosock" volume-add --name x --backend dir --servers '[{"type":'
assert_match "--servers: not valid JSON" "$(cat "$err")" "JSON conversion"
run_rc 2 --socket "$nosock" volume-add --name x --backend dir --servers '{"type":"tcp"}'
assert_match "expected a JSON array" "$(cat "$err")" "array type check"
run_rc 2 --socket "$nosock" volume-info --name
assert_match "--name needs a value" "$(cat "$err")" "missing value"
run_rc 2 --socket "$nosock" volume-info --name a --name b
run_rc 2 --socket "$nosock" --params '[1]' volume-list
run_rc 2 --socket "$nosock" --params '{bad' volume-list

# daemon not running: exit 3 naming the socket
run_rc 3 --socket "$nosock" volume-list
assert_match "cannot connect to gvmd at $nosock" "$(cat "$err")" "connect failure message"
GVMCTL_SOCKET=$nosock run_rc 3 query-version
assert_match "$nosock" "$(cat "$err")" "GVMCTL_SOCKET is the default socket"
# a socket file nobody listens on
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TEST_TMP/dead.sock" 2>/dev/null &&
    { run_rc 3 --socket "$TEST_TMP/dead.sock" volume-list; }

# ---- with a daemon ------------------------------------------------------------

start_gvmd

# volume-list: table by default, raw JSON with --json
run_rc 0 --socket "$GVM_SOCK" volume-list
head -1 "$out" | grep -Eq '(^| )NAME +BACKEND( |$)' || check_fail "volume-list table header: $(head -1 "$out")"
# the NAME column of some row is 'local' (the default volume)
awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "NAME") c = i; next }
     c && $c == "local" { found = 1 } END { exit !found }' "$out" ||
    check_fail "volume-list table lacks the default 'local' volume: $(cat "$out")"
# columns are aligned: every row's BACKEND starts where the header's does
col=$(head -1 "$out" | grep -bo 'BACKEND' | head -1 | cut -d: -f1)
awk -v c="$col" 'NR > 1 && substr($0, c + 1, 1) == " " { bad = 1 } END { exit bad }' "$out" ||
    check_fail "volume-list table columns are not aligned: $(cat "$out")"
run_rc 0 --socket "$GVM_SOCK" --json volume-list
jq -e 'type == "array" and (map(.name) | index("local")) != null' "$out" >/dev/null ||
    check_fail "volume-list --json: $(cat "$out")"
# table rows = JSON entries (+ header)
rows=$("$GVMCTL" --socket "$GVM_SOCK" volume-list | wc -l)
assert_eq "$(( $(jq length "$out") + 1 ))" "$rows" "table rows"
# global options may also follow the command
run_rc 0 --socket "$GVM_SOCK" volume-list --json
jq -e 'type == "array"' "$out" >/dev/null || check_fail "volume-list --json after the command"

# an object result: key: value lines
run_rc 0 --socket "$GVM_SOCK" query-version
assert_match '^version: +[0-9]' "$(cat "$out")" "query-version human output"
run_rc 0 --socket "$GVM_SOCK" --json query-version
assert_eq 1 "$(jq .protocol "$out")" "query-version --json"

# --params merged with --name values (--name wins)
mkdir -p "$TEST_TMP/vol2"
run_rc 0 --socket "$GVM_SOCK" --json --params "{\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\",\"name\":\"ignored\"}" volume-add --name vol2
assert_eq '"vol2"' "$(jq .name "$out")" "volume-add through --params + --name"
run_rc 0 --socket "$GVM_SOCK" --json volume-list
jq -e 'map(.name) | index("vol2") != null' "$out" >/dev/null || check_fail "vol2 not listed"
jq -e 'map(.name) | index("ignored") == null' "$out" >/dev/null || check_fail "--params name overrode --name"

# RPC error: exit 1 with the message and class
run_rc 1 --socket "$GVM_SOCK" volume-info --name no-such-volume
assert_match '^gvmctl: error: .*no-such-volume.* \(NotFound\)$' "$(cat "$err")" "RPC error message"
[ -s "$out" ] && check_fail "RPC error printed something on stdout: $(cat "$out")"
run_rc 1 --socket "$GVM_SOCK" --json volume-info --name no-such-volume
assert_eq NotFound "$(jq -r .data.class "$err")" "RPC error as JSON on stderr"
assert_eq -32000 "$(jq -r .code "$err")" "RPC error code"
# missing required parameter: the daemon says InvalidParams naming it
run_rc 1 --socket "$GVM_SOCK" --json volume-info
assert_eq InvalidParams "$(jq -r .data.class "$err")" "missing param class"
assert_match 'name' "$(jq -r .message "$err")" "missing param is named"

# parameter types against a real daemon: INTEGER, IMAGE (id or string),
# SIZE, IMAGE|none, BOOL (bare flag, word, bad word)
run_rc 0 --socket "$GVM_SOCK" --json image-create --volume local --path ctl-base.qcow2 --format qcow2 --size 1048576
base_id=$(jq .id "$out")
assert_eq 1048576 "$(jq '."virtual-size"' "$out")" "image-create --size"
for sz in 2M:2097152 64KiB:65536 1g:1073741824 3MB:3145728; do
    run_rc 0 --socket "$GVM_SOCK" --json image-create --volume local --path "ctl-${sz%%:*}.qcow2" --format qcow2 --size "${sz%%:*}"
    assert_eq "${sz##*:}" "$(qemu-img info --output=json "$GVMD_DIR/state/images/ctl-${sz%%:*}.qcow2" | jq '."virtual-size"')" \
        "image-create --size ${sz%%:*}: qemu-img's virtual size"
    rpc image-delete "{\"image\":\"local:ctl-${sz%%:*}.qcow2\"}" >/dev/null || check_fail "image-delete ctl-${sz%%:*}.qcow2"
done
run_rc 0 --socket "$GVM_SOCK" --json image-create --volume local --path ctl-top.qcow2 --format qcow2 --backing local:ctl-base.qcow2
assert_eq "$base_id" "$(jq .backing "$out")" "image-create --backing VOLUME:PATH"
run_rc 0 --socket "$GVM_SOCK" --json image-info --image "$base_id"
assert_eq '"ctl-base.qcow2"' "$(jq .path "$out")" "an all-digits IMAGE is a catalog id"
run_rc 0 --socket "$GVM_SOCK" --json image-info --image local:ctl-top.qcow2 --backing-chain
assert_eq 2 "$(jq '.chain | length' "$out")" "bare --backing-chain means true"
run_rc 0 --socket "$GVM_SOCK" --json image-info --image local:ctl-top.qcow2 --backing-chain no
assert_eq null "$(jq '.chain' "$out")" "--backing-chain no"
run_rc 0 --socket "$GVM_SOCK" --json image-info --image local:ctl-top.qcow2 --backing-chain off
assert_eq null "$(jq '.chain' "$out")" "--backing-chain off"
run_rc 0 --socket "$GVM_SOCK" --json image-info --image local:ctl-top.qcow2 --backing-chain on
assert_eq 2 "$(jq '.chain | length' "$out")" "--backing-chain on"
run_rc 2 --socket "$GVM_SOCK" image-info --image local:ctl-top.qcow2 --backing-chain=maybe
assert_match "is not a boolean" "$(cat "$err")" "boolean conversion"
# human output of an object with a nested table
run_rc 0 --socket "$GVM_SOCK" image-info --image local:ctl-top.qcow2 --backing-chain
grep -Eq '^backing chain \(top to base\):$' "$out" || check_fail "image-info: no chain heading: $(cat "$out")"
grep -Eq '^  IMAGE +FORMAT +VIRTUAL +ALLOCATED +BACKING$' "$out" ||
    check_fail "image-info: the chain is not a table of one line per layer: $(cat "$out")"
grep -Eq '^  local:ctl-base.qcow2 +qcow2 +1.0 MiB ' "$out" || check_fail "image-info: the base's line: $(cat "$out")"
grep -q '[{}]' "$out" && check_fail "image-info: JSON in the human output: $(cat "$out")"
# sizes: binary units by default, exact bytes with --bytes
assert_match '^virtual size: +1.0 MiB$' "$(grep '^virtual size:' "$out")" "image-info: human size"
run_rc 0 --socket "$GVM_SOCK" --bytes image-info --image local:ctl-top.qcow2
assert_match '^virtual size: +1048576$' "$(grep '^virtual size:' "$out")" "image-info --bytes"
run_rc 0 --socket "$GVM_SOCK" image-info --image local:ctl-top.qcow2 --bytes
assert_match '^virtual size: +1048576$' "$(grep '^virtual size:' "$out")" "--bytes after the command"

# --wait: the job returned by image-rebase is waited for (job-wait) and the
# concluded job printed; --backing none is JSON null (IMAGE|none)
run_rc 0 --socket "$GVM_SOCK" --wait --json image-rebase --image local:ctl-top.qcow2 --backing none
assert_eq concluded "$(jq -r .status "$out")" "--wait prints the concluded job"
assert_eq null "$(jq -c '.error // null' "$out")" "rebase job error"
audit_clean "after gvmctl --wait image-rebase"
# job-cancel of a job that had concluded: the job as it is, and a note
run_rc 0 --socket "$GVM_SOCK" job-cancel --id "$(jq .id "$out")"
assert_match "had already concluded \(done\); nothing was cancelled" "$(cat "$err")" "job-cancel too late says so"
run_rc 0 --socket "$GVM_SOCK" --json image-info --image local:ctl-top.qcow2
assert_eq null "$(jq .backing "$out")" "rebase onto null through gvmctl"
# without --wait the job comes back at once, not concluded yet or concluded
run_rc 0 --socket "$GVM_SOCK" --json image-rebase --image local:ctl-top.qcow2 --backing "$base_id" --mode unsafe
jq -e 'has("id") and has("status") and has("type")' "$out" >/dev/null ||
    check_fail "image-rebase did not return a job: $(cat "$out")"
rpc job-wait "{\"id\":$(jq .id "$out"),\"timeout\":60}" >/dev/null || check_fail "job-wait of the unsafe rebase"

# the read-only socket refuses a mutating method
run_rc 1 --socket "$GVM_RO_SOCK" volume-remove --name vol2
run_rc 0 --socket "$GVM_RO_SOCK" volume-list

exit 0
