/*
 * ttymig: live-migrate an L2 QEMU that has a 16550-style PCI serial port
 * assigned (the kernel's mtty mdev sample), with bytes waiting in the
 * port's receive FIFO, and check that they arrive on the other side.
 *
 *   ttymig [-s SLOT] [-n BYTES] [-e PREFIX] [-d MS] -- SOURCE QEMU ARGS...
 *          -- DESTINATION QEMU ARGS...
 *
 * ttymig starts both QEMUs itself, each with "-qtest stdio -qtest-log
 * none" and a QMP socket appended (the destination also with "-incoming
 * unix:SOCKET"), plays the guest of both over the qtest protocol (no
 * guest code runs) and drives the migration over QMP.  The serial port
 * must be at 00:SLOT.0 (default 4) in both machines; its BAR0 is an I/O
 * BAR of 8 registers (a 16550: 0 RBR/THR, 1 IER, 2 IIR/FCR, 3 LCR,
 * 4 MCR, 5 LSR, 6 MSR, 7 SCR).  The mtty mdev loops every byte written
 * to THR back into its 16-byte receive FIFO, and that FIFO, with the
 * registers, is the device state it hands to VFIO migration.  (MCR gets
 * the loopback bit too, so an emulated 16550 behaves the same.)
 *
 *   -n BYTES   bytes left in the FIFO (1..15, default 12; a full 16
 *              looks empty to mtty, whose ring has no full flag)
 *   -e PREFIX  QEMU's stderr goes to PREFIX-src.log and PREFIX-dst.log
 *              (default /tmp/ttymig), with "ttymig: ..." marks at the
 *              steps; the tails are shown on failure
 *
 * QEMU runs with the qtest accelerator or, where there is none (Debian's
 * QEMU 10.0), with TCG and a firmware that only halts: either way the
 * machines are "running" and no guest code touches the device.
 *
 * Steps, one "ok: ..." / "not ok: ..." line each (e2e/lib/report.h):
 *  1. both QEMUs answer qtest and QMP; the source runs, the destination
 *     is in "inmigrate";
 *  2. source: the device at 00:SLOT.0 is a 16550-compatible serial
 *     controller (class 07/00/02) with an I/O BAR0, placed at IO_SRC,
 *     I/O decoding on; UART programmed (divisor, 8N1, FIFO on and
 *     cleared, no interrupts, MCR, a random scratch value) and read back;
 *     the FIFO is empty;
 *  3. source: BYTES distinct random bytes written to THR, never read
 *     back; LSR says data ready;
 *  4. negative control, destination before the migration: its fresh mdev
 *     (BAR0 at IO_DST, a different place) has no data ready, and the
 *     comparison against the pattern fails as it must; then a decoy
 *     (other bytes, another MCR and scratch value) is left in it, which
 *     the migrated state has to replace;
 *  5. QMP migrate to the destination's socket; query-migrate polled until
 *     "completed" (a refusal, "failed" or "cancelled" ends the run with
 *     QEMU's error); the source is "postmigrate", the destination
 *     "running" (after "cont" if it stayed paused); the timing line:
 *     wall time from "migrate" to "completed", query-migrate's
 *     total-time, downtime, setup-time, RAM and VFIO bytes (the latter
 *     when every VFIO device migrates: QEMU >= 5.2);
 *  6. destination: BAR0 is back at IO_SRC with I/O on (the migrated
 *     config space), LCR, MCR and the scratch register hold the source's
 *     values, LSR says data ready, and draining RBR until LSR clears
 *     gives exactly the pattern, in order (no decoy byte).
 * Exit status 0 only if every step passed.
 *
 * Written from the 16550 register description and the mtty sample's
 * behaviour (linux samples/vfio-mdev/mtty.c).
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/report.h"
#include "../lib/qtestio.h"

#ifndef TTYMIG_TIMEOUT
#define TTYMIG_TIMEOUT 240          /* the whole run, seconds */
#endif
#define MIG_LIMIT_S 120             /* migrate -> completed */
#define IO_SRC      0xc000u         /* BAR0 on the source (and after) */
#define IO_DST      0xd000u         /* BAR0 on the destination before */
#define FIFO_MAX    16

/* 16550 registers (offsets into BAR0) and bits */
#define UART_RBR 0                  /* read: receive buffer */
#define UART_THR 0                  /* write: transmit holding */
#define UART_DLL 0                  /* DLAB: divisor low */
#define UART_IER 1
#define UART_DLM 1                  /* DLAB: divisor high */
#define UART_FCR 2                  /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_SCR 7
#define LCR_8N1  0x03
#define LCR_DLAB 0x80
#define FCR_ON_CLEAR 0x07           /* FIFO enable, clear RX and TX */
#define MCR_VAL  0x13               /* DTR, RTS, loopback */
#define MCR_DECOY 0x11              /* DTR, loopback */
#define LSR_DR   0x01
#define LSR_EMPTY 0x60              /* THRE | TEMT */

struct vm {
    const char *name;               /* "source", "destination" */
    const char *tag;                /* "src", "dst" */
    pid_t pid;
    FILE *to, *from;                /* qtest */
    int qmp;
    char qmp_path[108];
    char log[256];
    int logfd;
    char buf[65536];                /* QMP input not consumed yet */
    size_t len;
};

static struct vm vms[2] = {
    { .name = "source", .tag = "src", .qmp = -1, .logfd = -1 },
    { .name = "destination", .tag = "dst", .qmp = -1, .logfd = -1 },
};
static struct vm *const src = &vms[0], *const dst = &vms[1];
static struct vm *cur;              /* the QEMU qtest commands go to */
static char mig_path[108];
static unsigned slot = 4;

static void finish(int code) __attribute__((noreturn));

static long ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* One "ttymig: ..." line into V's stderr log, in order with QEMU's. */
static void __attribute__((format(printf, 2, 3)))
mark(struct vm *v, const char *fmt, ...)
{
    char b[256];
    va_list ap;
    int n;

    if (v->logfd < 0)
        return;
    n = snprintf(b, sizeof(b), "ttymig: ");
    va_start(ap, fmt);
    n += vsnprintf(b + n, sizeof(b) - n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(b) - 2)
        n = sizeof(b) - 2;
    b[n++] = '\n';
    if (write(v->logfd, b, n) < 0)
        return;
}

/* QEMU's error line in V's log ("" if none), without the prefix: the
 * first one after our mark AFTER (its root cause, usually), or the last
 * one in the log if AFTER is NULL. */
static const char *qemu_error(struct vm *v, const char *after)
{
    static char out[2][512];
    char *l = NULL, *p, *o = out[v == dst];
    size_t cap = 0;
    bool on = !after;
    FILE *f;

    o[0] = 0;
    if (!(f = fopen(v->log, "r")))
        return o;
    while (getline(&l, &cap, f) >= 0) {
        if (after && !strncmp(l, "ttymig: ", 8) &&
            !strncmp(l + 8, after, strlen(after)))
            on = true;
        if (on && !strncmp(l, "exec ", 5))
            p = l;                  /* start() could not run QEMU */
        else if (!on || !(p = strstr(l, "qemu-system-x86_64: ")) ||
                 strstr(l, "warning:") || strstr(l, "Cannot reset"))
            continue;
        else
            p += strlen("qemu-system-x86_64: ");
        snprintf(o, sizeof(out[0]), "%s", p);
        o[strcspn(o, "\r\n")] = 0;
        if (after)
            break;
    }
    fclose(f);
    free(l);
    return o;
}

/* On failure: the last lines QEMU V wrote (marks left out). */
static void show_log_tail(struct vm *v)
{
    char *lines[6] = { 0 }, *l = NULL;
    size_t cap = 0;
    int n = 0;
    FILE *f;

    if (!(f = fopen(v->log, "r")))
        return;
    while (getline(&l, &cap, f) >= 0) {
        if (!strncmp(l, "ttymig: ", 8))
            continue;
        free(lines[n % 6]);
        lines[n++ % 6] = strdup(l);
    }
    fclose(f);
    free(l);
    for (int i = n > 6 ? n - 6 : 0; i < n; i++) {
        printf("%s qemu stderr: %s", v->tag, lines[i % 6]);
        free(lines[i % 6]);
    }
}

static void stop(struct vm *v)
{
    int st;

    if (v->pid <= 0)
        return;
    mark(v, "stopping QEMU");
    if (v->to)
        fclose(v->to);
    v->to = NULL;
    if (v->qmp >= 0)
        close(v->qmp);
    v->qmp = -1;
    kill(v->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(v->pid, &st, WNOHANG) == v->pid) {
            v->pid = 0;
            break;
        }
        usleep(50000);
    }
    if (v->pid > 0) {
        kill(v->pid, SIGKILL);
        waitpid(v->pid, &st, 0);
        v->pid = 0;
    }
    mark(v, "QEMU stopped");
}

static void unlink_socks(void)
{
    for (int i = 0; i < 2; i++)
        if (vms[i].qmp_path[0])
            unlink(vms[i].qmp_path);
    if (mig_path[0])
        unlink(mig_path);
}

static void finish(int code)
{
    stop(src);
    stop(dst);
    unlink_socks();
    if (code) {
        show_log_tail(src);
        show_log_tail(dst);
    }
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

/* The time limit: a hung QEMU must not hang the scenario (or L1). */
static void on_alarm(int sig)
{
    static const char msg[] = "not ok: no progress within the time limit, "
                              "QEMUs killed\nresult: failed\n";
    (void)sig;
    for (int i = 0; i < 2; i++)
        if (vms[i].pid > 0)
            kill(vms[i].pid, SIGKILL);
    unlink_socks();
    if (write(1, msg, sizeof(msg) - 1) < 0)
        _exit(1);
    _exit(1);
}

/* --- qtest --- */

static void qtest_failed(const char *why, bool answered, const char *fmt,
                         va_list ap)
{
    const char *e;

    /* QEMU gone: its own last words say why, if it said anything */
    if (!answered && (e = qemu_error(cur, NULL))[0])
        fatal("the %s QEMU ended: %s", cur->name, e);
    if (!answered)
        fatal("qtest (%s): %s (nothing on its stderr)", cur->name, why);
    printf("qtest command to the %s failed: ", cur->name);
    vprintf(fmt, ap);
    fatal(" -> %s", why);
}

#define cmd(...) qtest_cmd(cur->to, cur->from, false, __VA_ARGS__)
#include "../lib/qtestpci.h"

static void use(struct vm *v)
{
    cur = v;
}

static uint8_t inb(unsigned port)
{
    return (uint8_t)strtoul(cmd("inb 0x%x", port), NULL, 0);
}

static void outb(unsigned port, uint8_t v)
{
    cmd("outb 0x%x 0x%x", port, v);
}

/* --- QMP on a unix socket --- */

/* The next line from V's QMP (NUL-terminated, events included): 0, -1
 * after timeout_ms, -2 when QEMU closed the socket. */
static int qmp_line(struct vm *v, char *line, size_t cap, int timeout_ms)
{
    struct timespec t0;
    char *nl;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        nl = memchr(v->buf, '\n', v->len);
        if (nl) {
            size_t n = nl - v->buf + 1, m = n - 1;

            if (m >= cap)
                m = cap - 1;
            memcpy(line, v->buf, m);
            while (m > 0 && line[m - 1] == '\r')
                m--;
            line[m] = 0;
            memmove(v->buf, v->buf + n, v->len - n);
            v->len -= n;
            return 0;
        }
        if (v->len == sizeof(v->buf))
            v->len = 0;             /* absurdly long line: drop it */
        long left = timeout_ms - ms_since(&t0);
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = v->qmp, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t r = read(v->qmp, v->buf + v->len, sizeof(v->buf) - v->len);
        if (r == 0 || (r < 0 && errno != EINTR))
            return -2;
        if (r > 0)
            v->len += r;
    }
}

/* One QMP command to V: its reply line (static, until the next call). */
static const char *qmp(struct vm *v, const char *json)
{
    static char line[16384];
    size_t n = strlen(json);
    int r;

    if (write(v->qmp, json, n) != (ssize_t)n || write(v->qmp, "\n", 1) != 1)
        fatal("QMP (%s): cannot send %s (%s)", v->name, json, strerror(errno));
    for (;;) {
        r = qmp_line(v, line, sizeof(line), 30000);
        if (r)
            fatal("QMP (%s): %s after %s%s%s", v->name,
                  r == -2 ? "QEMU closed the socket" : "no reply", json,
                  qemu_error(v, NULL)[0] ? ": " : "", qemu_error(v, NULL));
        if (!strncmp(line, "{\"return\"", 9) || !strncmp(line, "{\"error\"", 8))
            return line;
    }
}

static void qmp_connect(struct vm *v)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char line[4096];

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", v->qmp_path);
    v->qmp = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (v->qmp < 0 || connect(v->qmp, (struct sockaddr *)&sa, sizeof(sa)))
        fatal("QMP (%s): cannot connect to %s: %s", v->name, v->qmp_path,
              strerror(errno));
    if (qmp_line(v, line, sizeof(line), 30000) || !strstr(line, "\"QMP\""))
        fatal("QMP (%s): no greeting on %s", v->name, v->qmp_path);
    if (strncmp(qmp(v, "{\"execute\": \"qmp_capabilities\"}"),
                "{\"return\"", 9))
        fatal("QMP (%s): qmp_capabilities refused", v->name);
}

/* The value of "KEY" in the JSON text S: a pointer to it (after the colon
 * and blanks), or NULL.  Good enough for QEMU's replies: the first
 * occurrence of the key is taken. */
static const char *json_at(const char *s, const char *key)
{
    char k[64];
    const char *p;

    snprintf(k, sizeof(k), "\"%s\"", key);
    if (!s || !(p = strstr(s, k)))
        return NULL;
    p += strlen(k);
    while (*p == ' ')
        p++;
    if (*p++ != ':')
        return NULL;
    while (*p == ' ')
        p++;
    return p;
}

/* A string value (JSON escapes \" and \\ undone) into OUT, "" if absent. */
static const char *json_str(const char *s, const char *key, char *out,
                            size_t cap)
{
    const char *p = json_at(s, key);
    size_t n = 0;

    if (p && *p == '"') {
        for (p++; *p && *p != '"' && n + 1 < cap; p++) {
            if (*p == '\\' && p[1])
                p++;
            out[n++] = *p;
        }
    }
    out[n] = 0;
    return out;
}

static long long json_num(const char *s, const char *key)
{
    const char *p = json_at(s, key);

    return p && (*p == '-' || (*p >= '0' && *p <= '9')) ? strtoll(p, NULL, 10)
                                                         : -1;
}

static const char *status_of(struct vm *v, char *out, size_t cap)
{
    return json_str(qmp(v, "{\"execute\": \"query-status\"}"), "status", out,
                    cap);
}

/* --- the QEMUs --- */

static void start(struct vm *v, char **args, int n, const char *prefix)
{
    char **argv = calloc(n + 12, sizeof(char *));
    int in[2], out[2], a = 0;

    snprintf(v->log, sizeof(v->log), "%s-%s.log", prefix, v->tag);
    v->logfd = open(v->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                    0644);
    if (v->logfd < 0) {
        printf("not ok: open %s: %s\nresult: failed\n", v->log,
               strerror(errno));
        exit(1);
    }
    snprintf(v->qmp_path, sizeof(v->qmp_path), "/tmp/ttymig-%d-%s.qmp",
             (int)getpid(), v->tag);
    unlink(v->qmp_path);
    for (int i = 0; i < n; i++)
        argv[a++] = args[i];
    argv[a++] = "-qmp";
    if (asprintf(&argv[a++], "unix:%s,server=on,wait=off", v->qmp_path) < 0)
        exit(2);
    if (v == dst) {
        argv[a++] = "-incoming";
        if (asprintf(&argv[a++], "unix:%s", mig_path) < 0)
            exit(2);
    }
    argv[a++] = "-qtest";
    argv[a++] = "stdio";
    argv[a++] = "-qtest-log";
    argv[a++] = "none";
    argv[a] = NULL;

    if (pipe(in) || pipe(out))
        fatal("pipe: %s", strerror(errno));
    v->pid = fork();
    if (v->pid < 0)
        fatal("fork: %s", strerror(errno));
    if (v->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(v->logfd, 2);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    v->to = fdopen(in[1], "w");
    v->from = fdopen(out[0], "r");
    printf("ok: started the %s:", v->name);
    for (int i = 0; argv[i]; i++)
        printf(" %s", argv[i]);
    printf(" (pid %d, stderr to %s)\n", (int)v->pid, v->log);
}

/* BAR0 of the serial port in V, checked and placed at IO (I/O on). */
static void place_bar0(struct vm *v, unsigned io)
{
    uint32_t id, cls, bar, size;

    use(v);
    id = pci_read32(0, slot, 0x00);
    cls = pci_read32(0, slot, 0x08) >> 8;
    if (id == 0xffffffffu)
        fatal("%s: nothing at 00:%02x.0", v->name, slot);
    if (cls != 0x070002)
        fatal("%s: 00:%02x.0 (id %04x:%04x) has class 0x%06x, expected a "
              "16550-compatible serial controller 0x070002", v->name, slot,
              id & 0xffff, id >> 16, cls);
    pci_write32(0, slot, 0x10, 0xffffffffu);
    bar = pci_read32(0, slot, 0x10);
    size = (~(bar & ~0x3u) + 1) & 0xffff;
    if (!(bar & 1) || size < 8)
        fatal("%s: BAR0 is not an I/O BAR of 8 ports or more (sizing read "
              "0x%08x)", v->name, bar);
    pci_write32(0, slot, 0x10, io);
    pci_write16(0, slot, 0x04, (uint16_t)(pci_read16(0, slot, 0x04) | 0x1));
    if ((pci_read32(0, slot, 0x10) & ~0x3u) != io ||
        !(pci_read16(0, slot, 0x04) & 0x1))
        fatal("%s: BAR0/command did not stick (BAR0 0x%08x, command 0x%04x)",
              v->name, pci_read32(0, slot, 0x10), pci_read16(0, slot, 0x04));
    ok("%s: 00:%02x.0 is a 16550-compatible serial port (id %04x:%04x); "
       "BAR0 (%u I/O ports) at 0x%x, I/O decoding on", v->name, slot,
       id & 0xffff, id >> 16, size, io);
}

/* Read RBR while LSR says data ready (at most MAX bytes). */
static int drain(unsigned io, uint8_t *got, int max)
{
    int n = 0;

    while (n < max && (inb(io + UART_LSR) & LSR_DR))
        got[n++] = inb(io + UART_RBR);
    return n;
}

static void hex(char *out, const uint8_t *b, int n)
{
    out[0] = 0;
    for (int i = 0; i < n; i++)
        out += sprintf(out, "%s%02x", i ? " " : "", b[i]);
}

/* The received bytes against the pattern: NULL if equal, else why not. */
static const char *compare(const uint8_t *got, int n, const uint8_t *want,
                           int len)
{
    static char why[256];
    int i;

    for (i = 0; i < n && i < len && got[i] == want[i]; i++)
        ;
    if (i == len && n == len)
        return NULL;
    if (i < n && i < len)
        snprintf(why, sizeof(why), "byte %d is 0x%02x, expected 0x%02x", i,
                 got[i], want[i]);
    else
        snprintf(why, sizeof(why), "%d bytes received, %d expected", n, len);
    return why;
}

/* Wait while V's status is WHILE (at most LIMIT_MS): the status then. */
static const char *status_after(struct vm *v, const char *while_st,
                                long limit_ms, char *out, size_t cap)
{
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!strcmp(status_of(v, out, cap), while_st) &&
           ms_since(&t0) < limit_ms)
        usleep(20000);
    return out;
}

static void usage(const char *me)
{
    fprintf(stderr, "usage: %s [-s SLOT] [-n BYTES] [-e PREFIX] [-d MS] -- SOURCE "
            "QEMU ARGS... -- DESTINATION QEMU ARGS...\n", me);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *prefix = "/tmp/ttymig";
    int downtime_ms = 0;
    int opt, len = 12, nsrc, ndst, i, n;
    char **sargs, **dargs, st[64], st2[64], err[1024], json[256];
    char h[64], h2[128];
    uint8_t pat[FIFO_MAX], decoy[4], got[2 * FIFO_MAX], scr, v;
    uint8_t pool[94];
    unsigned seed;
    struct timespec t0;
    long wall, to_running;
    const char *r, *why, *q;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt(argc, argv, "s:n:e:d:")) != -1) {
        switch (opt) {
        case 'd': downtime_ms = atoi(optarg); break;
        case 's': slot = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'n': len = atoi(optarg); break;
        case 'e': prefix = optarg; break;
        default: usage(argv[0]);
        }
    }
    if (len < 1 || len >= FIFO_MAX)
        usage(argv[0]);
    /* SOURCE ARGS -- DESTINATION ARGS (getopt ate the first "--") */
    sargs = argv + optind;
    for (nsrc = 0; optind + nsrc < argc && strcmp(sargs[nsrc], "--"); nsrc++)
        ;
    if (!nsrc || optind + nsrc + 1 >= argc)
        usage(argv[0]);
    dargs = sargs + nsrc + 1;
    ndst = argc - (optind + nsrc + 1);

    /* the pattern: LEN distinct printable bytes, different every run; the
     * decoy: 4 bytes from the rest; the scratch value: not 0 or 0xff */
    seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    for (i = 0; i < 94; i++)
        pool[i] = (uint8_t)(0x21 + i);
    for (i = 0; i < 94; i++) {
        int j = i + rand_r(&seed) % (94 - i);

        v = pool[i]; pool[i] = pool[j]; pool[j] = v;
    }
    memcpy(pat, pool, len);
    memcpy(decoy, pool + len, sizeof(decoy));
    scr = (uint8_t)(1 + rand_r(&seed) % 254);

    snprintf(mig_path, sizeof(mig_path), "/tmp/ttymig-%d.mig", (int)getpid());
    unlink(mig_path);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(TTYMIG_TIMEOUT);

    /* 1. both up */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    start(src, sargs, nsrc, prefix);
    start(dst, dargs, ndst, prefix);
    for (i = 0; i < 2; i++) {
        use(&vms[i]);
        pci_read32(0, 0, 0);        /* qtest answers: QEMU is up */
        mark(&vms[i], "QEMU up, qtest answering");
        qmp_connect(&vms[i]);
    }
    status_of(src, st, sizeof(st));
    status_of(dst, st2, sizeof(st2));
    if (strcmp(st, "running") || strcmp(st2, "inmigrate"))
        fatal("status: source \"%s\" (want running), destination \"%s\" "
              "(want inmigrate)", st, st2);
    ok("both QEMUs answer qtest and QMP after %ld ms; source \"%s\", "
       "destination \"%s\"", ms_since(&t0), st, st2);

    /* 2. the source's serial port */
    place_bar0(src, IO_SRC);
    outb(IO_SRC + UART_LCR, LCR_DLAB | LCR_8N1);
    outb(IO_SRC + UART_DLL, 0x01);  /* 115200 baud */
    outb(IO_SRC + UART_DLM, 0x00);
    outb(IO_SRC + UART_LCR, LCR_8N1);
    outb(IO_SRC + UART_FCR, FCR_ON_CLEAR);
    outb(IO_SRC + UART_IER, 0x00);
    outb(IO_SRC + UART_MCR, MCR_VAL);
    outb(IO_SRC + UART_SCR, scr);
    if (inb(IO_SRC + UART_LCR) != LCR_8N1 ||
        inb(IO_SRC + UART_MCR) != MCR_VAL || inb(IO_SRC + UART_SCR) != scr ||
        (inb(IO_SRC + UART_IER) & 0x0f))
        fatal("source: UART registers did not stick (LCR 0x%02x, MCR 0x%02x, "
              "SCR 0x%02x (wrote 0x%02x), IER 0x%02x)", inb(IO_SRC + UART_LCR),
              inb(IO_SRC + UART_MCR), inb(IO_SRC + UART_SCR), scr,
              inb(IO_SRC + UART_IER));
    v = inb(IO_SRC + UART_LSR);
    if ((v & LSR_DR) || (v & LSR_EMPTY) != LSR_EMPTY)
        fatal("source: LSR 0x%02x after the FIFO was cleared (want THRE+TEMT, "
              "no data ready)", v);
    ok("source: UART programmed: divisor 1, LCR 0x%02x (8N1), FIFO on and "
       "cleared, IER 0, MCR 0x%02x, SCR 0x%02x; LSR 0x%02x (empty)", LCR_8N1,
       MCR_VAL, scr, v);

    /* 3. the pattern, left in the FIFO */
    for (i = 0; i < len; i++)
        outb(IO_SRC + UART_THR, pat[i]);
    v = inb(IO_SRC + UART_LSR);
    hex(h, pat, len);
    if (!(v & LSR_DR))
        fatal("source: LSR 0x%02x after writing %d bytes: no data ready "
              "(no loopback?)", v, len);
    ok("source: wrote %d bytes to THR (%s = \"%.*s\"), not read back; LSR "
       "0x%02x (data ready)", len, h, len, (char *)pat, v);
    mark(src, "pattern written");

    /* 4. negative control: the destination's fresh device before the
     * migration does not hold the pattern */
    place_bar0(dst, IO_DST);
    v = inb(IO_DST + UART_LSR);
    n = drain(IO_DST, got, 2 * FIFO_MAX);
    why = compare(got, n, pat, len);
    if ((v & LSR_DR) || !why)
        fatal("negative control: the destination's device before the "
              "migration: LSR 0x%02x, %d bytes read%s", v, n,
              why ? "" : ", equal to the pattern");
    ok("negative control: the destination's fresh device before the "
       "migration: LSR 0x%02x (no data), the comparison fails as it must "
       "(%s)", v, why);
    outb(IO_DST + UART_LCR, LCR_8N1);
    outb(IO_DST + UART_FCR, FCR_ON_CLEAR);
    outb(IO_DST + UART_MCR, MCR_DECOY);
    outb(IO_DST + UART_SCR, (uint8_t)~scr);
    for (i = 0; i < (int)sizeof(decoy); i++)
        outb(IO_DST + UART_THR, decoy[i]);
    v = inb(IO_DST + UART_LSR);
    hex(h2, decoy, sizeof(decoy));
    if (!(v & LSR_DR))
        fatal("destination: LSR 0x%02x after writing the decoy: no data ready",
              v);
    ok("destination: decoy left in its FIFO before the migration (%s, MCR "
       "0x%02x, SCR 0x%02x; LSR 0x%02x): the migrated state must replace it",
       h2, MCR_DECOY, (uint8_t)~scr, v);

    /* 5. migrate (-d: the downtime the migration may take) */
    if (downtime_ms > 0) {
        snprintf(json, sizeof(json), "{\"execute\": "
                 "\"migrate-set-parameters\", \"arguments\": "
                 "{\"downtime-limit\": %d}}", downtime_ms);
        r = qmp(src, json);
        if (!strstr(r, "\"return\""))
            fatal("source: migrate-set-parameters refused: %s", r);
        ok("source: downtime-limit %d ms", downtime_ms);
    }
    snprintf(json, sizeof(json), "{\"execute\": \"migrate\", \"arguments\": "
             "{\"uri\": \"unix:%s\"}}", mig_path);
    mark(src, "migrate");
    mark(dst, "migrate sent to the source");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = qmp(src, json);
    if (strncmp(r, "{\"return\"", 9))
        fatal("migrate refused by the source: %s",
              json_str(r, "desc", err, sizeof(err))[0] ? err : r);
    for (;;) {
        r = qmp(src, "{\"execute\": \"query-migrate\"}");
        json_str(r, "status", st, sizeof(st));
        if (!strcmp(st, "completed") || !strcmp(st, "failed") ||
            !strcmp(st, "cancelled"))
            break;
        if (ms_since(&t0) > MIG_LIMIT_S * 1000)
            fatal("migration not completed after %d s (status \"%s\")",
                  MIG_LIMIT_S, st);
        usleep(10000);
    }
    wall = ms_since(&t0);
    mark(src, "migration %s", st);
    mark(dst, "source says migration %s", st);
    if (strcmp(st, "completed")) {
        json_str(r, "error-desc", err, sizeof(err));
        usleep(200000);             /* let the destination say why */
        q = qemu_error(dst, "migrate");
        fatal("migration %s after %ld ms: %s%s%s", st, wall,
              err[0] ? err : "no error-desc", q[0] ? "; destination: " : "", q);
    }
    {
        const char *ram = json_at(r, "ram"), *vfio = json_at(r, "vfio");
        char vf[64] = "";

        if (vfio && *vfio == '{')
            snprintf(vf, sizeof(vf), ", VFIO device state %lld bytes",
                     json_num(vfio, "transferred"));
        ok("timing: migration completed, wall %ld ms (migrate to completed), "
           "total-time %lld ms, downtime %lld ms, setup-time %lld ms, RAM "
           "%lld bytes%s", wall, json_num(r, "total-time"),
           json_num(r, "downtime"), json_num(r, "setup-time"),
           ram && *ram == '{' ? json_num(ram, "transferred") : -1LL, vf);
    }
    status_of(src, st, sizeof(st));
    status_after(dst, "inmigrate", 30000, st2, sizeof(st2));
    if (strcmp(st, "postmigrate"))
        bad("source status \"%s\" after the migration, expected postmigrate",
            st);
    if (!strcmp(st2, "paused") || !strcmp(st2, "prelaunch")) {
        printf("destination status \"%s\": cont\n", st2);
        r = qmp(dst, "{\"execute\": \"cont\"}");
        if (strncmp(r, "{\"return\"", 9))
            fatal("destination: cont refused: %s", r);
        status_of(dst, st2, sizeof(st2));
    }
    to_running = ms_since(&t0);
    if (strcmp(st2, "running"))
        fatal("destination status \"%s\" after the migration, expected "
              "running%s%s", st2, qemu_error(dst, "migrate")[0] ? ": " : "",
              qemu_error(dst, "migrate"));
    json_str(qmp(dst, "{\"execute\": \"query-migrate\"}"), "status", err,
             sizeof(err));
    ok("source \"%s\", destination \"%s\" %ld ms after migrate (its "
       "query-migrate: \"%s\")", st, st2, to_running, err);
    mark(dst, "running");

    /* 6. the destination's device */
    use(dst);
    {
        uint32_t bar = pci_read32(0, slot, 0x10);
        uint16_t com = pci_read16(0, slot, 0x04);

        if ((bar & ~0x3u) != IO_SRC || !(com & 1))
            fatal("destination: BAR0 0x%08x, command 0x%04x after the "
                  "migration: not the source's (BAR0 at 0x%x, I/O on)", bar,
                  com, IO_SRC);
        ok("destination: config space migrated: BAR0 at 0x%x (was 0x%x "
           "before), I/O decoding on", IO_SRC, IO_DST);
    }
    {
        uint8_t lcr = inb(IO_SRC + UART_LCR), mcr = inb(IO_SRC + UART_MCR);
        uint8_t s = inb(IO_SRC + UART_SCR);

        if (lcr != LCR_8N1 || mcr != MCR_VAL || s != scr)
            bad("destination: registers after the migration: LCR 0x%02x, "
                "MCR 0x%02x, SCR 0x%02x; the source had 0x%02x, 0x%02x, "
                "0x%02x", lcr, mcr, s, LCR_8N1, MCR_VAL, scr);
        else
            ok("destination: LCR 0x%02x, MCR 0x%02x, SCR 0x%02x: the "
               "source's registers", lcr, mcr, s);
    }
    v = inb(IO_SRC + UART_LSR);
    if (!(v & LSR_DR))
        bad("destination: LSR 0x%02x: no data ready after the migration", v);
    n = drain(IO_SRC, got, 2 * FIFO_MAX);
    hex(h2, got, n);
    why = compare(got, n, pat, len);
    if (why)
        bad("destination: FIFO after the migration: %s (received: %s)", why,
            n ? h2 : "nothing");
    else
        ok("destination: LSR 0x%02x (data ready), %d bytes drained from RBR "
           "equal the pattern in order (%s)", v, n, h2);
    v = inb(IO_SRC + UART_LSR);
    if (v & LSR_DR)
        bad("destination: LSR 0x%02x: still data ready after %d bytes", v, n);
    finish(failures ? 1 : 0);
}
