/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qcow2-check.c — not written yet. */
