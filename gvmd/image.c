/* SPDX-License-Identifier: GPL-2.0-or-later */
/* image.c — not written yet. */
