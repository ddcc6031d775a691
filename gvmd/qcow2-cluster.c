/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qcow2-cluster.c — not written yet. */
