/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rpc-service.c — not written yet. */
