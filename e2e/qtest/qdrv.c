/*
 * qdrv: run a QEMU with an assigned edu device under the qtest accelerator
 * and check DMA through the assignment byte for byte.
 *
 *   qdrv [-s SLOT] [-i] [-d CDEV] -- QEMU ARGS...
 *
 * qdrv starts QEMU itself with "-qtest stdio -qtest-log none" appended
 * and speaks the qtest protocol over pipes.  QEMU runs either with the
 * qtest accelerator ("-accel qtest") or, where that is not built in (as
 * in Debian's QEMU 10.0), with another accelerator and "-S" (CPUs never
 * run; the qtest server still reads and writes memory and I/O).  The edu must be placed at bus 0 slot SLOT
 * (default 4) of the L2 machine, e.g. "-device vfio-pci,...,addr=04.0".
 *
 *   -i        open /dev/iommu and pass it to QEMU; the string @IOMMUFD@ in
 *             any QEMU argument is replaced by its fd number
 *   -d CDEV   open the VFIO device cdev (e.g. /dev/vfio/devices/vfio0)
 *             and pass it; @DEVFD@ is replaced by its fd number
 *
 * (this is how libvirt hands iommufd and device fds to QEMU).
 *
 * Steps, one line each ("ok: ..." / "not ok: ..."): find the device with
 * PCI config cycles through 0xcf8/0xcfc, size and place BAR0, enable
 * memory and bus mastering, write a pattern into L2 guest RAM, program the
 * edu DMA engine RAM -> device -> RAM through BAR0, wait, read back and
 * compare.  Exit status 0 only if all steps passed.
 */
#define _GNU_SOURCE
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
#include <time.h>
#include <unistd.h>

#define BAR0_ADDR   0xe0000000u     /* where we place the edu's BAR0 */
#define RAM_SRC     0x100000u       /* L2 guest-physical source buffer */
#define RAM_DST     0x200000u       /* L2 guest-physical destination */
#define XFER        2048            /* edu limit is < 4096 per transfer */
#define EDU_BUF     0x40000u

static FILE *to_qemu, *from_qemu;
static pid_t qemu_pid;
static int failures;

static void out(const char *tag, const char *fmt, va_list ap)
{
    fputs(tag, stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out("ok: ", fmt, ap);
    va_end(ap);
}

static void bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out("not ok: ", fmt, ap);
    va_end(ap);
    failures++;
}

/* Overall limit: a hung QEMU must not hang the scenario (or the guest). */
#ifndef QDRV_TIMEOUT
#define QDRV_TIMEOUT 240
#endif

static void on_alarm(int sig)
{
    static const char msg[] = "not ok: no progress within the time limit, "
                              "QEMU killed\nresult: failed\n";
    (void)sig;
    if (qemu_pid > 0)
        kill(qemu_pid, SIGKILL);
    if (write(1, msg, sizeof(msg) - 1) < 0)
        _exit(1);
    _exit(1);
}

static void finish(int code)
{
    int st;

    if (qemu_pid > 0) {
        if (to_qemu)
            fclose(to_qemu);
        to_qemu = NULL;
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
    }
    printf("result: %s\n", code ? "failed" : "passed");
    exit(code);
}

static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out("not ok: ", fmt, ap);
    va_end(ap);
    finish(1);
}

/*
 * Send one qtest command; return the text after "OK" (static buffer), or
 * NULL on a "FAIL" reply when may_fail is set (otherwise that is fatal).
 */
static char *vcmd(int may_fail, const char *fmt, va_list ap0)
{
    static char *line;
    static size_t cap;
    va_list ap;
    ssize_t n;

    va_copy(ap, ap0);
    vfprintf(to_qemu, fmt, ap);
    va_end(ap);
    fputc('\n', to_qemu);
    if (fflush(to_qemu))
        fatal("qtest: QEMU went away (%s)", strerror(errno));
    for (;;) {
        n = getline(&line, &cap, from_qemu);
        if (n < 0)
            fatal("qtest: QEMU closed the connection (see its stderr)");
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!strncmp(line, "IRQ", 3))
            continue;               /* asynchronous interrupt notices */
        if (!strncmp(line, "OK", 2))
            return line[2] == ' ' ? line + 3 : line + 2;
        if (may_fail)
            return NULL;
        va_copy(ap, ap0);
        fputs("qtest command failed: ", stdout);
        vprintf(fmt, ap);
        va_end(ap);
        fatal(" -> %s", line);
    }
}

static char *cmd(const char *fmt, ...)
{
    va_list ap;
    char *r;

    va_start(ap, fmt);
    r = vcmd(0, fmt, ap);
    va_end(ap);
    return r;
}

static char *try_cmd(const char *fmt, ...)
{
    va_list ap;
    char *r;

    va_start(ap, fmt);
    r = vcmd(1, fmt, ap);
    va_end(ap);
    return r;
}

static uint64_t num(const char *s)
{
    return strtoull(s, NULL, 0);
}

static uint32_t cfg_addr(unsigned slot, unsigned reg)
{
    return 0x80000000u | (slot << 11) | (reg & 0xfc);
}

static uint32_t cfg_read32(unsigned slot, unsigned reg)
{
    cmd("outl 0xcf8 0x%x", cfg_addr(slot, reg));
    return (uint32_t)num(cmd("inl 0xcfc"));
}

static void cfg_write32(unsigned slot, unsigned reg, uint32_t v)
{
    cmd("outl 0xcf8 0x%x", cfg_addr(slot, reg));
    cmd("outl 0xcfc 0x%x", v);
}

static uint32_t mmio_read32(uint64_t a)
{
    return (uint32_t)num(cmd("readl 0x%" PRIx64, a));
}

static void mmio_write32(uint64_t a, uint32_t v)
{
    cmd("writel 0x%" PRIx64 " 0x%x", a, v);
}

static void ram_write(uint64_t a, const uint8_t *p, size_t n)
{
    char *hex = malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", p[i]);
    cmd("write 0x%" PRIx64 " 0x%zx 0x%s", a, n, hex);
    free(hex);
}

static void ram_read(uint64_t a, uint8_t *p, size_t n)
{
    const char *r = cmd("read 0x%" PRIx64 " 0x%zx", a, n);

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

static int can_step = 1;

static int edu_dma(uint64_t src, uint64_t dst, uint32_t cnt, int to_ram)
{
    struct timespec t0, t;

    mmio_write32(BAR0_ADDR + 0x80, (uint32_t)src);
    mmio_write32(BAR0_ADDR + 0x88, (uint32_t)dst);
    mmio_write32(BAR0_ADDR + 0x90, cnt);
    mmio_write32(BAR0_ADDR + 0x98, 1 | (to_ram ? 2 : 0));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        /*
         * An assigned edu runs in the L0 device model on real time; an
         * emulated one (driver self-test) runs on this QEMU's virtual
         * clock, which only moves under qtest when we step it (only the
         * qtest accelerator allows stepping; otherwise don't try again).
         */
        if (!(mmio_read32(BAR0_ADDR + 0x98) & 1))
            return 0;
        if (can_step && !try_cmd("clock_step 20000000"))
            can_step = 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20)
            return -1;
        usleep(10000);
    }
}

static char *subst(const char *arg, const char *key, int fd)
{
    const char *p = strstr(arg, key);
    char *r;

    if (!p || fd < 0)
        return (char *)arg;
    if (asprintf(&r, "%.*s%d%s", (int)(p - arg), arg, fd, p + strlen(key)) < 0)
        exit(2);
    return subst(r, key, fd);
}

static int open_inherit(const char *path)
{
    int fd = open(path, O_RDWR);        /* no O_CLOEXEC: QEMU inherits it */

    if (fd < 0) {
        printf("not ok: open %s: %s\n", path, strerror(errno));
        printf("result: failed\n");
        exit(1);
    }
    printf("ok: opened %s as fd %d for QEMU\n", path, fd);
    return fd;
}

int main(int argc, char **argv)
{
    unsigned slot = 4;
    int iommufd = -1, devfd = -1, opt, i, qa, qb;
    int in[2], outp[2];
    char **qargv;
    uint32_t id, bar, size, cmdreg;
    uint8_t src[XFER], dst[XFER];

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt(argc, argv, "s:id:")) != -1) {
        switch (opt) {
        case 's': slot = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'i': iommufd = open_inherit("/dev/iommu"); break;
        case 'd': devfd = open_inherit(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-s SLOT] [-i] [-d CDEV] -- QEMU ARGS...\n",
                    argv[0]);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: no QEMU command given\n", argv[0]);
        return 2;
    }

    qargv = calloc(argc - optind + 5, sizeof(char *));
    for (i = optind, qa = 0; i < argc; i++, qa++)
        qargv[qa] = subst(subst(argv[i], "@IOMMUFD@", iommufd), "@DEVFD@", devfd);
    qargv[qa++] = "-qtest";
    qargv[qa++] = "stdio";
    qargv[qa++] = "-qtest-log";
    qargv[qa++] = "none";
    qargv[qa] = NULL;

    if (pipe(in) || pipe(outp))
        fatal("pipe: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(QDRV_TIMEOUT);
    qemu_pid = fork();
    if (qemu_pid < 0)
        fatal("fork: %s", strerror(errno));
    if (qemu_pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[0]); close(in[1]); close(outp[0]); close(outp[1]);
        execvp(qargv[0], qargv);
        fprintf(stderr, "exec %s: %s\n", qargv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    if (iommufd >= 0)
        close(iommufd);
    if (devfd >= 0)
        close(devfd);
    to_qemu = fdopen(in[1], "w");
    from_qemu = fdopen(outp[0], "r");
    printf("ok: started");
    for (qb = 0; qargv[qb]; qb++)
        printf(" %s", qargv[qb]);
    printf(" (pid %d)\n", (int)qemu_pid);

    /* PCI: find the assigned edu at 00:SLOT.0 */
    id = cfg_read32(slot, 0);
    if (id != 0x11e81234)
        fatal("00:%02x.0 has id 0x%08x, expected edu 1234:11e8", slot, id);
    ok("00:%02x.0 is the assigned edu (1234:11e8)", slot);

    cfg_write32(slot, 0x10, 0xffffffff);
    bar = cfg_read32(slot, 0x10);
    size = ~(bar & ~0xfu) + 1;
    if ((bar & 1) || size < 0x1000)
        fatal("BAR0 sizing read 0x%08x", bar);
    cfg_write32(slot, 0x10, BAR0_ADDR);
    cmdreg = cfg_read32(slot, 0x4);
    cfg_write32(slot, 0x4, (cmdreg & 0xffff) | 0x6);
    if ((cfg_read32(slot, 0x10) & ~0xfu) != BAR0_ADDR ||
        !(cfg_read32(slot, 0x4) & 0x4))
        fatal("BAR0/command did not stick (BAR0 0x%08x, command 0x%04x)",
              cfg_read32(slot, 0x10), cfg_read32(slot, 0x4) & 0xffff);
    ok("BAR0 (0x%x bytes) placed at 0x%x, memory + bus master enabled",
       size, BAR0_ADDR);

    id = mmio_read32(BAR0_ADDR);
    if (id >> 16 != 0x0100)
        fatal("edu identification register through BAR0 reads 0x%08x", id);
    mmio_write32(BAR0_ADDR + 4, 0x12345678);
    if (mmio_read32(BAR0_ADDR + 4) != ~0x12345678u)
        fatal("edu liveness register did not invert the written value");
    ok("BAR0 MMIO reaches the device: id 0x%08x, liveness check passed", id);

    for (i = 0; i < XFER; i++)
        src[i] = (uint8_t)(i * 13 + (i >> 7) + 0x21);
    memset(dst, 0xee, sizeof(dst));
    ram_write(RAM_SRC, src, XFER);
    ram_write(RAM_DST, dst, XFER);
    ok("wrote a %d-byte pattern at guest-physical 0x%x", XFER, RAM_SRC);

    if (edu_dma(RAM_SRC, EDU_BUF, XFER, 0))
        fatal("DMA guest RAM -> device did not complete");
    if (edu_dma(EDU_BUF, RAM_DST, XFER, 1))
        fatal("DMA device -> guest RAM did not complete");
    ok("DMA RAM 0x%x -> edu -> RAM 0x%x completed", RAM_SRC, RAM_DST);

    ram_read(RAM_DST, dst, XFER);
    if (memcmp(src, dst, XFER)) {
        for (i = 0; src[i] == dst[i]; i++)
            ;
        bad("byte %d at 0x%x is 0x%02x, expected 0x%02x", i, RAM_DST + i,
            dst[i], src[i]);
    } else {
        ok("%d bytes moved by DMA through the assigned device, all verified",
           XFER);
    }
    finish(failures ? 1 : 0);
    return 0;
}
