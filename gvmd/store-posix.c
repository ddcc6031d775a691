/* SPDX-License-Identifier: GPL-2.0-or-later */
/* store-posix.c — not written yet. */
