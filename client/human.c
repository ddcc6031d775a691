/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * human.c — values as a person reads them: sizes in binary units, epoch
 * seconds as local ISO 8601, long names elided in the middle, and the one
 * spelling of "nothing" (HUMAN_NONE) every printer uses.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"

void human_size(char *buf, size_t len, long long bytes, bool exact)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)bytes;
    size_t u = 0;

    if (exact || bytes < 1024) {
        snprintf(buf, len, "%lld%s", bytes, exact ? "" : " B");
        return;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

void human_time(char *buf, size_t len, long long epoch)
{
    time_t t = (time_t)epoch;
    struct tm tm;

    if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, len, "%lld", epoch);
}

size_t human_width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Byte offset of the code point number n of s (or of its end). */
static size_t offset_of(const char *s, size_t n)
{
    size_t i = 0;

    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && n-- == 0)
            break;
    return i;
}

char *human_elide(const char *s, size_t width)
{
    size_t w = human_width(s);

    if (w <= width || width < 3)
        return strdup(s);
    /* A name's end says most (the file name, the snapshot in it): the tail
     * is kept, and of the head the volume ("local:") or a third. */
    const char *colon = strchr(s, ':');
    size_t keep = width - 1, head = keep / 3;
    if (colon && human_width(colon) < w && w - human_width(colon) + 1 <= keep / 2)
        head = w - human_width(colon) + 1;
    size_t tail = keep - head;
    size_t hb = offset_of(s, head), tb = offset_of(s, w - tail);
    size_t tl = strlen(s + tb);
    char *r = malloc(hb + sizeof("…") + tl);

    if (!r)
        return NULL;
    memcpy(r, s, hb);
    memcpy(r + hb, "…", sizeof("…") - 1);
    memcpy(r + hb + sizeof("…") - 1, s + tb, tl + 1);
    return r;
}
