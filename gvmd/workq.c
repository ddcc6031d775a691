/* SPDX-License-Identifier: GPL-2.0-or-later */
/* workq.c — not written yet. */
