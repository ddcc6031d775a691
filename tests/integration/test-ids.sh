#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-ids.sh — ids are never reused (issue 10): a job record saying
# `images: [153, 151]` must not later point at another image.
#   images:    create a, b; delete b; restart; create c: c's id is not b's;
#   snapshots: snapshot-create s1, s2 of a stopped domain known only to the
#              catalog; snapshot-delete s2; restart; s3's id is not s2's;
#   domains:   attach d1, d2; detach d2; restart; d3's id is not d2's;
#   volumes:   add v1, v2; remove v2; restart; v3's id is not v2's.
# Then a catalog written by the previous schema (0001 + 0002, made with the
# sqlite3 shell from the migrations in the tree) is upgraded by gvmd in
# place: every row, id and edge intact, and an image id only a job record
# still names is not handed out again.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img

start_gvmd
IMAGES=$GVMD_DIR/state/images
mkdir -p "$IMAGES/ids" "$TEST_TMP/v1" "$TEST_TMP/v2" "$TEST_TMP/v3"

mk() { rpc image-create "{\"volume\":\"local\",\"path\":\"ids/$1\",\"format\":\"qcow2\",\"size\":1048576}" |
       jq -r .id; }
# not_reused WHAT GONE NEW: NEW is a fresh id, above every id handed out.
not_reused() {
    [ -n "$3" ] && [ "$3" != null ] || { check_fail "$1: no id"; return; }
    [ "$3" -gt "$2" ] || check_fail "$1: got id $3 after id $2 was deleted (ids are reused)"
}

# ---- images ---------------------------------------------------------------------
a=$(mk a.qcow2) && b=$(mk b.qcow2) || fail "image-create a, b"
rpc image-delete "{\"image\":\"local:ids/b.qcow2\"}" >/dev/null || fail "image-delete b"

# ---- snapshots of a stopped domain the catalog alone knows ---------------------
mk disk.qcow2 >/dev/null || fail "image-create disk"
rpc domain-attach '{"domain":"ids-dom","disks":[{"target":"vda","image":"local:ids/disk.qcow2"}]}' \
    >/dev/null || fail "domain-attach ids-dom"
snap() { rpc snapshot-create "{\"name\":\"$1\",\"domain\":\"ids-dom\"}" | jq -r .id; }
s1=$(snap s1) && s2=$(snap s2) || fail "snapshot-create s1, s2"
j=$(rpc snapshot-delete '{"snapshot":"s2"}') || fail "snapshot-delete s2"
j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":60}") || fail "job-wait"
assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "snapshot-delete s2: job"
rpc job-dismiss "{\"id\":$(jq .id <<<"$j")}" >/dev/null

# ---- domains ------------------------------------------------------------------------
mk d1.qcow2 >/dev/null && mk d2.qcow2 >/dev/null && mk d3.qcow2 >/dev/null || fail "image-create d*"
att() { rpc domain-attach "{\"domain\":\"$1\",\"disks\":[{\"target\":\"vda\",\"image\":\"local:ids/$1.qcow2\"}]}" |
        jq -r .id; }
d1=$(att d1) && d2=$(att d2) || fail "domain-attach d1, d2"
rpc domain-detach '{"domain":"d2"}' >/dev/null || fail "domain-detach d2"

# ---- volumes ------------------------------------------------------------------------
vadd() { rpc volume-add "{\"name\":\"$1\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/$1\"}" | jq -r .id; }
v1=$(vadd v1) && v2=$(vadd v2) || fail "volume-add v1, v2"
rpc volume-remove '{"name":"v2"}' >/dev/null || fail "volume-remove v2"

stop_gvmd
start_gvmd
c=$(mk c.qcow2) || fail "image-create c"
not_reused "image c" "$b" "$c"
s3=$(snap s3) || fail "snapshot-create s3"
not_reused "snapshot s3" "$s2" "$s3"
d3=$(att d3) || fail "domain-attach d3"
not_reused "domain d3" "$d2" "$d3"
v3=$(vadd v3) || fail "volume-add v3"
not_reused "volume v3" "$v2" "$v3"
note "ids: images a=$a b=$b c=$c; snapshots $s1 $s2 $s3; domains $d1 $d2 $d3; volumes $v1 $v2 $v3"
assert_eq 0 "$(rpc chain-audit '{}' | jq '.differences | length')" "chain-audit after the restart"
stop_gvmd

# ---- a catalog of the previous schema upgrades in place ---------------------------
if ! command -v sqlite3 >/dev/null 2>&1; then
    note "SKIP (part): the sqlite3 shell is not installed: the upgrade of a schema-2 catalog is not checked"
    exit 0
fi
OLD=$TEST_TMP/old
mkdir -p "$OLD/state/images/up"
qimg create -q -f qcow2 "$OLD/state/images/up/base.qcow2" 1M
qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$OLD/state/images/up/top.qcow2" 1M
cat >"$TEST_TMP/old-rows.sql" <<EOF
PRAGMA user_version = 2;
PRAGMA foreign_keys = ON;
INSERT INTO volumes (id, name, backend, root_path) VALUES (1, 'local', 'dir', '$OLD/state/images');
INSERT INTO volumes (id, name, backend, root_path) VALUES (4, 'spare', 'dir', '$TEST_TMP/v1');
INSERT INTO images (id, volume_id, path, format, virtual_size, cluster_size)
    VALUES (5, 1, 'up/base.qcow2', 'qcow2', 1048576, 65536);
INSERT INTO images (id, volume_id, path, format, virtual_size, cluster_size,
                    backing_image_id, backing_filename, backing_format)
    VALUES (9, 1, 'up/top.qcow2', 'qcow2', 1048576, 65536, 5, 'base.qcow2', 'qcow2');
INSERT INTO domains (id, name, uuid) VALUES (3, 'olddom', 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6');
INSERT INTO disks (domain_id, target, image_id) VALUES (3, 'vda', 9);
INSERT INTO snapshots (id, name, domain_id) VALUES (6, 'oldsnap', 3);
INSERT INTO snapshot_disks (snapshot_id, target, image_id, overlay_image_id) VALUES (6, 'vda', 5, 9);
-- A concluded job naming image 12, deleted before the upgrade.
INSERT INTO jobs (id, type, status, images) VALUES (7, 'block-commit', 'concluded', '[12, 9]');
UPDATE job_seq SET last = 7;
EOF
cat "$GVM_SRCDIR/db/schema/0001-init.sql" "$GVM_SRCDIR/db/schema/0002-jobs.sql" \
    "$TEST_TMP/old-rows.sql" | sqlite3 -bail "$OLD/catalog.db" || fail "cannot make a schema-2 catalog"
before=$(sqlite3 "$OLD/catalog.db" "SELECT * FROM volumes ORDER BY id; SELECT * FROM images ORDER BY id;
    SELECT * FROM domains; SELECT * FROM disks; SELECT * FROM snapshots; SELECT * FROM snapshot_disks;
    SELECT id, type, status, images FROM jobs; SELECT * FROM volume_servers;")

GVMD_DIR=$OLD GVM_CATALOG=$OLD/catalog.db start_gvmd
grep -q "applied schema migration 3" "$OLD/gvmd.log" || check_fail "gvmd did not upgrade the catalog"
# The upgrade goes on to the newest schema (0004-job-times.sql and later).
latest=$(ls "$GVM_SRCDIR"/db/schema/[0-9][0-9][0-9][0-9]-*.sql | wc -l)
assert_eq "$latest" "$(sqlite3 "$OLD/catalog.db" 'PRAGMA user_version')" "schema version after the upgrade"
after=$(sqlite3 "$OLD/catalog.db" "SELECT * FROM volumes ORDER BY id; SELECT * FROM images ORDER BY id;
    SELECT * FROM domains; SELECT * FROM disks; SELECT * FROM snapshots; SELECT * FROM snapshot_disks;
    SELECT id, type, status, images FROM jobs; SELECT * FROM volume_servers;")
assert_eq "$before" "$after" "every row after the upgrade"
assert_eq "5 9:5" "$(rpc image-list '{}' | jq -r '[.[] | "\(.id)\(if .backing then ":\(.backing)" else "" end)"] | join(" ")')" \
    "image-list after the upgrade (ids and the backing edge)"
assert_eq "olddom 3 9" "$(rpc domain-list '{}' | jq -r '.[] | "\(.name) \(.id) \(.disks[0].image)"')" \
    "domain-list after the upgrade"
assert_eq "oldsnap 6" "$(rpc snapshot-list '{}' | jq -r '.[] | "\(.name) \(.id)"')" "snapshot-list after the upgrade"
assert_eq 0 "$(rpc chain-audit '{}' | jq '.differences | length')" "chain-audit after the upgrade"
# A job of the old catalog: names of now ("image 12": gone), no times known
# but its creation.
assert_eq '["image 12","local:up/top.qcow2"] null null' \
    "$(rpc query-jobs '{}' | jq -c -r '.[] | select(.id == 7) | "\(."image-names" | tojson) \(.started) \(.finished)"')" \
    "job 7 after the upgrade: image-names, started, finished"
rpc image-create '{"volume":"local","path":"up/new.qcow2","format":"qcow2","size":1048576}' >"$TEST_TMP/new.json" ||
    fail "image-create after the upgrade"
not_reused "image created after the upgrade (job 7 names image 12)" 12 "$(jq -r .id "$TEST_TMP/new.json")"
stop_gvmd
