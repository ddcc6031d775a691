#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-chain-audit.sh — chain-audit and its adopt-storage fix (issue 5,
# acceptance 6).  On the dir volume and on the gluster volume: a catalogued
# chain base <- mid <- top audits clean; headers changed behind gvmd's back
# with qemu-img (rebase -u skipping mid, rebase -u onto an uncatalogued
# file, resize) and a deleted file are reported naming the image and both
# values; adopt-storage makes the catalog follow storage (the catalog's
# edges along image-info's chain equal qemu-img info --backing-chain) and a
# second audit finds nothing.  Then a running libvirt domain whose XML uses
# another image than the catalog's active layer: an active-layer difference,
# and adopt-storage makes the catalog follow the XML.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq xmllint
need_libvirt

start_gvmd --libvirt-uri "$LIBVIRT_URI"

# audit PARAMS: the result of chain-audit (fails the test on an RPC error).
audit() { rpc chain-audit "$1" || fail "chain-audit $1 failed"; }
ndiff() { printf '%s' "$1" | jq '.differences | length'; }
# id VOL:PATH: the catalog id of an image.
id_of() { rpc image-info "{\"image\":\"$1\"}" | jq -r '.id'; }
# The catalog's edges along the chain storage shows: "path>backing-path"
# per layer, from image-info --backing-chain (ids mapped to paths).
catalog_edges() {
    rpc image-info "{\"image\":$1,\"backing-chain\":true}" |
        jq -r '.chain as $c | [$c[] | {id, path}] as $m |
               $c[] | .path + ">" + ((.backing) as $b |
                   if $b == null then "none"
                   else ([$m[] | select(.id == $b) | .path][0] // ("id " + ($b|tostring))) end)'
}
# The same edges as qemu-img sees them (relative to ROOT), top to base.
qemu_edges() {
    qemu-img info -U --backing-chain --output=json "$(lpath "$1")" |
        jq -r --arg root "$ROOT/" '.[] | (.filename | ltrimstr($root)) + ">" +
              (if ."full-backing-filename" then (."full-backing-filename" | ltrimstr($root)) else "none" end)'
}


chain_case() {
    local base=$SUB/base.qcow2 mid=$SUB/mid.qcow2 top=$SUB/top.qcow2
    local extra=$SUB/extra.qcow2 leaf=$SUB/leaf.qcow2
    local r bid mid_id tid eid lid

    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$base\",\"format\":\"qcow2\",\"size\":16777216}" \
        >/dev/null || fail "image-create base failed"
    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$mid\",\"format\":\"qcow2\",\"backing\":\"$VOL:$base\"}" \
        >/dev/null || fail "image-create mid failed"
    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$top\",\"format\":\"qcow2\",\"backing\":\"$VOL:$mid\"}" \
        >/dev/null || fail "image-create top failed"
    bid=$(id_of "$VOL:$base"); mid_id=$(id_of "$VOL:$mid"); tid=$(id_of "$VOL:$top")

    # ---- a chain in agreement -----------------------------------------------
    r=$(audit "{\"image\":$tid}")
    assert_eq 0 "$(ndiff "$r")" "$BACKEND: differences of a fresh chain ($r)"
    assert_eq 3 "$(printf '%s' "$r" | jq '.checked.images')" "$BACKEND: layers checked"
    assert_eq "$(qemu_edges "$top")" "$(catalog_edges "$tid")" "$BACKEND: edges before"

    # ---- top rebased onto base behind gvmd's back (mid skipped) -------------
    (cd "$ROOT/$SUB" && qemu-img rebase -u -b base.qcow2 -F qcow2 top.qcow2) ||
        fail "qemu-img rebase -u failed"
    [ "$(qemu_edges "$top")" != "$(catalog_edges "$tid")" ] ||
        check_fail "$BACKEND: the catalog follows a header it was not told about"
    r=$(audit "{\"image\":$tid}")
    assert_eq 1 "$(ndiff "$r")" "$BACKEND: differences after rebase -u ($r)"
    d=$(printf '%s' "$r" | jq -c '.differences[0]')
    assert_eq backing "$(printf '%s' "$d" | jq -r .what)" "$BACKEND: what"
    assert_eq "$tid" "$(printf '%s' "$d" | jq -r .image.id)" "$BACKEND: image id"
    assert_eq "$VOL:$top" "$(printf '%s' "$d" | jq -r .image.name)" "$BACKEND: image name"
    assert_eq "$mid_id" "$(printf '%s' "$d" | jq -r .catalog.image.id)" "$BACKEND: catalog's backing"
    assert_eq "mid.qcow2" "$(printf '%s' "$d" | jq -r .catalog.filename)" "$BACKEND: catalog's backing file"
    assert_eq "$bid" "$(printf '%s' "$d" | jq -r .storage.image.id)" "$BACKEND: storage's backing"
    assert_eq "base.qcow2" "$(printf '%s' "$d" | jq -r .storage.filename)" "$BACKEND: storage's backing file"
    assert_match "$VOL:$top" "$(printf '%s' "$d" | jq -r .message)" "$BACKEND: message names the image"
    assert_match "mid\.qcow2.*base\.qcow2" "$(printf '%s' "$d" | jq -r .message)" "$BACKEND: message names both"
    # everything-scope finds it too
    r=$(audit '{}')
    assert_eq 1 "$(printf '%s' "$r" | jq "[.differences[] | select(.image.id == $tid)] | length")" \
        "$BACKEND: the audit of everything reports top"
    # The read-only socket may audit, not fix.
    "$GVMCTL" --socket "$GVM_RO_SOCK" --json --params "{\"image\":$tid}" chain-audit >/dev/null ||
        check_fail "$BACKEND: chain-audit refused on the read-only socket"
    e=$("$GVMCTL" --socket "$GVM_RO_SOCK" --json --params "{\"image\":$tid,\"fix\":\"adopt-storage\"}" \
        chain-audit 2>&1 >/dev/null) && check_fail "$BACKEND: adopt-storage allowed on the read-only socket"
    assert_eq PermissionDenied "$(printf '%s' "$e" | jq -r .data.class)" "$BACKEND: ro fix refusal"
    assert_eq "$mid_id" "$(rpc image-info "{\"image\":$tid}" | jq -r .backing)" \
        "$BACKEND: the refused fix changed nothing"

    r=$(audit "{\"image\":$tid,\"fix\":\"adopt-storage\"}")
    assert_eq 1 "$(ndiff "$r")" "$BACKEND: differences reported by the fixing audit"
    assert_eq backing "$(printf '%s' "$r" | jq -r '.fixed[0].what')" "$BACKEND: fixed ($r)"
    assert_eq 0 "$(printf '%s' "$r" | jq '.unfixed | length')" "$BACKEND: unfixed"
    assert_eq "$bid" "$(rpc image-info "{\"image\":$tid}" | jq -r .backing)" "$BACKEND: top's edge"
    assert_eq "$(qemu_edges "$top")" "$(catalog_edges "$tid")" "$BACKEND: edges after adopt-storage"
    r=$(audit "{\"image\":$tid}")
    assert_eq 0 "$(ndiff "$r")" "$BACKEND: second audit ($r)"
    assert_eq "$bid" "$(rpc image-info "{\"image\":$mid_id}" | jq -r .backing)" "$BACKEND: mid untouched"

    # ---- onto an uncatalogued file, and a resize --------------------------
    (cd "$ROOT/$SUB" && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 extra.qcow2 &&
     qemu-img rebase -u -b extra.qcow2 -F qcow2 top.qcow2 &&
     qemu-img resize -q top.qcow2 33554432) || fail "qemu-img create/rebase/resize failed"
    r=$(audit "{\"image\":$tid}")
    assert_eq "backing,not-catalogued,virtual-size" \
        "$(printf '%s' "$r" | jq -r '[.differences[].what] | sort | join(",")')" "$BACKEND: differences ($r)"
    assert_eq "$VOL:$extra" "$(printf '%s' "$r" | jq -r '.differences[] | select(.what == "not-catalogued") | .image.name')" \
        "$BACKEND: the uncatalogued layer"
    assert_eq "16777216 33554432" "$(printf '%s' "$r" | jq -r '.differences[] | select(.what == "virtual-size") | "\(.catalog) \(.storage)"')" \
        "$BACKEND: both sizes"
    r=$(audit "{\"image\":$tid,\"fix\":\"adopt-storage\"}")
    eid=$(id_of "$VOL:$extra")
    [ -n "$eid" ] && [ "$eid" != null ] || check_fail "$BACKEND: extra.qcow2 not imported ($r)"
    assert_eq "$eid" "$(rpc image-info "{\"image\":$tid}" | jq -r .backing)" "$BACKEND: top on extra"
    assert_eq "$bid" "$(rpc image-info "{\"image\":$eid}" | jq -r .backing)" "$BACKEND: extra on base"
    assert_eq 33554432 "$(rpc image-list "{\"volume\":\"$VOL\"}" | jq ".[] | select(.id == $tid) | .\"virtual-size\"")" \
        "$BACKEND: catalogued size"
    assert_eq "$(qemu_edges "$top")" "$(catalog_edges "$tid")" "$BACKEND: edges after import"
    assert_eq 0 "$(ndiff "$(audit "{\"image\":$tid}")")" "$BACKEND: second audit after import"

    # ---- a raw image replaced by a qcow2 one -----------------------------------
    # Whoever writes a raw image (its guest) can put a qcow2 header in it:
    # the catalog's format stands, the header is a hazard, never a fix.
    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$SUB/flat.img\",\"format\":\"raw\",\"size\":1048576}" \
        >/dev/null || fail "image-create flat.img failed"
    fid=$(id_of "$VOL:$SUB/flat.img")
    rm -f "$(lpath "$SUB/flat.img")"
    qemu-img create -q -f qcow2 "$(lpath "$SUB/flat.img")" 1M || fail "qemu-img create flat.img failed"
    fsize=$(stat -c %s "$(lpath "$SUB/flat.img")")
    r=$(audit "{\"image\":$fid}")
    assert_eq "format-hazard:\"raw\">\"qcow2\",virtual-size:1048576>$fsize" \
        "$(printf '%s' "$r" | jq -r '[.differences[] | "\(.what):\(.catalog|tojson)>\(.storage|tojson)"] | sort | join(",")')" \
        "$BACKEND: format differences ($r)"
    audit "{\"image\":$fid,\"fix\":\"adopt-storage\"}" >/dev/null
    assert_eq raw "$(rpc image-list "{\"volume\":\"$VOL\"}" | jq -r ".[] | select(.id == $fid) | .format")" \
        "$BACKEND: catalogued format"
    assert_eq '["format-hazard"]' "$(audit "{\"image\":$fid}" | jq -c '[.differences[].what]')" \
        "$BACKEND: second audit of flat.img"
    # Raw content again (of the size adopt-storage recorded): nothing to say.
    rm -f "$(lpath "$SUB/flat.img")"
    truncate -s "$fsize" "$(lpath "$SUB/flat.img")" || fail "truncate flat.img"
    assert_eq 0 "$(ndiff "$(audit "{\"image\":$fid}")")" "$BACKEND: audit of flat.img, raw again"

    # ---- a file deleted behind gvmd's back ---------------------------------------
    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$leaf\",\"format\":\"qcow2\",\"backing\":\"$VOL:$mid\"}" \
        >/dev/null || fail "image-create leaf failed"
    lid=$(id_of "$VOL:$leaf")
    rm -f "$(lpath "$leaf")"
    r=$(audit '{}')
    assert_eq missing "$(printf '%s' "$r" | jq -r ".differences[] | select(.image.id == $lid) | .what")" \
        "$BACKEND: the deleted file ($r)"
    r=$(audit "{\"image\":$lid,\"fix\":\"adopt-storage\"}")
    assert_eq missing "$(printf '%s' "$r" | jq -r '.fixed[0].what')" "$BACKEND: missing fixed ($r)"
    e=$(rpc_err image-info "{\"image\":$lid}")
    assert_eq NotFound "$(printf '%s' "$e" | jq -r .data.class)" "$BACKEND: the row of the deleted file"
    # a missing file something depends on (mid and extra) stays, and says why
    mv "$(lpath "$base")" "$(lpath "$base").away"
    r=$(audit "{\"image\":$bid,\"fix\":\"adopt-storage\"}")
    assert_eq missing "$(printf '%s' "$r" | jq -r '.unfixed[0].what')" "$BACKEND: base stays ($r)"
    assert_match "backing image of" "$(printf '%s' "$r" | jq -r '.unfixed[0].action')" "$BACKEND: why base stays"
    assert_eq "$bid" "$(rpc image-list "{\"volume\":\"$VOL\"}" | jq ".[] | select(.path == \"$base\") | .id")" \
        "$BACKEND: base's row kept"
    mv "$(lpath "$base").away" "$(lpath "$base")"
    assert_eq 0 "$(ndiff "$(audit '{}')")" "$BACKEND: everything agrees at the end"
}

for_each_backend chain_case

# ---- a running domain whose XML names another active layer --------------------
BACKEND=dir VOL=local ROOT=$GVMD_DIR/state/images SUB=dom$$
mkdir -p "$ROOT/$SUB"
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/d-base.qcow2\",\"format\":\"qcow2\",\"size\":16777216}" \
    >/dev/null || fail "image-create d-base failed"
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/d-top.qcow2\",\"format\":\"qcow2\",\"backing\":\"local:$SUB/d-base.qcow2\"}" \
    >/dev/null || fail "image-create d-top failed"
dtop=$(id_of "local:$SUB/d-top.qcow2")
# an overlay made behind gvmd's back (as a virsh snapshot-create would)
(cd "$ROOT/$SUB" && qemu-img create -q -f qcow2 -b d-top.qcow2 -F qcow2 d-new.qcow2) ||
    fail "qemu-img create d-new failed"
xml=$(rpc domain-disk-xml "{\"image\":\"local:$SUB/d-new.qcow2\",\"target\":\"vda\"}" | jq -r .xml) ||
    fail "domain-disk-xml failed"
# and a second disk, on a catalogued image, that the attach leaves out
rpc image-create "{\"volume\":\"local\",\"path\":\"$SUB/d-data.qcow2\",\"format\":\"qcow2\",\"size\":8388608}" \
    >/dev/null || fail "image-create d-data failed"
ddata=$(id_of "local:$SUB/d-data.qcow2")
xml="$xml
$(rpc domain-disk-xml "{\"image\":$ddata,\"target\":\"vdb\"}" | jq -r .xml)" || fail "domain-disk-xml vdb failed"
DOM=chain-audit-$$
libvirt_define_test_domain "$DOM" "$xml"
tvirsh start "$DOM" >/dev/null || fail "virsh start $DOM failed"
rpc domain-attach "{\"domain\":\"$DOM\",\"disks\":[{\"target\":\"vda\",\"image\":$dtop}]}" >/dev/null ||
    fail "domain-attach failed"

r=$(audit "{\"domain\":\"$DOM\"}")
note "domain audit: $r"
assert_eq running "$(printf '%s' "$r" | jq -r '.domains[0].libvirt')" "libvirt state of $DOM"
assert_eq 2 "$(printf '%s' "$r" | jq '.checked.disks')" "disks checked"
assert_eq "$ddata" "$(printf '%s' "$r" | jq -r '.differences[] | select(.what == "disk" and .disk.target == "vdb") | .domain.id')" \
    "the disk only the XML has"
d=$(printf '%s' "$r" | jq -c '.differences[] | select(.what == "active-layer")')
[ -n "$d" ] || check_fail "no active-layer difference: $r"
assert_eq "$DOM vda" "$(printf '%s' "$d" | jq -r '"\(.disk.domain) \(.disk.target)"')" "active-layer disk"
assert_eq "$dtop" "$(printf '%s' "$d" | jq -r .catalog.id)" "active-layer: the catalog's"
assert_eq "local:$SUB/d-new.qcow2" "$(printf '%s' "$d" | jq -r .domain.name)" "active-layer: the XML's"
assert_eq "local:$SUB/d-new.qcow2" \
    "$(printf '%s' "$r" | jq -r '.differences[] | select(.what == "not-catalogued") | .image.name')" \
    "the XML's image is not catalogued"
# the catalog is unchanged by an audit without fix
assert_eq "$dtop" "$(rpc domain-list '{}' | jq -r ".[] | select(.name == \"$DOM\") | .disks[] | select(.target == \"vda\") | .image")" \
    "disk before the fix"

r=$(audit "{\"domain\":\"$DOM\",\"fix\":\"adopt-storage\"}")
note "domain fix: $(printf '%s' "$r" | jq -c .fixed)"
dnew=$(id_of "local:$SUB/d-new.qcow2")
[ -n "$dnew" ] && [ "$dnew" != null ] || fail "d-new.qcow2 was not imported: $r"
assert_eq "$dnew" "$(rpc domain-list '{}' | jq -r ".[] | select(.name == \"$DOM\") | .disks[] | select(.target == \"vda\") | .image")" \
    "the disk follows the XML"
assert_eq "$ddata" "$(rpc domain-list '{}' | jq -r ".[] | select(.name == \"$DOM\") | .disks[] | select(.target == \"vdb\") | .image")" \
    "the XML's second disk is recorded"
assert_eq "$dtop" "$(rpc image-info "{\"image\":$dnew}" | jq -r .backing)" "d-new's edge"
r=$(audit "{\"domain\":\"$DOM\"}")
assert_eq 0 "$(ndiff "$r")" "second domain audit ($r)"
libvirt_kill_domain "$DOM"

# ---- parameters ------------------------------------------------------------------
e=$(rpc_err chain-audit '{"fix":"adopt-everything"}')
assert_eq fix "$(printf '%s' "$e" | jq -r .data.param)" "unknown fix"
e=$(rpc_err chain-audit "{\"image\":$dtop,\"domain\":\"$DOM\"}")
assert_eq InvalidParams "$(printf '%s' "$e" | jq -r .data.class)" "image and domain"
e=$(rpc_err chain-audit '{"domain":"chain-audit-nosuch"}')
assert_eq NotFound "$(printf '%s' "$e" | jq -r .data.class)" "unknown domain"

stop_gvmd
exit 0
