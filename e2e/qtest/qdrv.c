/*
 * qdrv: run a QEMU with an assigned edu device under the qtest accelerator
 * and check DMA through the assignment byte for byte.
 *
 *   qdrv [-s SLOT] [-r PORT] [-i] [-d CDEV] [-e LOG] [-k] [-v] [-u ID]
 *        [-a SRC,DST]
 *        -- QEMU ARGS...
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
 *   -r PORT   the edu sits behind a PCIe root port at 00:PORT.0 (e.g.
 *             "-device pcie-root-port,id=rp0,addr=03.0,chassis=1
 *             -device vfio-pci,...,bus=rp0,addr=00.0"); qdrv gives the
 *             port bus 1 and a memory window for BAR0 and finds the edu
 *             at 01:00.0 (-s is then ignored)
 *   -e LOG    QEMU's stderr goes to the file LOG (truncated first); qdrv
 *             adds its own "qdrv: ..." lines to it at the points that
 *             matter (QEMU up, DMA verified, device_del sent, device
 *             gone, QEMU stopped), so the order of QEMU's trace lines
 *             relative to those points can be checked afterwards
 *   -k        QEMU must run under KVM: QMP query-kvm says enabled and
 *             present, and QEMU holds a KVM VM fd (/proc/PID/fd ->
 *             anon_inode:kvm-vm)
 *   -v        QEMU must hold a KVM VFIO device fd (anon_inode:kvm-vfio,
 *             KVM_CREATE_DEVICE KVM_DEV_TYPE_VFIO): QEMU told KVM about
 *             its VFIO files (checked with the device realized; a miss is
 *             reported but the run goes on)
 *   -a SRC,DST  guest-physical addresses of the DMA source and destination
 *             buffers (default 0x100000,0x200000), e.g. across the 64 MiB
 *             boundaries where QEMU's chunked maps meet
 *   -u ID     after the DMA check, hot-unplug device ID: QMP device_del,
 *             then (with -r) power the slot off through the port's PCIe
 *             Slot Control as a guest answering the attention button
 *             does, and wait for the DEVICE_DELETED event
 *
 * -k and -u talk QMP on a unix socket qdrv adds ("-qmp unix:...").
 * With an accelerator other than qtest, QEMU must be held with "-S".
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
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/report.h"
#define L2QEMU_TAG "qdrv"
#include "../lib/l2qemu.h"

#define BAR0_ADDR   0xe0000000u     /* where we place the edu's BAR0 */
/* L2 guest-physical source and destination buffers (-a changes them) */
static uint32_t ram_src = 0x100000u, ram_dst = 0x200000u;
#define XFER        2048            /* edu limit is < 4096 per transfer */
#define EDU_BUF     0x40000u

static char qmp_path[108];
static int qmp_fd = -1;

/* Overall limit: a hung QEMU must not hang the scenario (or the guest). */
#ifndef QDRV_TIMEOUT
#define QDRV_TIMEOUT 240
#endif

/* l2_release: QMP goes before QEMU is asked to quit */
static void qmp_close(void)
{
    if (qmp_fd >= 0)
        close(qmp_fd);
    qmp_fd = -1;
}

/* PCI config cycles through 0xcf8/0xcfc; the edu is at 00:SLOT.0, or at
 * 01:00.0 behind a root port (-r) */
static unsigned edu_bus;

static uint32_t cfg_read32(unsigned slot, unsigned reg)
{
    return pci_read32(edu_bus, slot, reg);
}

static void cfg_write32(unsigned slot, unsigned reg, uint32_t v)
{
    pci_write32(edu_bus, slot, reg, v);
}

static uint32_t mmio_read32(uint64_t a)
{
    return mmio_read(4, a);
}

static void mmio_write32(uint64_t a, uint32_t v)
{
    mmio_write(4, a, v);
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

/* --- QMP (for -k and -u), on a unix socket QEMU listens on --- */

static char qmp_buf[65536];
static size_t qmp_len;
static const char *unplug_id;
static int unplug_seen;             /* DEVICE_DELETED for unplug_id came */

/* The next line from QMP into line (NUL-terminated): 0, or -1 after
 * timeout_ms, -2 when QEMU closed the socket.  Notes DEVICE_DELETED
 * events on the way. */
static int qmp_line(char *line, size_t cap, int timeout_ms)
{
    struct timespec t0, t;
    char *nl;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        nl = memchr(qmp_buf, '\n', qmp_len);
        if (nl) {
            size_t n = nl - qmp_buf + 1, m = n - 1;

            if (m >= cap)
                m = cap - 1;
            memcpy(line, qmp_buf, m);
            while (m > 0 && (line[m - 1] == '\r' || line[m - 1] == '\n'))
                m--;
            line[m] = 0;
            memmove(qmp_buf, qmp_buf + n, qmp_len - n);
            qmp_len -= n;
            if (unplug_id && strstr(line, "\"DEVICE_DELETED\"")) {
                char want[160];

                snprintf(want, sizeof(want), "\"%s\"", unplug_id);
                if (strstr(line, want))
                    unplug_seen = 1;
            }
            return 0;
        }
        if (qmp_len == sizeof(qmp_buf))
            qmp_len = 0;                /* absurdly long line: drop it */
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
                                  (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = qmp_fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t r = read(qmp_fd, qmp_buf + qmp_len, sizeof(qmp_buf) - qmp_len);
        if (r == 0 || (r < 0 && errno != EINTR))
            return -2;
        if (r < 0)
            continue;
        qmp_len += r;
    }
}

/* Execute one QMP command; return its reply line (static) or die. */
static const char *qmp(const char *json)
{
    static char line[8192];
    size_t n = strlen(json);

    if (write(qmp_fd, json, n) != (ssize_t)n || write(qmp_fd, "\n", 1) != 1)
        fatal("QMP: cannot send %s (%s)", json, strerror(errno));
    for (;;) {
        if (qmp_line(line, sizeof(line), 20000))
            fatal("QMP: no reply to %s", json);
        if (!strncmp(line, "{\"return\"", 9) || !strncmp(line, "{\"error\"", 8))
            return line;
    }
}

static void qmp_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char line[8192];

    strcpy(sa.sun_path, qmp_path);
    qmp_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (qmp_fd < 0 || connect(qmp_fd, (struct sockaddr *)&sa, sizeof(sa)))
        fatal("QMP: cannot connect to %s: %s", qmp_path, strerror(errno));
    if (qmp_line(line, sizeof(line), 20000) || !strstr(line, "\"QMP\""))
        fatal("QMP: no greeting on %s", qmp_path);
    if (strncmp(qmp("{\"execute\": \"qmp_capabilities\"}"), "{\"return\"", 9))
        fatal("QMP: qmp_capabilities refused");
}

/* Does QEMU hold an fd that is the anon inode NAME (e.g. "kvm-vm")? */
static int qemu_has_anon_fd(const char *name)
{
    char dir[64], p[320], target[256], want[128];
    struct dirent *de;
    DIR *d;
    int found = 0;
    ssize_t n;

    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)qemu_pid);
    snprintf(want, sizeof(want), "anon_inode:%s", name);
    if (!(d = opendir(dir)))
        fatal("cannot read %s: %s", dir, strerror(errno));
    while (!found && (de = readdir(d))) {
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        n = readlink(p, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = 0;
            found = !strcmp(target, want);
        }
    }
    closedir(d);
    return found;
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
    int port = -1, want_kvm = 0, want_kvm_vfio = 0;
    int iommufd = -1, devfd = -1, opt, i, qa;
    char **qargv;
    uint32_t id, bar, size;
    uint8_t src[XFER], dst[XFER];

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt(argc, argv, "s:id:r:e:kvu:a:")) != -1) {
        switch (opt) {
        case 's': slot = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'i': iommufd = open_inherit("/dev/iommu"); break;
        case 'd': devfd = open_inherit(optarg); break;
        case 'r': port = (int)strtoul(optarg, NULL, 0); break;
        case 'e': logpath = optarg; break;
        case 'k': want_kvm = 1; break;
        case 'v': want_kvm_vfio = 1; break;
        case 'u': unplug_id = optarg; break;
        case 'a': {
            char *end;

            ram_src = (uint32_t)strtoul(optarg, &end, 0);
            if (*end != ',')
                fatal("-a wants SRC,DST");
            ram_dst = (uint32_t)strtoul(end + 1, NULL, 0);
            break;
        }
        default:
            fprintf(stderr, "usage: %s [-s SLOT] [-r PORT] [-i] [-d CDEV] "
                    "[-e LOG] [-k] [-v] [-u ID] [-a SRC,DST] -- QEMU ARGS...\n", argv[0]);
            return 2;
        }
    }
    if (port >= 0) {
        edu_bus = 1;
        slot = 0;
    }
    l2_open_log();
    if (want_kvm || unplug_id)
        snprintf(qmp_path, sizeof(qmp_path), "/tmp/qdrv-%d.qmp", (int)getpid());
    if (optind >= argc) {
        fprintf(stderr, "%s: no QEMU command given\n", argv[0]);
        return 2;
    }

    l2_sock_path = qmp_path;
    l2_release = qmp_close;
    qargv = calloc(argc - optind + 2 + L2_QTEST_ARGC + 1, sizeof(char *));
    for (i = optind, qa = 0; i < argc; i++, qa++)
        qargv[qa] = subst(subst(argv[i], "@IOMMUFD@", iommufd), "@DEVFD@", devfd);
    if (qmp_path[0]) {
        unlink(qmp_path);
        qargv[qa++] = "-qmp";
        if (asprintf(&qargv[qa++], "unix:%s,server=on,wait=off", qmp_path) < 0)
            return 2;
    }
    l2_start(qargv, qa, QDRV_TIMEOUT);
    if (iommufd >= 0)
        close(iommufd);
    if (devfd >= 0)
        close(devfd);
    if (logpath)
        printf("ok: QEMU's stderr goes to %s\n", logpath);

    if (port >= 0) {
        /* the root port: bus 1 behind it; I/O and prefetchable windows
         * closed (base > limit); memory window opened after BAR sizing */
        id = pci_read32(0, port, 0);
        if ((pci_read32(0, port, 0x0c) >> 16 & 0x7f) != 1)
            fatal("00:%02x.0 (id 0x%08x) is not a PCI bridge", port, id);
        pci_write32(0, port, 0x18, 0x00010100);
        pci_write32(0, port, 0x1c, 0x000000f0);
        pci_write32(0, port, 0x24, 0x0000fff0);
        ok("root port 00:%02x.0 (id 0x%08x): secondary bus 1", port, id);
    }
    mark("QEMU up, qtest answering");
    if (qmp_path[0])
        qmp_connect();

    if (want_kvm) {
        const char *r = qmp("{\"execute\": \"query-kvm\"}");

        if (!strstr(r, "\"enabled\": true") || !strstr(r, "\"present\": true"))
            fatal("QEMU is not running under KVM: query-kvm -> %s", r);
        if (!qemu_has_anon_fd("kvm-vm"))
            fatal("QEMU (pid %d) holds no KVM VM fd (anon_inode:kvm-vm)",
                  (int)qemu_pid);
        ok("QEMU runs under KVM: query-kvm -> %s; it holds a KVM VM fd "
           "(anon_inode:kvm-vm)", r);
    }
    if (want_kvm_vfio) {
        if (qemu_has_anon_fd("kvm-vfio"))
            ok("QEMU holds a KVM VFIO device fd (anon_inode:kvm-vfio): KVM "
               "was told about the VFIO device");
        else
            bad("QEMU holds no KVM VFIO device fd (anon_inode:kvm-vfio): KVM "
                "was not told about the VFIO device");
    }

    /* PCI: find the assigned edu at 00:SLOT.0 (or 01:00.0) */
    id = cfg_read32(slot, 0);
    if (id != 0x11e81234)
        fatal("%02x:%02x.0 has id 0x%08x, expected edu 1234:11e8", edu_bus,
              slot, id);
    ok("%02x:%02x.0 is the assigned edu (1234:11e8)", edu_bus, slot);

    cfg_write32(slot, 0x10, 0xffffffff);
    bar = cfg_read32(slot, 0x10);
    size = ~(bar & ~0xfu) + 1;
    if ((bar & 1) || size < 0x1000)
        fatal("BAR0 sizing read 0x%08x", bar);
    cfg_write32(slot, 0x10, BAR0_ADDR);
    if (port >= 0) {
        /* memory window [BAR0_ADDR, BAR0_ADDR + size) in 1 MiB units */
        uint32_t lim = BAR0_ADDR + (size < 0x100000 ? 0x100000 : size) - 1;

        pci_write32(0, port, 0x20, (lim >> 16 & 0xfff0) << 16 |
                                   (BAR0_ADDR >> 16 & 0xfff0));
        pci_enable_mem_master(0, port);
        ok("root port: memory window 0x%x-0x%x, memory + bus master enabled",
           BAR0_ADDR, lim);
    }
    pci_enable_mem_master(edu_bus, slot);
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
    ram_write(ram_src, src, XFER);
    ram_write(ram_dst, dst, XFER);
    ok("wrote a %d-byte pattern at guest-physical 0x%x", XFER, ram_src);

    if (edu_dma(ram_src, EDU_BUF, XFER, 0))
        fatal("DMA guest RAM -> device did not complete");
    if (edu_dma(EDU_BUF, ram_dst, XFER, 1))
        fatal("DMA device -> guest RAM did not complete");
    ok("DMA RAM 0x%x -> edu -> RAM 0x%x completed", ram_src, ram_dst);

    ram_read(ram_dst, dst, XFER);
    if (memcmp(src, dst, XFER)) {
        for (i = 0; src[i] == dst[i]; i++)
            ;
        bad("byte %d at 0x%x is 0x%02x, expected 0x%02x", i, ram_dst + i,
            dst[i], src[i]);
    } else {
        ok("%d bytes moved by DMA through the assigned device, all verified",
           XFER);
        mark("DMA round trip verified");
    }

    if (unplug_id) {
        char json[256];
        const char *r;
        unsigned exp;
        uint32_t sltctl;

        snprintf(json, sizeof(json), "{\"execute\": \"device_del\", "
                 "\"arguments\": {\"id\": \"%s\"}}", unplug_id);
        mark("device_del %s", unplug_id);
        r = qmp(json);
        if (strncmp(r, "{\"return\"", 9))
            fatal("device_del %s refused: %s", unplug_id, r);
        ok("QMP device_del %s accepted", unplug_id);
        if (port >= 0 && !unplug_seen) {
            /*
             * Native PCIe hot-plug: QEMU pressed the attention button;
             * answer as a guest does, power indicator off + power off.
             */
            exp = pci_find_cap(0, port, 0x10);
            if (!exp)
                fatal("root port 00:%02x.0 has no PCI Express capability", port);
            sltctl = pci_read32(0, port, exp + 0x18) & 0xffff;
            pci_write16(0, port, exp + 0x18,
                        (uint16_t)((sltctl & ~0x0300u) | 0x0300 | 0x0400));
            ok("root port slot powered off (Slot Control 0x%04x -> 0x%04x)",
               sltctl, (sltctl & ~0x0300u) | 0x0700);
        }
        {
            struct timespec t0, t;
            char line[8192];

            clock_gettime(CLOCK_MONOTONIC, &t0);
            while (!unplug_seen) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                if (t.tv_sec - t0.tv_sec > 20)
                    fatal("hot-unplug of %s: no DEVICE_DELETED within 20 s",
                          unplug_id);
                if (qmp_line(line, sizeof(line), 1000) == -2)
                    fatal("hot-unplug of %s: QEMU closed QMP before "
                          "DEVICE_DELETED", unplug_id);
            }
        }
        mark("%s unplugged (DEVICE_DELETED)", unplug_id);
        ok("%s hot-unplugged: DEVICE_DELETED received", unplug_id);
        if (port >= 0 && cfg_read32(slot, 0) != 0xffffffffu)
            bad("%02x:%02x.0 still answers config reads after the unplug",
                edu_bus, slot);
    }
    finish(failures ? 1 : 0);
    return 0;
}
