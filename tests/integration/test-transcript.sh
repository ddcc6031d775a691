#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-transcript.sh — gvmctl's human output, as a person reads it, for the
# libvirt snapshot/blockcommit/blockpull guide's workflow done offline on the
# dir volume: create a base, take four snapshots (writing between them),
# delete a middle snapshot (its data committed), pull into the active image,
# flatten it, delete an image, revert to a snapshot.  The output of every
# command is compared with tests/integration/transcript.expected, with
# times, uuids, ids and temporary paths masked; and no line of it is wider
# than an 80-column terminal (the images are named as people name them, the
# chain is six images deep).
#   GVM_TRANSCRIPT_UPDATE=1 rewrites the expected transcript instead.
. "$GVM_TESTDIR/lib.sh"
need qemu-io python3
export TZ=UTC

start_gvmd
EXPECTED=$GVM_TESTDIR/integration/transcript.expected
T=$TEST_TMP/transcript
IMAGES=$GVMD_DIR/state/images
D=guests/web01
DISK=local:$D/web01-disk0

# say ARGS...: run gvmctl, and write the command and what it printed (both
# streams, in order) and a non-zero exit status into the transcript.
say() {
    local rc
    printf '$ gvmctl %s\n' "$*" >>"$T"
    "$GVMCTL" --socket "$GVM_SOCK" "$@" >>"$T" 2>&1
    rc=$?
    [ $rc -eq 0 ] || echo "[exit $rc]" >>"$T"
    echo >>"$T"
    return 0
}
# guest_write FILE PATTERN OFFSET LENGTH: the guest writes (the domain is
# offline: qemu-io on the active image plays the guest).
guest_write() {
    qemu-io -f qcow2 -c "write -P $2 $3 $4" "$IMAGES/$1" >/dev/null ||
        fail "qemu-io write to $1"
}
job_of() { "$GVMCTL" --socket "$GVM_SOCK" --json query-jobs | jq ".[-1].id"; }

: >"$T"
say volume-list
mkdir -p "$IMAGES/$D"
say image-create --volume local --path "$D/web01-disk0.qcow2" --format qcow2 --size 10G
say domain-attach --domain web01 --disks "[{\"target\":\"vda\",\"image\":\"$DISK.qcow2\"}]"
guest_write "$D/web01-disk0.qcow2" 0x11 0 4M

# Four snapshots, the guest writing between them: a chain of five images.
active=$D/web01-disk0.qcow2
n=0
for s in fresh-install with-updates before-upgrade after-upgrade; do
    n=$((n + 1))
    say snapshot-create --name "$s" --domain web01 --description "web01 $s"
    active=$D/web01-disk0.$s.qcow2
    guest_write "$active" "0x2$n" "$((n * 4))M" 2M
done
say snapshot-list --domain web01
say image-info --image "local:$active" --backing-chain
say image-list
say domain-list

# Commit: deleting the middle snapshot with-updates merges its image with
# the one it froze (gvmd picks commit or pull, the chain reads as before).
say --wait snapshot-delete --snapshot with-updates
say snapshot-list --domain web01
say image-info --image "local:$active" --backing-chain

# Pull: the active image copies what it reads above with-updates's overlay.
say --wait block-pull --image "local:$active" --base "$DISK.with-updates.qcow2"
say image-info --image "local:$active" --backing-chain
# Flatten: --base none pulls everything, the active image stands alone.
say --wait block-pull --image "local:$active" --base none
say image-info --image "local:$active" --backing-chain
say query-jobs
say job-cancel --id "$(job_of)"

# Delete: an image other images use is refused, saying which; an unused one goes.
say image-delete --image "$DISK.qcow2"
say image-create --volume local --path "$D/scratch.qcow2" --format qcow2 --size 1G
say image-delete --image "local:$D/scratch.qcow2"

# Revert: new overlays on the snapshot's images become the active images.
say snapshot-revert --snapshot fresh-install
say snapshot-list --domain web01
say domain-list
say --bytes image-info --image "$DISK.qcow2"
say volume-info --name nosuch

# No line of the output is wider than 80 columns (the commands may be).
python3 - "$T" <<'PY' || check_fail "the transcript has lines over 80 columns"
import sys
bad = [l for l in open(sys.argv[1], encoding='utf-8').read().split('\n')
       if len(l) > 80 and not l.startswith('$ gvmctl ') and not l.startswith('gvmctl: ')]
for l in bad:
    print('# %d columns: %s' % (len(l), l), file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# Mask what changes from run to run: the temporary directory, times, uuids,
# and the bytes the filesystem allocates for an image (its block size and
# delayed allocation decide them, not gvmd): the "allocated:" lines and the
# ALLOCATED column of chain tables, whose width gvmctl keeps fixed (the
# widest a size prints as) so that the names beside it are elided the
# same way whatever the sizes.
sed -E -e "s|$TEST_TMP|TMP|g" \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}/YYYY-MM-DD hh:mm:ss/g' \
    -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/UUID/g' \
    -e 's/^(allocated: +).*/\1SIZE/' \
    "$T" | python3 -c '
import sys
pos = None
for line in sys.stdin.read().split("\n")[:-1]:
    if line.startswith("  IMAGE ") and "ALLOCATED" in line:
        pos = line.index("ALLOCATED")
    elif pos is not None and line.startswith("  ") and len(line) > pos:
        line = line[:pos] + "SIZE".ljust(10) + line[pos + 10:]
    else:
        pos = None
    print(line)
' >"$T.masked"

if [ -n "${GVM_TRANSCRIPT_UPDATE:-}" ]; then
    cp "$T.masked" "$EXPECTED"
    note "rewrote $EXPECTED"
fi
diff -u "$EXPECTED" "$T.masked" >&2 ||
    check_fail "gvmctl's output differs from $EXPECTED (GVM_TRANSCRIPT_UPDATE=1 rewrites it)"
stop_gvmd
exit $_test_failed
