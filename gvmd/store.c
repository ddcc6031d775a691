/* SPDX-License-Identifier: GPL-2.0-or-later */
/* store.c — not written yet. */
