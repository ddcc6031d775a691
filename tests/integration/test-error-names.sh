#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-error-names.sh — errors name what they are about (issue 16): images
# as VOLUME:PATH, snapshots and domains by name, never by a bare catalog id,
# and say what to do next.  The common refusals are driven on the dir
# volume and every message is collected (rpc_err, GVM_COLLECT_ERRORS) for
# assert_error_names:
#   image-delete of a backing image, of a domain's disk, of an image a
#   snapshot records; domain-attach of a frozen image, of another domain's
#   disk; snapshot-create of a frozen image, of a domain's disk given as an
#   image; domain-detach of a domain with snapshots; job-cancel, job-wait,
#   job-dismiss of a missing job; snapshot-info of a missing snapshot.
# Then JOB tells the truth: "created", "started", "finished" (epoch seconds,
# in that order) and "image-names" (VOLUME:PATH of "images", as at creation,
# though the commit deleted its top).
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img
export GVM_COLLECT_ERRORS=1

start_gvmd
SUB=names
mkdir -p "$GVMD_DIR/state/images/$SUB"

# refused WHAT CLASS REGEX METHOD PARAMS: METHOD fails with CLASS and a
# message matching REGEX.
refused() {
    local e
    e=$(rpc_err "$4" "$5") || { check_fail "$1: not refused"; return; }
    assert_eq "$2" "$(err_class "$e")" "$1: class"
    assert_match "$3" "$(err_msg "$e")" "$1: message"
}

mk_local base.qcow2
mk_local top.qcow2 "$SUB/base.qcow2"
refused "image-delete of a backing image" InUse \
    "^local:$SUB/base\.qcow2 is the backing image of local:$SUB/top\.qcow2; delete or rebase" \
    image-delete "{\"image\":\"local:$SUB/base.qcow2\"}"

rpc domain-attach "{\"domain\":\"nd\",\"disks\":[{\"target\":\"vda\",\"image\":\"local:$SUB/top.qcow2\"}]}" \
    >/dev/null || fail "domain-attach nd"
refused "image-delete of a disk" InUse "^local:$SUB/top\.qcow2 is a disk of domain nd \(disk vda\)" \
    image-delete "{\"image\":\"local:$SUB/top.qcow2\"}"
mk_local other.qcow2
refused "domain-attach of another domain's disk" InUse \
    "^Image local:$SUB/top\.qcow2 is already disk vda of domain nd; detach it" \
    domain-attach "{\"domain\":\"nd2\",\"disks\":[{\"target\":\"vda\",\"image\":\"local:$SUB/top.qcow2\"}]}"
refused "snapshot-create of a domain's disk given as an image" InvalidParams \
    "^Image local:$SUB/top\.qcow2 is a disk of domain nd; snapshot it through 'domain'" \
    snapshot-create "{\"name\":\"x\",\"disks\":[{\"image\":\"local:$SUB/top.qcow2\"}]}"

rpc snapshot-create '{"name":"s1","domain":"nd"}' >/dev/null || fail "snapshot-create s1"
refused "image-delete of an image a snapshot records" InUse \
    "^local:$SUB/top\.qcow2 is (the backing image of local:$SUB/[^ ]+\.qcow2|recorded in snapshot s1)" \
    image-delete "{\"image\":\"local:$SUB/top.qcow2\"}"
refused "domain-attach of a frozen image" InUse \
    "^Image local:$SUB/top\.qcow2 of disk vda is frozen by snapshot 's1'" \
    domain-attach "{\"domain\":\"nd3\",\"disks\":[{\"target\":\"vda\",\"image\":\"local:$SUB/top.qcow2\"}]}"
refused "snapshot-create of a frozen image" InUse \
    "^Image local:$SUB/top\.qcow2 is frozen by snapshot 's1'; snapshot the overlay" \
    snapshot-create "{\"name\":\"x\",\"disks\":[{\"image\":\"local:$SUB/top.qcow2\"}]}"
refused "domain-detach with snapshots" InUse \
    "^Cannot detach domain nd\. Domain nd has 1 snapshot\(s\); delete them first" \
    domain-detach '{"domain":"nd"}'
refused "snapshot-info of a missing snapshot" NotFound "'nosuchsnap'" \
    snapshot-info '{"snapshot":"nosuchsnap"}'
refused "job-cancel of a missing job" NotFound "job 999999" job-cancel '{"id":999999}'
refused "job-wait of a missing job" NotFound "job 999999" job-wait '{"id":999999}'
refused "job-dismiss of a missing job" NotFound "job 999999" job-dismiss '{"id":999999}'
assert_error_names

# ---- JOB: times and image names ----------------------------------------------
mk_local c-base.qcow2
mk_local c-top.qcow2 "$SUB/c-base.qcow2"
j=$(rpc block-commit "{\"top\":\"local:$SUB/c-top.qcow2\",\"base\":\"local:$SUB/c-base.qcow2\"}") ||
    fail "block-commit"
id=$(jq .id <<<"$j")
assert_eq "number null" "$(jq -r '"\(.created | type) \(.finished)"' <<<"$j")" \
    "a new job has its creation time and has not finished"
w=$(rpc job-wait "{\"id\":$id,\"timeout\":60}") || fail "job-wait $id"
assert_eq "concluded null" "$(jq -r '"\(.status) \(.error)"' <<<"$w")" "block-commit concluded"
assert_eq true "$(jq '.created > 1000000000 and .created <= .started and .started <= .finished and .finished <= now + 1' <<<"$w")" \
    "created <= started <= finished ($(jq -c '[.created, .started, .finished]' <<<"$w"))"
assert_eq "$(jq '.images | length' <<<"$w")" "$(jq '."image-names" | length' <<<"$w")" "one name per image"
assert_match "local:$SUB/c-top\.qcow2" "$(jq -c '."image-names"' <<<"$w")" "image-names name the deleted top"
assert_eq "[]" "$(jq -c '[."image-names"[] | select(test("^local:'"$SUB"'/") | not)]' <<<"$w")" \
    "every image-name is VOLUME:PATH"
# The times survive a restart as the state does.
before=$(jq -c '[.created, .started, .finished, ."image-names"]' <<<"$w")
stop_gvmd
start_gvmd
assert_eq "$before" "$(rpc query-jobs '{}' | jq -c ".[] | select(.id == $id) | [.created, .started, .finished, .\"image-names\"]")" \
    "times and names after a restart"

stop_gvmd
exit $_test_failed
