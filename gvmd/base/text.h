/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * text.h — whether a name read from storage or a request is text gvmd can
 * pass on: to JSON replies (which must be valid UTF-8), libvirt XML, logs
 * and terminals (where control characters do harm).
 */
#ifndef GVMD_TEXT_H
#define GVMD_TEXT_H

#include <stddef.h>

enum text_problem {
    TEXT_OK = 0,
    TEXT_BAD_UTF8,      /* not well-formed UTF-8 (also overlong, surrogates) */
    TEXT_CONTROL,       /* a C0 control character or DEL                     */
};

/* The first problem in s[0..len), and in *at the byte offset where it
 * starts (len when TEXT_OK). */
enum text_problem text_check(const char *s, size_t len, size_t *at);

/* "is not valid UTF-8" / "holds a control character", for messages. */
const char *text_problem_says(enum text_problem p);

#endif
