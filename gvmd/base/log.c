/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.c — logging to stderr, one line per message with a UTC timestamp and
 * the level.  Under systemd stderr goes to the journal, which adds its own
 * metadata; the timestamp keeps plain log files readable.
 *
 * The level is the only global (DESIGN.md allows log settings): it is set
 * once at start-up and read by every thread.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

static _Atomic int log_level = GVM_LOG_INFO;

static const char *const level_names[] = {
    [GVM_LOG_ERROR] = "error",
    [GVM_LOG_WARN] = "warn",
    [GVM_LOG_INFO] = "info",
    [GVM_LOG_DEBUG] = "debug",
};

void gvm_log_set_level(enum gvm_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int gvm_log_parse_level(const char *name, enum gvm_log_level *out)
{
    for (size_t i = 0; i < GVM_ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum gvm_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = GVM_LOG_WARN;
        return 0;
    }
    return -1;
}

void gvm_log(enum gvm_log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if ((int)level > atomic_load(&log_level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ gvmd[%d]: %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, (int)getpid(),
                 level_names[level <= GVM_LOG_DEBUG ? level : GVM_LOG_DEBUG]);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs of a whole line: stdio locks the stream, so lines from
     * several threads do not interleave. */
    n = (int)strlen(line);
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    flockfile(stderr);
    fputs(line, stderr);
    fputc('\n', stderr);
    funlockfile(stderr);
}

uint64_t gvm_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
