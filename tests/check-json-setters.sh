#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/check-json-setters.sh SRCDIR — gvmd sets JSON members only through
# the checked setters of gvmd/base/jsonutil.h (gvm_json_set,
# gvm_json_append): a bare json_object_set_new / json_array_append_new whose
# result is ignored drops a member of a reply when an allocation fails.
# Lists each offending line; exit 1 if there is any, else 0.
set -u
src=${1:?usage: check-json-setters.sh SRCDIR}

bad=$(grep -rnE --include='*.c' --include='*.h' \
        '\<(json_object_set_new|json_array_append_new)\>' "$src/gvmd" |
      grep -v "^$src/gvmd/base/jsonutil.h:")
if [ -n "$bad" ]; then
    printf '%s\n' "$bad"
    echo "Use gvm_json_set / gvm_json_append (gvmd/base/jsonutil.h) and check the result."
    exit 1
fi
echo "json-setters: every member is set through a checked setter."
exit 0
