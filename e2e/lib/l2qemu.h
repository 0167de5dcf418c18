/*
 * An L2 QEMU that an e2e program (qdrv, vnet) starts itself and drives
 * as its guest over the qtest protocol on QEMU's stdio: starting it with
 * the pipes, marks in its stderr log, one qtest command, guest memory and
 * MMIO, PCI config space (qtestpci.h), and stopping it with the result
 * line ("result: passed" / "result: failed", QEMU's last log lines on
 * failure).
 *
 * The program defines L2QEMU_TAG (e.g. "vnet") before including this
 * header: its marks in the log are "TAG: ..." lines.  Include report.h
 * first.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#ifndef E2E_L2QEMU_H
#define E2E_L2QEMU_H

#ifndef L2QEMU_TAG
#error "define L2QEMU_TAG (the program name for the log marks) first"
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qtestio.h"

static FILE *to_qemu, *from_qemu;
static pid_t qemu_pid;
static int logfd = -1;              /* -e: QEMU's stderr, plus our marks */
static const char *logpath;
/* log lines starting with this are left out of the tail shown on failure
 * (besides our marks), e.g. "vhost_" trace lines */
static const char *l2_tail_skip;
/* run just before QEMU is asked to quit, e.g. to close a QMP socket */
static void (*l2_release)(void);
/* a socket path of ours on QEMU's command line, removed at the end (also
 * on the time limit) */
static const char *l2_sock_path;

/* The arguments l2_start appends to QEMU's ("-qtest stdio -qtest-log none"). */
#define L2_QTEST_ARGC 4

/* -e: one "TAG: ..." line into QEMU's stderr log, in order with QEMU's. */
static void __attribute__((format(printf, 1, 2))) mark(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int n;

    if (logfd < 0)
        return;
    n = snprintf(buf, sizeof(buf), "%s: ", L2QEMU_TAG);
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    if (write(logfd, buf, n) < 0)
        return;
}

/* -e: on failure, show QEMU's last words (they are in the log, not here). */
static void show_log_tail(void)
{
    const char *tag = L2QEMU_TAG ": ";
    char *lines[6] = { 0 };
    char *l = NULL;
    size_t cap = 0;
    int n = 0;
    FILE *f;

    if (!logpath || !(f = fopen(logpath, "r")))
        return;
    while (getline(&l, &cap, f) >= 0) {
        if (!strncmp(l, tag, strlen(tag)) ||
            (l2_tail_skip && !strncmp(l, l2_tail_skip, strlen(l2_tail_skip))))
            continue;
        free(lines[n % 6]);
        lines[n++ % 6] = strdup(l);
    }
    fclose(f);
    free(l);
    for (int i = n > 6 ? n - 6 : 0; i < n; i++) {
        printf("qemu stderr: %s", lines[i % 6]);
        free(lines[i % 6]);
    }
}

/* The overall limit (l2_start's alarm): a hung QEMU must not hang the
 * scenario (or the guest). */
static void l2_on_alarm(int sig)
{
    static const char msg[] = "not ok: no progress within the time limit, "
                              "QEMU killed\nresult: failed\n";
    (void)sig;
    if (qemu_pid > 0)
        kill(qemu_pid, SIGKILL);
    if (l2_sock_path && l2_sock_path[0])
        unlink(l2_sock_path);
    if (write(1, msg, sizeof(msg) - 1) < 0)
        _exit(1);
    _exit(1);
}

/* Stop QEMU (if it runs), print the result line and exit with CODE. */
static void __attribute__((noreturn)) finish(int code)
{
    int st;

    if (qemu_pid > 0) {
        mark("stopping QEMU");
        if (to_qemu)
            fclose(to_qemu);
        to_qemu = NULL;
        if (l2_release)
            l2_release();
        /* Done with it: ask QEMU to quit, then insist. */
        kill(qemu_pid, SIGTERM);
        for (int i = 0; i < 100; i++) {
            if (waitpid(qemu_pid, &st, WNOHANG) == qemu_pid) {
                qemu_pid = 0;
                break;
            }
            usleep(50000);
        }
        if (qemu_pid > 0) {
            kill(qemu_pid, SIGKILL);
            waitpid(qemu_pid, &st, 0);
        }
        mark("QEMU stopped");
    }
    if (l2_sock_path && l2_sock_path[0])
        unlink(l2_sock_path);
    if (code)
        show_log_tail();
    printf("result: %s\n", code ? "failed" : "passed");
    exit(code);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report("not ok: ", fmt, ap);
    va_end(ap);
    finish(1);
}

/* A qtest command failed: "not ok" with the command and QEMU's answer. */
static void qtest_failed(const char *why, bool answered, const char *fmt,
                         va_list ap)
{
    if (!answered)
        fatal("qtest: %s%s", why,
              strstr(why, "closed") ? " (see its stderr)" : "");
    fputs("qtest command failed: ", stdout);
    vprintf(fmt, ap);
    fatal(" -> %s", why);
}

/* One qtest command: the text after "OK" (static buffer); anything else
 * fails the run, or (try_cmd, on a "FAIL" answer) returns NULL. */
#define cmd(...) qtest_cmd(to_qemu, from_qemu, false, __VA_ARGS__)
#define try_cmd(...) qtest_cmd(to_qemu, from_qemu, true, __VA_ARGS__)

#include "qtestpci.h"

static inline uint64_t num(const char *s)
{
    return strtoull(s, NULL, 0);
}

/* MMIO (or RAM) of WIDTH 1, 2 or 4 bytes at guest-physical A. */
static inline uint32_t mmio_read(int width, uint64_t a)
{
    return (uint32_t)num(cmd("read%c 0x%" PRIx64, width == 1 ? 'b' :
                             width == 2 ? 'w' : 'l', a));
}

static inline void mmio_write(int width, uint64_t a, uint32_t v)
{
    cmd("write%c 0x%" PRIx64 " 0x%x", width == 1 ? 'b' : width == 2 ? 'w' : 'l',
        a, v);
}

static inline void ram_write(uint64_t a, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    char *hex = malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", p[i]);
    cmd("write 0x%" PRIx64 " 0x%zx 0x%s", a, n, hex);
    free(hex);
}

static inline void ram_read(uint64_t a, void *buf, size_t n)
{
    const char *r = cmd("read 0x%" PRIx64 " 0x%zx", a, n);
    uint8_t *p = buf;

    if (r[0] == '0' && r[1] == 'x')
        r += 2;
    if (strlen(r) != 2 * n)
        fatal("qtest read returned %zu hex digits, expected %zu", strlen(r),
              2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;

        sscanf(r + 2 * i, "%2x", &v);
        p[i] = (uint8_t)v;
    }
}

/* -e LOG: open QEMU's stderr log (truncated first), or fail the run. */
static inline void l2_open_log(void)
{
    if (!logpath)
        return;
    logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                 0644);
    if (logfd < 0) {
        printf("not ok: open %s: %s\nresult: failed\n", logpath,
               strerror(errno));
        exit(1);
    }
}

/*
 * Start QEMU: qargv[0..qa) with "-qtest stdio -qtest-log none" appended
 * (qargv has room for L2_QTEST_ARGC + 1 more), its stdio on our pipes,
 * its stderr to the log (-e); the whole run is limited to timeout_s
 * seconds.  Prints "ok: started ARGS... (pid N)".
 */
static inline void l2_start(char **qargv, int qa, unsigned timeout_s)
{
    int in[2], outp[2];

    qargv[qa++] = "-qtest";
    qargv[qa++] = "stdio";
    qargv[qa++] = "-qtest-log";
    qargv[qa++] = "none";
    qargv[qa] = NULL;

    if (pipe(in) || pipe(outp))
        fatal("pipe: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, l2_on_alarm);
    alarm(timeout_s);
    qemu_pid = fork();
    if (qemu_pid < 0)
        fatal("fork: %s", strerror(errno));
    if (qemu_pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);         /* O_APPEND, shared with our marks */
        close(in[0]); close(in[1]); close(outp[0]); close(outp[1]);
        execvp(qargv[0], qargv);
        fprintf(stderr, "exec %s: %s\n", qargv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    to_qemu = fdopen(in[1], "w");
    from_qemu = fdopen(outp[0], "r");
    printf("ok: started");
    for (int i = 0; qargv[i]; i++)
        printf(" %s", qargv[i]);
    printf(" (pid %d)\n", (int)qemu_pid);
}

#endif
