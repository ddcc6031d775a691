#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/fuzz/rpc-seeds.sh METHODS.DEF SEEDDIR DICT — the seed corpus
# and the libFuzzer dictionary of the rpc target (tests/fuzz/fuzz-rpc.c),
# generated from the method table so that a new method gets seeds without
# a change here.
#
# A seed is the mode byte fuzz-rpc.c reads first (bits 0-1, access: 0
# read-write as root, 2 read-only, 3 read-write without privilege; bit 2:
# lockstep, each line sent once the replies it waits for came) followed by
# the lines a client sends.  Per method:
#   NAME.full     every parameter of its spec with a plausible value;
#   NAME.req      images made first (a qcow2 base, an overlay on it, a raw
#                 image), then the method with its required parameters;
#   NAME.ro       the same on the read-only socket (GVM_M_RO methods);
#   NAME.none     the same without privilege (read-write socket, uid 65534);
# plus envelope cases: batches, notifications, malformed JSON, huge numbers,
# invalid UTF-8, control characters, deep nesting, unknown members, CRLF.
# "@ROOT@" in a seed is the fuzzer's directory (fuzz-rpc.c replaces it):
# @ROOT@/vols/a and @ROOT@/vols/b are the directories a dir volume-add may
# register.
set -eu
def=$1 out=$2 dict=$3 root=@ROOT@
mkdir -p "$out"

# One record per method: wire;flags;spec
records=$(sed -n '/^GVM_METHOD(/,/)[[:space:]]*$/p' "$def" | tr '\n' ' ' |
    sed 's/GVM_METHOD(/\n/g' |
    awk -F'"' 'NF >= 5 { f = $3; gsub(/[ ,]/, "", f); print $2 ";" f ";" $4 }')
[ -n "$records" ] || { echo "rpc-seeds.sh: no methods in $def" >&2; exit 1; }

# value METHOD NAME TYPE: a plausible JSON value for a parameter.
value() {
    local m=$1 n=$2 t=$3
    case $t in
    s)
        case $m:$n in
        volume-add:name) echo '"fzvol"';;
        volume-add:path) echo "\"$root/vols/a\"";;
        volume-add:volume) echo '"gv0"';;
        volume-info:name|volume-remove:name) echo '"local"';;
        snapshot-create:name) echo '"s1"';;
        image-rebase:mode) echo '"safe"';;
        domain-disk-xml:mode) echo '"native"';;
        *:volume) echo '"local"';;
        *:path) echo '"fz-c.qcow2"';;
        *:format|*:backing-format) echo '"qcow2"';;
        *:backend) echo '"dir"';;
        *:domain) echo '"test"';;
        *:target) echo '"vda"';;
        *:fix) echo '"adopt-storage"';;
        *:repair) echo '"leaks"';;
        *:compat) echo '"1.1"';;
        *:description) echo '"fuzz"';;
        *:branch) echo '"b1"';;
        *) echo '"x"';;
        esac;;
    i)
        case $n in
        size) echo 1048576;;
        cluster-size) echo 65536;;
        refcount-bits) echo 16;;
        debug) echo 4;;
        offset) echo 0;;
        length) echo 65536;;
        speed) echo 1048576;;
        *) echo 1;;
        esac;;
    j) echo 1;;
    b)
        case $n in
        metadata-only|allow-running|backing-chain|lazy-refcounts) echo true;;
        *) echo false;;
        esac;;
    a)
        case $m:$n in
        volume-add:servers) echo '[{"type":"tcp","host":"127.0.0.1","port":24007}]';;
        domain-attach:disks) echo '[{"target":"vda","image":"local:fz-b.qcow2"}]';;
        *:disks) echo '[{"image":"local:fz-b.qcow2","overlay":"fz-s1.qcow2"}]';;
        *) echo '[]';;
        esac;;
    o) echo '{}';;
    r)
        case $n in
        base|backing) echo '"local:fz-a.qcow2"';;
        *) echo '"local:fz-b.qcow2"';;
        esac;;
    R) echo null;;
    S) echo '"s1"';;
    *) echo null;;
    esac
}

# params METHOD SPEC all|req: the params object.
params() {
    local m=$1 spec=$2 which=$3 p name type opt sep="" o="{"
    for p in $spec; do
        name=${p%%:*}; type=${p#*:}; opt=""
        case $type in *\?) opt=1; type=${type%\?};; esac
        [ "$which" = req ] && [ -n "$opt" ] && continue
        # the gluster parameters only for a gluster volume-add
        case $m:$name in volume-add:volume|volume-add:servers) continue;; esac
        o="$o$sep\"$name\":$(value "$m" "$name" "$type")"; sep=","
    done
    echo "$o}"
}

setup='{"jsonrpc":"2.0","id":"c1","method":"image-create","params":{"volume":"local","path":"fz-a.qcow2","format":"qcow2","size":1048576,"cluster-size":4096}}
{"jsonrpc":"2.0","id":"c2","method":"image-create","params":{"volume":"local","path":"fz-b.qcow2","format":"qcow2","backing":"local:fz-a.qcow2"}}
{"jsonrpc":"2.0","id":"c3","method":"image-create","params":{"volume":"local","path":"fz-r.raw","format":"raw","size":65536}}'


while IFS=';' read -r wire flags spec; do
    [ -n "$wire" ] || continue
    full=$(params "$wire" "$spec" all)
    req=$(params "$wire" "$spec" req)
    printf '\004%s\n' "$setup" >"$out/$wire.full"
    printf '{"jsonrpc":"2.0","id":1,"method":"%s","params":%s}\n' "$wire" "$full" >>"$out/$wire.full"
    printf '\004%s\n{"jsonrpc":"2.0","id":2,"method":"%s","params":%s}\n' \
        "$setup" "$wire" "$req" >"$out/$wire.req"
    case $flags in *GVM_M_MUTATING*)
        # op-id replay: the same call twice
        printf '\004%s\n' "$setup" >"$out/$wire.opid"
        if [ "$full" = "{}" ]; then opid='{"op-id":"op1"}'; else opid="${full%\}},\"op-id\":\"op1\"}"; fi
        for i in 3 4; do
            printf '{"jsonrpc":"2.0","id":%d,"method":"%s","params":%s}\n' \
                "$i" "$wire" "$opid" >>"$out/$wire.opid"
        done;;
    esac
    printf '\002{"jsonrpc":"2.0","id":"ro","method":"%s","params":%s}\n' "$wire" "$full" >"$out/$wire.ro"
    printf '\003{"jsonrpc":"2.0","id":"none","method":"%s","params":%s}\n' "$wire" "$req" >"$out/$wire.none"
done <<<"$records"

# a gluster volume-add (refused fast in the fuzzer: no gluster is reached)
printf '\000{"jsonrpc":"2.0","id":1,"method":"volume-add","params":{"name":"gv","backend":"gluster","volume":"gv0","servers":[{"type":"tcp","host":"127.0.0.1"},{"type":"unix","socket":"/nonexistent.sock"},{"type":"rdma","host":"::1","port":24008}]}}\n' >"$out/volume-add.gluster"
printf '\000{"jsonrpc":"2.0","id":1,"method":"image-info","params":{"image":"gluster://127.0.0.1/gv0/a.qcow2"}}\n{"jsonrpc":"2.0","id":2,"method":"image-info","params":{"image":"json:{\\"file\\":{\\"driver\\":\\"gluster\\",\\"volume\\":\\"gv0\\",\\"path\\":\\"a\\",\\"server\\":[{\\"type\\":\\"tcp\\",\\"host\\":\\"127.0.0.1\\"}]}}"}}\n' >"$out/imageref.gluster"
# a dir volume-add, an image on it, and its removal
printf '\004{"jsonrpc":"2.0","id":1,"method":"volume-add","params":{"name":"va","backend":"dir","path":"%s/vols/a"}}\n{"jsonrpc":"2.0","id":2,"method":"image-create","params":{"volume":"va","path":"x/y.qcow2","format":"qcow2","size":65536}}\n{"jsonrpc":"2.0","id":3,"method":"image-info","params":{"image":"%s/vols/a/x/y.qcow2","backing-chain":true}}\n{"jsonrpc":"2.0","id":4,"method":"image-delete","params":{"image":"va:x/y.qcow2"}}\n{"jsonrpc":"2.0","id":5,"method":"volume-remove","params":{"name":"va"}}\n' "$root" "$root" >"$out/volume-add.dir"
# a chain worked on: snapshot, commit, pull, rebase, audit, jobs
printf '\004%s\n%s\n' "$setup" '{"jsonrpc":"2.0","id":10,"method":"snapshot-create","params":{"name":"s1","disks":[{"image":"local:fz-b.qcow2"}]}}
{"jsonrpc":"2.0","id":11,"method":"snapshot-list","params":{}}
{"jsonrpc":"2.0","id":12,"method":"block-pull","params":{"image":"local:fz-b.qcow2"}}
{"jsonrpc":"2.0","id":13,"method":"job-wait","params":{"id":1,"timeout":1}}
{"jsonrpc":"2.0","id":14,"method":"block-commit","params":{"top":"local:fz-b.qcow2"}}
{"jsonrpc":"2.0","id":15,"method":"query-jobs"}
{"jsonrpc":"2.0","id":16,"method":"chain-audit","params":{"fix":"adopt-storage"}}
{"jsonrpc":"2.0","id":17,"method":"image-rebase","params":{"image":"local:fz-b.qcow2","backing":null,"mode":"unsafe"}}
{"jsonrpc":"2.0","id":18,"method":"snapshot-delete","params":{"snapshot":"s1"}}
{"jsonrpc":"2.0","id":19,"method":"image-checksum","params":{"image":3}}' >"$out/chain"
printf '\004%s\n%s\n' "$setup" '{"jsonrpc":"2.0","id":20,"method":"domain-attach","params":{"domain":"test","disks":[{"target":"vda","image":"local:fz-b.qcow2"}]}}
{"jsonrpc":"2.0","id":21,"method":"snapshot-create","params":{"name":"s2","domain":"test"}}
{"jsonrpc":"2.0","id":22,"method":"snapshot-revert","params":{"snapshot":"s2"}}
{"jsonrpc":"2.0","id":23,"method":"domain-list"}
{"jsonrpc":"2.0","id":24,"method":"domain-detach","params":{"domain":"test"}}
{"jsonrpc":"2.0","id":25,"method":"query-virt"}' >"$out/domain"
printf '\004{"jsonrpc":"2.0","id":1,"method":"events-subscribe"}\n%s\n{"jsonrpc":"2.0","id":2,"method":"block-pull","params":{"image":"local:fz-b.qcow2","speed":1}}\n{"jsonrpc":"2.0","id":3,"method":"job-cancel","params":{"id":1}}\n{"jsonrpc":"2.0","id":4,"method":"job-wait","params":{"id":1}}\n{"jsonrpc":"2.0","id":5,"method":"job-dismiss","params":{"id":1}}\n' "$setup" >"$out/events"
# the same chain pipelined: the calls race on the workers
cp "$out/chain" "$out/chain.pipelined"; printf '\000' | dd of="$out/chain.pipelined" bs=1 count=1 conv=notrunc status=none

# ---- the envelope -----------------------------------------------------------
e() { printf "$2" >"$out/env.$1"; }
e batch '\000[{"jsonrpc":"2.0","id":1,"method":"query-version"},{"jsonrpc":"2.0","method":"volume-list"},{"jsonrpc":"2.0","id":"x","method":"image-info","params":{"image":"local:none"}},{"jsonrpc":"2.0","id":null,"method":"nope"},5,[]]\n'
e batch-notif '\000[{"jsonrpc":"2.0","method":"query-version"},{"jsonrpc":"2.0","method":"query-jobs"}]\n'
e batch-empty '\000[]\n'
e batch-ro '\002[{"jsonrpc":"2.0","id":1,"method":"image-create","params":{}},{"jsonrpc":"2.0","id":2,"method":"image-list"}]\n'
e notif '\000{"jsonrpc":"2.0","method":"image-create","params":{"volume":"local","path":"n.qcow2","format":"qcow2","size":4096}}\n{"jsonrpc":"2.0","id":1,"method":"image-list"}\n'
e malformed '\000{"jsonrpc":"2.0","id":1,"method":"query-version"\n{]\n"just a string"\n{"jsonrpc":"2.0","id":1,"method":"query-version","id":2}\n'
e bignum '\000{"jsonrpc":"2.0","id":99999999999999999999,"method":"job-wait","params":{"id":18446744073709551616}}\n{"jsonrpc":"2.0","id":-1e400,"method":"query-version"}\n{"jsonrpc":"2.0","id":1,"method":"image-map","params":{"image":"local:fz-a.qcow2","offset":9223372036854775807,"length":9223372036854775807}}\n'
e utf8 '\000{"jsonrpc":"2.0","id":"\xff\xfe","method":"query-version"}\n{"jsonrpc":"2.0","id":"\xc3\xa9","method":"image-info","params":{"image":"local:\xe2\x82\xac\xf0\x9f\x98\x80"}}\n{"jsonrpc":"2.0","id":"\\ud800","method":"x"}\n{"jsonrpc":"2.0","id":"a\\u0000b","method":"query-version"}\n'
e ctrl '\000{"jsonrpc":"2.0","id":"\x01\x1f","method":"query-version"}\n\x00\x01\x02\n{"jsonrpc":"2.0","id":"t","method":"image-create","params":{"volume":"local","path":"a\\u0001\\n/../b","format":"raw","size":1}}\n'
e deep '\000{"jsonrpc":"2.0","id":1,"method":"query-version","params":{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}\n'
e members '\000{"jsonrpc":"2.0","id":1,"method":"query-version","extra":1}\n{"jsonrpc":"1.0","id":2,"method":"query-version"}\n{"id":3,"method":"query-version"}\n{"jsonrpc":"2.0","id":{},"method":"query-version"}\n{"jsonrpc":"2.0","id":4,"method":7}\n{"jsonrpc":"2.0","id":5,"method":"query-version","params":[1]}\n{"jsonrpc":"2.0","id":6,"method":"query-version","params":"x"}\n{"jsonrpc":"2.0","id":7,"method":"image-list","params":{"volume":1,"zzz":2}}\n'
e crlf '\000{"jsonrpc":"2.0","id":1,"method":"query-version"}\r\n\r\n\n{"jsonrpc":"2.0","id":2,"method":"query-capabilities"}'
e opid '\000{"jsonrpc":"2.0","id":1,"method":"image-create","params":{"volume":"local","path":"o.qcow2","format":"qcow2","size":65536,"op-id":"k"}}\n{"jsonrpc":"2.0","id":2,"method":"image-create","params":{"volume":"local","path":"o.qcow2","format":"qcow2","size":65536,"op-id":"k"}}\n{"jsonrpc":"2.0","id":3,"method":"query-version","params":{"op-id":"k"}}\n{"jsonrpc":"2.0","id":4,"method":"image-delete","params":{"image":"local:o.qcow2","op-id":""}}\n'
e refs '\000{"jsonrpc":"2.0","id":1,"method":"image-info","params":{"image":"local:../../etc/passwd"}}\n{"jsonrpc":"2.0","id":2,"method":"image-info","params":{"image":"/etc/passwd"}}\n{"jsonrpc":"2.0","id":3,"method":"image-info","params":{"image":-1}}\n{"jsonrpc":"2.0","id":4,"method":"image-info","params":{"image":"nosuch:x"}}\n{"jsonrpc":"2.0","id":5,"method":"image-info","params":{"image":"json:{}"}}\n'

# ---- the dictionary ------------------------------------------------------------
{
    for w in jsonrpc 2.0 method params id op-id result error; do echo "\"\\\"$w\\\"\""; done
    while IFS=';' read -r wire flags spec; do
        [ -n "$wire" ] || continue
        echo "\"\\\"$wire\\\"\""
        for p in $spec; do echo "\"\\\"${p%%:*}\\\"\""; done
    done <<<"$records"
    for w in @ROOT@/vols/a @ROOT@/vols/b local: local gluster:// json: qcow2 raw safe unsafe adopt-storage leaks \
             all native fuse dir gluster tcp unix rdma test vda 0.10 1.1 \
             file driver volume path server host port type socket overlay image target; do
        echo "\"\\\"$w\\\"\""
    done
    for w in null true false 1048576 9223372036854775807 -1 0 1e308 '\u0000' '\ud800' \
             '{}' '[]' '":' '{"jsonrpc":"2.0","id":1,"method":' '"params":{' '},' '\n' '\r\n'; do
        printf '"%s"\n' "$(printf '%s' "$w" | sed 's/\\/\\\\/g; s/"/\\"/g')"
    done
} | sort -u >"$dict"

echo "# $(find "$out" -type f | wc -l) rpc seeds ($(echo "$records" | wc -l) methods), dictionary $(wc -l <"$dict") entries" >&2
