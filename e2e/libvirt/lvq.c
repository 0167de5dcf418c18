/*
 * lvq: the qtest side of the libvirt e2e scenario, for a QEMU that libvirt
 * started (so neither qdrv nor this program is its parent).  The domain
 * XML gives that QEMU a qtest server on a unix socket
 * ("-qtest unix:PATH,server=on,wait=off", held paused with -S).
 *
 *   lvq relay SOCKET [IGNORED...]
 *       Connect to the qtest socket and copy stdin to it and its output
 *       to stdout until either side closes.  Used as the "QEMU" command
 *       of e2e/qtest/qdrv ("qdrv -r 3 -- lvq relay SOCKET"): qdrv speaks
 *       the qtest protocol over our stdio exactly as it does with a QEMU
 *       it started; the arguments qdrv appends (-qtest stdio ...) are
 *       ignored.
 *
 *   lvq slot SOCKET PORT off|on [SECONDS]
 *       Play the guest's part of native PCIe hot-plug on the root port at
 *       00:PORT.0 (its secondary bus must be set, e.g. by a qdrv -r run):
 *       off: wait until QEMU presses the attention button (libvirt's
 *            device_del), then switch the power indicator and the slot
 *            power off, which makes QEMU unplug the device; wait until
 *            the slot is empty;
 *       on:  wait until a device is present in the slot (libvirt's
 *            device_add), then power the slot on, power indicator on;
 *            check the edu answers config reads behind the port.
 *       Gives up after SECONDS (default 30).
 *
 *   lvq ctl SOCKET COMMAND
 *       Send one line to the uAPI model's control socket
 *       (VFIO_MODEL_CONTROL) and print the answer (up to "end" for the
 *       multi-line answers "counters" and "objects").
 *
 * One "ok: ..." / "not ok: ..." line per step; exit status 0 only if all
 * passed.  All our own code.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../lib/report.h"
#include "../lib/qtestio.h"

static int sock = -1;
static FILE *qin, *qout;

#define die(...) do { bad(__VA_ARGS__); exit(1); } while (0)

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* connect to the qtest server; QEMU may still be creating the socket */
static void connect_to(const char *path, double limit)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    double t0 = now();

    if (strlen(path) >= sizeof(sa.sun_path))
        die("socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    for (;;) {
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
            die("socket: %s", strerror(errno));
        if (!connect(sock, (struct sockaddr *)&sa, sizeof(sa)))
            return;
        close(sock);
        if (now() - t0 > limit)
            die("cannot connect to the qtest socket %s: %s", path,
                strerror(errno));
        usleep(100000);
    }
}

static int relay(const char *path)
{
    struct pollfd p[2];
    char buf[65536];
    ssize_t n;

    connect_to(path, 10);
    p[0].fd = 0;
    p[0].events = POLLIN;
    p[1].fd = sock;
    p[1].events = POLLIN;
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(p[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                /* qdrv closed our stdin (it is done) or QEMU went away */
                shutdown(sock, SHUT_RDWR);
                return 0;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(i ? 1 : sock, buf + off, n - off);
                if (w < 0) {
                    if (errno == EINTR)
                        continue;
                    return 1;
                }
                off += w;
            }
        }
    }
}

/* --- a minimal qtest client --- */

static void qtest_failed(const char *why, bool answered, const char *fmt,
                         va_list ap)
{
    (void)ap;
    if (answered)
        die("qtest: command \"%s...\" failed: %s", fmt, why);
    die("qtest: %s", why);
}

#define cmd(...) qtest_cmd(qout, qin, false, __VA_ARGS__)

#include "../lib/qtestpci.h"

#define SLTCTL 0x18
#define SLTSTA 0x1a
#define STA_ABP 0x0001
#define STA_PDC 0x0008
#define STA_PDS 0x0040
#define CTL_PIC_MASK 0x0300
#define CTL_PIC_ON 0x0100
#define CTL_PIC_OFF 0x0300
#define CTL_PCC 0x0400

static int slot(const char *path, unsigned port, int on, double limit)
{
    unsigned exp, secbus;
    uint16_t ctl, sta;
    double t0;
    uint32_t id;

    connect_to(path, 10);
    qin = fdopen(sock, "r");
    qout = fdopen(dup(sock), "w");
    if (!qin || !qout)
        die("fdopen: %s", strerror(errno));
    id = pci_read32(0, port, 0);
    exp = pci_find_cap(0, port, 0x10);      /* PCI Express */
    if (!exp)
        die("00:%02x.0 (id 0x%08x) has no PCI Express capability", port, id);
    secbus = pci_read32(0, port, 0x18) >> 8 & 0xff;
    if (!secbus)
        die("root port 00:%02x.0 has no secondary bus number yet", port);
    ctl = pci_read16(0, port, exp + SLTCTL);
    sta = pci_read16(0, port, exp + SLTSTA);
    ok("root port 00:%02x.0 (id 0x%08x), bus %u behind it: Slot Control "
       "0x%04x, Slot Status 0x%04x", port, id, secbus, ctl, sta);

    t0 = now();
    /* wait for QEMU's side: attention button (unplug) / presence (plug) */
    for (;;) {
        sta = pci_read16(0, port, exp + SLTSTA);
        if (!on && (sta & STA_ABP))
            break;
        if (on && (sta & STA_PDS))
            break;
        if (now() - t0 > limit)
            die("%s within %.0f s (Slot Status 0x%04x)", on ?
                "no device appeared in the slot" :
                "QEMU did not press the attention button", limit, sta);
        usleep(50000);
    }
    ok("after %.1f s: Slot Status 0x%04x (%s)", now() - t0, sta,
       on ? "presence detected" : "attention button pressed");

    ctl = pci_read16(0, port, exp + SLTCTL);
    if (on) {
        pci_write16(0, port, exp + SLTCTL,
             (uint16_t)((ctl & ~(CTL_PIC_MASK | CTL_PCC)) | CTL_PIC_ON));
    } else {
        pci_write16(0, port, exp + SLTCTL,
             (uint16_t)((ctl & ~CTL_PIC_MASK) | CTL_PIC_OFF | CTL_PCC));
    }
    /* acknowledge the events that are set (write-1-to-clear) */
    sta = pci_read16(0, port, exp + SLTSTA);
    if (sta & (STA_ABP | STA_PDC))
        pci_write16(0, port, exp + SLTSTA, sta & (STA_ABP | STA_PDC));
    ok("slot power %s: Slot Control 0x%04x -> 0x%04x, Slot Status now 0x%04x",
       on ? "on, power indicator on" : "off, power indicator off", ctl,
       pci_read16(0, port, exp + SLTCTL), pci_read16(0, port, exp + SLTSTA));

    t0 = now();
    for (;;) {
        id = pci_read32(secbus, 0, 0);
        sta = pci_read16(0, port, exp + SLTSTA);
        if (on && id == 0x11e81234)
            break;
        if (!on && id == 0xffffffffu && !(sta & STA_PDS))
            break;
        if (now() - t0 > limit)
            die("%02x:00.0 reads id 0x%08x, Slot Status 0x%04x: the device "
                "is %s", secbus, id, sta, on ? "not reachable" : "still there");
        usleep(50000);
    }
    if (on)
        ok("%02x:00.0 answers: edu 1234:11e8 behind the powered slot", secbus);
    else
        ok("slot empty: %02x:00.0 reads 0x%08x, Slot Status 0x%04x", secbus,
           id, sta);
    return 0;
}

static int ctl(const char *path, const char *line)
{
    char *l = NULL;
    size_t cap = 0;
    ssize_t n;
    int multi = !strcmp(line, "counters") || !strcmp(line, "objects");

    connect_to(path, 5);
    qin = fdopen(sock, "r");
    if (!qin || dprintf(sock, "%s\n", line) < 0)
        die("control socket %s: %s", path, strerror(errno));
    while ((n = getline(&l, &cap, qin)) > 0) {
        fputs(l, stdout);
        if (!multi || !strcmp(l, "end\n"))
            return 0;
    }
    die("control socket %s closed early", path);
    return 1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 3 && !strcmp(argv[1], "relay"))
        return relay(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "slot") &&
        (!strcmp(argv[4], "on") || !strcmp(argv[4], "off")))
        return slot(argv[2], (unsigned)strtoul(argv[3], NULL, 0),
                    !strcmp(argv[4], "on"), argc > 5 ? atof(argv[5]) : 30);
    if (argc == 4 && !strcmp(argv[1], "ctl"))
        return ctl(argv[2], argv[3]);
    fprintf(stderr, "usage: %s relay SOCKET [IGNORED...]\n"
            "       %s slot SOCKET PORT off|on [SECONDS]\n"
            "       %s ctl SOCKET COMMAND\n", argv[0], argv[0], argv[0]);
    return 2;
}
