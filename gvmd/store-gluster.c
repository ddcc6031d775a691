/* SPDX-License-Identifier: GPL-2.0-or-later */
/* store-gluster.c — not written yet. */
