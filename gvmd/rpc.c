/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rpc.c — not written yet. */
