#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-python-client.sh — the Python client library (contrib/python,
# gvmclient) against a real gvmd on the dir volume: the guide's workflow
# through its API (base image, four snapshots of a domain attached with
# explicit disks, snapshot-delete committing into the base, block-pull with
# a progress callback and op-id, flatten, image-delete, snapshot-revert),
# typed errors, events as an iterator, the read-only socket
# (contrib/python/tests/test_workflow.py, unittest).  Afterwards the
# catalog, storage and domain records agree (chain-audit).
. "$GVM_TESTDIR/lib.sh"
command -v python3 >/dev/null 2>&1 ||
    skip "python3 is not installed: the Python client library cannot be tested"
PYDIR=${GVM_SRCDIR:?}/contrib/python

start_gvmd
ROOT=$GVMD_DIR/state/images
SUB=py$$
mkdir -p "$ROOT/$SUB"

env PYTHONPATH="$PYDIR" PYTHONDONTWRITEBYTECODE=1 \
    GVM_SOCKET="$GVM_SOCK" GVM_RO_SOCKET="$GVM_RO_SOCK" \
    GVM_TEST_VOLUME=local GVM_TEST_ROOT="$ROOT" GVM_TEST_SUB="$SUB" \
    python3 "$PYDIR/tests/test_workflow.py" ||
    check_fail "the Python client's tests failed (output above)"
audit_clean "after the Python client's workflow"

stop_gvmd
exit $_test_failed
