/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * text.c — see text.h.  UTF-8 is checked as RFC 3629 defines it: no
 * overlong forms, no UTF-16 surrogates, nothing past U+10FFFF; jansson
 * refuses such strings, so a name that passes here always reaches the
 * client.
 */
#include "text.h"

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 if
 * it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;      /* range of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;                  /* overlong */
        else if (c == 0xed)
            hi = 0x9f;                  /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;                  /* overlong */
        else if (c == 0xf4)
            hi = 0x8f;                  /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

enum text_problem text_check(const char *s, size_t len, size_t *at)
{
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        size_t k;

        if (u[i] < 0x20 || u[i] == 0x7f) {
            *at = i;
            return TEXT_CONTROL;
        }
        k = utf8_seq(u + i, len - i);
        if (k == 0) {
            *at = i;
            return TEXT_BAD_UTF8;
        }
        i += k;
    }
    *at = len;
    return TEXT_OK;
}

const char *text_problem_says(enum text_problem p)
{
    switch (p) {
    case TEXT_BAD_UTF8:
        return "is not valid UTF-8";
    case TEXT_CONTROL:
        return "holds a control character";
    case TEXT_OK:
        break;
    }
    return "is fine";
}
