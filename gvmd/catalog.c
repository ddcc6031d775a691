/* SPDX-License-Identifier: GPL-2.0-or-later */
/* catalog.c — not written yet. */
