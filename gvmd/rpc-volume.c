/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rpc-volume.c — not written yet. */
