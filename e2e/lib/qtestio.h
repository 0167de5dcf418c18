/*
 * One exchange of the qtest protocol, for the e2e programs that talk to a
 * QEMU (qdrv, vnet, lvq): send a command line, skip the asynchronous "IRQ ..."
 * notices, and return what follows "OK".  On anything else it returns
 * NULL and says why in *@why: the answer QEMU gave (*@answered true), or
 * that the connection is gone ("QEMU went away", "QEMU closed the
 * connection": the scenarios look for these words).
 *
 * qtest_cmd() is one command that must succeed; the program defines what
 * a failure does (qtest_failed()).
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#ifndef E2E_QTESTIO_H
#define E2E_QTESTIO_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

static char *qtest_vexchange(FILE *to, FILE *from, const char *fmt,
                             va_list ap0, const char **why, bool *answered)
{
    static char *line;
    static size_t cap;
    static char gone[160];
    va_list ap;
    ssize_t n;

    *answered = false;
    va_copy(ap, ap0);
    vfprintf(to, fmt, ap);
    va_end(ap);
    fputc('\n', to);
    if (fflush(to)) {
        snprintf(gone, sizeof(gone), "QEMU went away (%s)", strerror(errno));
        *why = gone;
        return NULL;
    }
    for (;;) {
        n = getline(&line, &cap, from);
        if (n < 0) {
            *why = "QEMU closed the connection";
            return NULL;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            line[--n] = 0;
        }
        if (!strncmp(line, "IRQ", 3)) {
            continue;               /* asynchronous interrupt notices */
        }
        if (!strncmp(line, "OK", 2)) {
            return line[2] == ' ' ? line + 3 : line + 2;
        }
        *answered = true;
        *why = line;
        return NULL;
    }
}

/*
 * Defined by the program that uses qtest_cmd(): the command FMT (its
 * arguments in AP) failed, with QEMU's answer WHY (ANSWERED) or because
 * the connection is gone (WHY says how).  Reports it; does not return.
 */
static void __attribute__((noreturn))
qtest_failed(const char *why, bool answered, const char *fmt, va_list ap);

/*
 * One command: the text after "OK"; on any other answer NULL if
 * MAY_FAIL, otherwise (and whenever the connection is gone) qtest_failed().
 */
static char * __attribute__((format(printf, 4, 5)))
qtest_cmd(FILE *to, FILE *from, bool may_fail, const char *fmt, ...)
{
    const char *why;
    bool answered;
    va_list ap;
    char *r;

    va_start(ap, fmt);
    r = qtest_vexchange(to, from, fmt, ap, &why, &answered);
    va_end(ap);
    if (r || (answered && may_fail))
        return r;
    va_start(ap, fmt);
    qtest_failed(why, answered, fmt, ap);
}

#endif
