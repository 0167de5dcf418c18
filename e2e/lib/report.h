/*
 * One "ok: ..." or "not ok: ..." line per check, flushed at once, for the
 * e2e programs (qdrv, uapi, lvq): the scenarios read these lines.
 * Header-only, so that each static program stays one compile command.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#ifndef E2E_REPORT_H
#define E2E_REPORT_H

#include <stdarg.h>
#include <stdio.h>

static int failures;

static void report(const char *tag, const char *fmt, va_list ap)
{
    fputs(tag, stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void __attribute__((format(printf, 1, 2))) ok(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report("ok: ", fmt, ap);
    va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) bad(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report("not ok: ", fmt, ap);
    va_end(ap);
    failures++;
}

#endif
