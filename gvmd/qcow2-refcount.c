/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qcow2-refcount.c — not written yet. */
