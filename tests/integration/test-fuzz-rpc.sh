#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-fuzz-rpc.sh — replay tests/fuzz/regressions/rpc/* and fuzz gvmd's
# JSON-RPC edge for 60 s (tests/fuzz/run.sh --target rpc; exits 77 without
# clang/libFuzzer).  GVM_FUZZ_SECONDS overrides the duration.
. "$GVM_TESTDIR/lib.sh"
"$GVM_SRCDIR/tests/fuzz/run.sh" --target rpc "${GVM_FUZZ_SECONDS:-60}"
