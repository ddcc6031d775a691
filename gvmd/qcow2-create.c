/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qcow2-create.c — not written yet. */
