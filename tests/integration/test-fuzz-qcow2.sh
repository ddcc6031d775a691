#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-fuzz-qcow2.sh — replay tests/fuzz/regressions/* and fuzz the qcow2
# reader for 30 s (tests/fuzz/run.sh; exits 77 without clang/qemu-img).
. "$GVM_TESTDIR/lib.sh"
"$GVM_SRCDIR/tests/fuzz/run.sh" "${GVM_FUZZ_SECONDS:-30}"
