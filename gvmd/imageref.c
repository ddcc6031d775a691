/* SPDX-License-Identifier: GPL-2.0-or-later */
/* imageref.c — not written yet. */
