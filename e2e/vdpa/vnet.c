/*
 * vnet: a minimal virtio-net driver that runs a QEMU with a vhost-vdpa
 * backed virtio-net-pci device under the qtest protocol and checks the
 * data path and the control virtqueue end to end.
 *
 *   vnet [-s SLOT] [-m MAC] [-n VDPADEV] [-e LOG] [-x] [-f FRAMES] -- QEMU ARGS...
 *
 * As qdrv does, vnet starts QEMU itself with "-qtest stdio -qtest-log
 * none" appended and plays the guest: memory and I/O through qtest
 * commands, no CPU ever runs.  The device must be a modern-only
 * virtio-net-pci at 00:SLOT.0 (default 4: "disable-legacy=on,addr=04.0")
 * whose netdev is a vhost-vdpa device that loops TX back to RX, as the
 * kernel's vdpa_sim_net does (it only passes frames addressed to its own
 * MAC, or to a broadcast/multicast one).
 *
 *   -m MAC      the device MAC at DRIVER_OK must be MAC (aa:bb:cc:dd:ee:ff)
 *   -n VDPADEV  at DRIVER_OK and after each MAC change, "vdpa dev config show VDPADEV" must
 *               report the MAC the device config space reports
 *   -e LOG      QEMU's stderr (and its trace lines) goes to LOG, with
 *               "vnet: ..." marks at the steps
 *   -x          QEMU shadows the CVQ (x-svq=on): the oversize CVQ element
 *               must be refused by QEMU (VIRTIO_NET_ERR) without reaching
 *               the device; without -x the device's answer is only noted
 *   -f FRAMES   frames per traffic round (default 20)
 *
 * Steps, one "ok: ..." / "not ok: ..." line each (e2e/lib/report.h):
 * find the device with config cycles through 0xcf8/0xcfc; size and place
 * its BARs; walk the virtio vendor capabilities (common, notify, ISR,
 * device config); reset, ACKNOWLEDGE + DRIVER, negotiate VERSION_1, MAC,
 * CTRL_VQ and CTRL_MAC_ADDR, FEATURES_OK; split virtqueues rx (0), tx (1)
 * and ctrl (2) in guest RAM; DRIVER_OK.  Then:
 *   1. traffic: FRAMES frames (virtio_net_hdr_v1 + Ethernet frame to the
 *      device MAC, different lengths and payloads) sent on tx, each must
 *      come back on rx byte for byte (used rings polled, no interrupts);
 *   2. CVQ VIRTIO_NET_CTRL_MAC_ADDR_SET to a new MAC: ack VIRTIO_NET_OK,
 *      the device config (and vdpa dev config show) has the new MAC, a
 *      frame to the old MAC is dropped by the device and the traffic
 *      round passes again to the new one;
 *   3. an oversize CVQ element: MAC_ADDR_SET (a third MAC) whose out part
 *      is 256 KiB, with a 1-byte in part; with -x the ack must be
 *      VIRTIO_NET_ERR and the device MAC unchanged; without -x whatever
 *      the device answers is reported;
 *   4. traffic again, to whatever MAC the device has now; QEMU alive.
 * Exit status 0 only if every check passed.
 *
 * Written from the virtio 1.x specification and the uAPI headers
 * (linux/virtio_pci.h, virtio_net.h, virtio_ring.h, virtio_config.h).
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#define _GNU_SOURCE
#define VIRTIO_PCI_NO_LEGACY
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
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "../lib/report.h"
#define L2QEMU_TAG "vnet"
#include "../lib/l2qemu.h"

#define BAR_BASE    0xe0000000u     /* where the BARs go */
#define RING_BASE   0x100000u       /* queue q: RING_BASE + q * RING_STRIDE */
#define RING_STRIDE 0x10000u
#define RX_BUF      0x400000u       /* rx buffer i at RX_BUF + i * BUF_STRIDE */
#define TX_BUF      0x800000u
#define BUF_STRIDE  0x1000u
#define RX_LEN      2048u
#define CVQ_BUF     0xc00000u       /* header + MAC */
#define CVQ_ACK     0xc01000u       /* 1-byte ack */
#define BIG_BUF     0x1000000u      /* the oversize out part */
#define BIG_LEN     (256u * 1024)
#define QMAX        64u             /* ring size we ask for */
#define NRX         16u             /* rx buffers kept posted */
#define POLL_MS     10000           /* per completion */
#define HDR_LEN     ((unsigned)sizeof(struct virtio_net_hdr_v1))

#ifndef VNET_TIMEOUT
#define VNET_TIMEOUT 240
#endif

static const char *vdpadev, *initmac;

/* --- PCI configuration space (bus 0) --- */

static unsigned slot = 4;

static uint32_t cfg_read32(unsigned reg)
{
    return pci_read32(0, slot, reg);
}

static void cfg_write32(unsigned reg, uint32_t v)
{
    pci_write32(0, slot, reg, v);
}

static uint8_t cfg_read8(unsigned reg)
{
    return pci_read8(0, slot, reg);
}

/* --- guest memory and MMIO --- */

static void ram_write16(uint64_t a, uint16_t v)
{
    uint8_t b[2] = { v & 0xff, v >> 8 };

    ram_write(a, b, 2);
}

static uint16_t ram_read16(uint64_t a)
{
    uint8_t b[2];

    ram_read(a, b, 2);
    return b[0] | b[1] << 8;
}

/* --- the virtio-pci transport --- */

static uint64_t bar_addr[6];
static uint64_t common, notify_base, isr, devcfg;
static uint32_t notify_mult;

static uint8_t status_get(void)
{
    return (uint8_t)mmio_read(1, common + VIRTIO_PCI_COMMON_STATUS);
}

static void status_set(uint8_t s)
{
    mmio_write(1, common + VIRTIO_PCI_COMMON_STATUS, s);
}

static void place_bars(void)
{
    uint64_t next = BAR_BASE;

    for (unsigned b = 0; b < 6; b++) {
        unsigned reg = 0x10 + 4 * b;
        uint32_t orig = cfg_read32(reg), v;
        uint64_t size;
        int is64;

        if (orig & 1)
            continue;               /* an I/O BAR: none on a modern device */
        cfg_write32(reg, 0xffffffff);
        v = cfg_read32(reg) & ~0xfu;
        is64 = (orig & 6) == 4;
        if (!v) {
            if (is64)
                b++;
            continue;
        }
        size = (uint64_t)(~v) + 1;
        size &= 0xffffffffu;
        if (!size)
            size = 1ull << 32;
        next = (next + size - 1) & ~(size - 1);
        cfg_write32(reg, (uint32_t)next);
        if (is64)
            cfg_write32(reg + 4, 0);
        bar_addr[b] = next;
        ok("BAR%u: %s memory, 0x%" PRIx64 " bytes, placed at 0x%" PRIx64, b,
           is64 ? "64-bit" : "32-bit", size, next);
        next += size;
        if (is64)
            b++;
    }
    pci_enable_mem_master(0, slot);
}

static void find_caps(void)
{
    unsigned pos, guard = 0, found = 0;

    if (!(cfg_read32(0x04) >> 16 & 0x10))
        fatal("no PCI capability list");
    pos = cfg_read8(0x34) & 0xfc;
    while (pos && guard++ < 48) {
        uint8_t id = cfg_read8(pos + VIRTIO_PCI_CAP_VNDR);
        uint8_t next = cfg_read8(pos + VIRTIO_PCI_CAP_NEXT);

        if (id == 0x09) {           /* vendor specific: a virtio structure */
            uint8_t type = cfg_read8(pos + VIRTIO_PCI_CAP_CFG_TYPE);
            uint8_t bar = cfg_read8(pos + VIRTIO_PCI_CAP_BAR);
            uint32_t off = cfg_read32(pos + VIRTIO_PCI_CAP_OFFSET);
            uint32_t len = cfg_read32(pos + VIRTIO_PCI_CAP_LENGTH);
            uint64_t a = bar < 6 ? bar_addr[bar] + off : 0;

            if (bar < 6 && !bar_addr[bar] && type != VIRTIO_PCI_CAP_PCI_CFG)
                fatal("virtio capability type %u at 0x%x in unplaced BAR%u",
                      type, pos, bar);
            switch (type) {
            case VIRTIO_PCI_CAP_COMMON_CFG:
                if (!common) common = a;
                found |= 1;
                break;
            case VIRTIO_PCI_CAP_NOTIFY_CFG:
                if (!notify_base) {
                    notify_base = a;
                    notify_mult = cfg_read32(pos + 16);
                }
                found |= 2;
                break;
            case VIRTIO_PCI_CAP_ISR_CFG:
                if (!isr) isr = a;
                found |= 4;
                break;
            case VIRTIO_PCI_CAP_DEVICE_CFG:
                if (!devcfg) devcfg = a;
                found |= 8;
                break;
            }
            printf("cap 0x%02x: virtio type %u, BAR%u + 0x%x, 0x%x bytes\n",
                   pos, type, bar, off, len);
        }
        pos = next & 0xfc;
    }
    if ((found & 0xb) != 0xb)
        fatal("virtio capabilities missing (common %s, notify %s, device %s)",
              found & 1 ? "yes" : "no", found & 2 ? "yes" : "no",
              found & 8 ? "yes" : "no");
    ok("virtio capabilities: common cfg 0x%" PRIx64 ", notify 0x%" PRIx64
       " (multiplier %u), ISR 0x%" PRIx64 ", device cfg 0x%" PRIx64, common,
       notify_base, notify_mult, isr, devcfg);
}

/* --- split virtqueues --- */

struct vq {
    unsigned idx, num;
    uint64_t desc, avail, used, notify;
    uint16_t avail_idx, used_seen;
    uint16_t next_desc;             /* simple round robin allocation */
};

static struct vq vqs[3];

static void vq_setup(unsigned q)
{
    struct vq *v = &vqs[q];
    uint16_t max, noff;
    uint64_t base = RING_BASE + q * RING_STRIDE;

    mmio_write(2, common + VIRTIO_PCI_COMMON_Q_SELECT, q);
    max = (uint16_t)mmio_read(2, common + VIRTIO_PCI_COMMON_Q_SIZE);
    if (!max)
        fatal("queue %u does not exist (size 0)", q);
    v->idx = q;
    v->num = max < QMAX ? max : QMAX;
    v->desc = base;
    v->avail = base + 0x1000;
    v->used = base + 0x2000;
    cmd("memset 0x%" PRIx64 " 0x3000 0", base);
    mmio_write(2, common + VIRTIO_PCI_COMMON_Q_SIZE, v->num);
    mmio_write(2, common + VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
    mmio_write(4, common + VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)v->desc);
    mmio_write(4, common + VIRTIO_PCI_COMMON_Q_DESCHI, 0);
    mmio_write(4, common + VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)v->avail);
    mmio_write(4, common + VIRTIO_PCI_COMMON_Q_AVAILHI, 0);
    mmio_write(4, common + VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)v->used);
    mmio_write(4, common + VIRTIO_PCI_COMMON_Q_USEDHI, 0);
    noff = (uint16_t)mmio_read(2, common + VIRTIO_PCI_COMMON_Q_NOFF);
    v->notify = notify_base + (uint64_t)noff * notify_mult;
    mmio_write(2, common + VIRTIO_PCI_COMMON_Q_ENABLE, 1);
    if (mmio_read(2, common + VIRTIO_PCI_COMMON_Q_SIZE) != v->num ||
        mmio_read(2, common + VIRTIO_PCI_COMMON_Q_ENABLE) != 1)
        fatal("queue %u: size/enable did not stick", q);
    printf("queue %u: %u entries (device max %u), desc 0x%" PRIx64
           " avail 0x%" PRIx64 " used 0x%" PRIx64 ", notify at 0x%" PRIx64 "\n",
           q, v->num, max, v->desc, v->avail, v->used, v->notify);
}

struct seg {
    uint64_t addr;
    uint32_t len;
    int device_writes;
};

/* Put a chain on the avail ring (no kick); return its head. */
static uint16_t vq_add(struct vq *v, const struct seg *s, unsigned n)
{
    uint16_t head = v->next_desc, d = head;

    for (unsigned i = 0; i < n; i++) {
        uint8_t e[16];
        uint16_t next = (d + 1) % v->num;
        uint16_t flags = (s[i].device_writes ? VRING_DESC_F_WRITE : 0) |
                         (i + 1 < n ? VRING_DESC_F_NEXT : 0);

        for (int k = 0; k < 8; k++)
            e[k] = (uint8_t)(s[i].addr >> (8 * k));
        for (int k = 0; k < 4; k++)
            e[8 + k] = (uint8_t)(s[i].len >> (8 * k));
        e[12] = flags & 0xff; e[13] = flags >> 8;
        e[14] = next & 0xff; e[15] = next >> 8;
        ram_write(v->desc + 16ull * d, e, 16);
        d = next;
    }
    v->next_desc = d;
    ram_write16(v->avail + 4 + 2ull * (v->avail_idx % v->num), head);
    v->avail_idx++;
    ram_write16(v->avail + 2, v->avail_idx);
    return head;
}

static void vq_kick(struct vq *v)
{
    mmio_write(2, v->notify, v->idx);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Wait for the next used element: 0 and its id/len, or -1 on timeout. */
static int vq_used(struct vq *v, int timeout_ms, uint32_t *id, uint32_t *len)
{
    struct timespec t0;
    uint8_t e[8];

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ram_read16(v->used + 2) == v->used_seen) {
        if (ms_since(&t0) > timeout_ms)
            return -1;
        usleep(1000);
    }
    ram_read(v->used + 4 + 8ull * (v->used_seen % v->num), e, 8);
    v->used_seen++;
    *id = e[0] | e[1] << 8 | e[2] << 16 | (uint32_t)e[3] << 24;
    *len = e[4] | e[5] << 8 | e[6] << 16 | (uint32_t)e[7] << 24;
    return 0;
}

/* --- virtio-net --- */

static const char *feature_name(unsigned bit)
{
    switch (bit) {
    case VIRTIO_NET_F_CSUM: return "CSUM";
    case VIRTIO_NET_F_GUEST_CSUM: return "GUEST_CSUM";
    case VIRTIO_NET_F_MTU: return "MTU";
    case VIRTIO_NET_F_MAC: return "MAC";
    case VIRTIO_NET_F_GUEST_TSO4: return "GUEST_TSO4";
    case VIRTIO_NET_F_GUEST_TSO6: return "GUEST_TSO6";
    case VIRTIO_NET_F_GUEST_ECN: return "GUEST_ECN";
    case VIRTIO_NET_F_GUEST_UFO: return "GUEST_UFO";
    case VIRTIO_NET_F_HOST_TSO4: return "HOST_TSO4";
    case VIRTIO_NET_F_HOST_TSO6: return "HOST_TSO6";
    case VIRTIO_NET_F_HOST_ECN: return "HOST_ECN";
    case VIRTIO_NET_F_HOST_UFO: return "HOST_UFO";
    case VIRTIO_NET_F_MRG_RXBUF: return "MRG_RXBUF";
    case VIRTIO_NET_F_STATUS: return "STATUS";
    case VIRTIO_NET_F_CTRL_VQ: return "CTRL_VQ";
    case VIRTIO_NET_F_CTRL_RX: return "CTRL_RX";
    case VIRTIO_NET_F_CTRL_VLAN: return "CTRL_VLAN";
    case VIRTIO_NET_F_GUEST_ANNOUNCE: return "GUEST_ANNOUNCE";
    case VIRTIO_NET_F_MQ: return "MQ";
    case VIRTIO_NET_F_CTRL_MAC_ADDR: return "CTRL_MAC_ADDR";
    case VIRTIO_F_NOTIFY_ON_EMPTY: return "NOTIFY_ON_EMPTY";
    case VIRTIO_F_ANY_LAYOUT: return "ANY_LAYOUT";
    case VIRTIO_RING_F_INDIRECT_DESC: return "INDIRECT_DESC";
    case VIRTIO_RING_F_EVENT_IDX: return "EVENT_IDX";
    case VIRTIO_F_VERSION_1: return "VERSION_1";
    case VIRTIO_F_ACCESS_PLATFORM: return "ACCESS_PLATFORM";
    case VIRTIO_F_RING_PACKED: return "RING_PACKED";
    case VIRTIO_F_IN_ORDER: return "IN_ORDER";
    case VIRTIO_F_ORDER_PLATFORM: return "ORDER_PLATFORM";
    case VIRTIO_F_SR_IOV: return "SR_IOV";
    case VIRTIO_F_NOTIFICATION_DATA: return "NOTIFICATION_DATA";
    case VIRTIO_NET_F_RSC_EXT: return "RSC_EXT";
    case VIRTIO_NET_F_STANDBY: return "STANDBY";
    case VIRTIO_NET_F_SPEED_DUPLEX: return "SPEED_DUPLEX";
    }
    return NULL;
}

static void print_features(const char *what, uint64_t f)
{
    printf("%s 0x%016" PRIx64 ":", what, f);
    for (unsigned b = 0; b < 64; b++) {
        if (f >> b & 1) {
            const char *n = feature_name(b);

            if (n)
                printf(" %s", n);
            else
                printf(" bit%u", b);
        }
    }
    printf("\n");
}

static void mac_str(const uint8_t *m, char *s)
{
    sprintf(s, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void dev_mac(uint8_t *m)
{
    uint8_t gen;

    do {
        gen = (uint8_t)mmio_read(1, common + VIRTIO_PCI_COMMON_CFGGENERATION);
        for (int i = 0; i < 6; i++)
            m[i] = (uint8_t)mmio_read(1, devcfg + i);
    } while (gen != (uint8_t)mmio_read(1, common + VIRTIO_PCI_COMMON_CFGGENERATION));
}

/* The MAC "vdpa dev config show VDPADEV" reports, in s ("" if none). */
static void tool_mac(char *s)
{
    char c[128], line[512], *p;
    FILE *f;

    s[0] = 0;
    snprintf(c, sizeof(c), "vdpa dev config show %s 2>&1", vdpadev);
    if (!(f = popen(c, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        printf("$ vdpa dev config show %s: %s", vdpadev, line);
        if (!s[0] && (p = strstr(line, "mac ")))
            sscanf(p + 4, "%17s", s);
    }
    pclose(f);
}

/* The device config MAC (and, with -n, the vdpa tool's) must be want. */
static int check_mac(const char *when, const uint8_t *want)
{
    uint8_t m[6];
    char ws[18], ms[18], ts[32];

    dev_mac(m);
    mac_str(want, ws);
    mac_str(m, ms);
    if (memcmp(m, want, 6)) {
        bad("%s: device config MAC is %s, expected %s", when, ms, ws);
        return -1;
    }
    if (vdpadev) {
        tool_mac(ts);
        if (strcasecmp(ts, ws)) {
            bad("%s: vdpa dev config show %s reports MAC '%s', expected %s",
                when, vdpadev, ts, ws);
            return -1;
        }
        ok("%s: device config MAC %s, and vdpa dev config show %s agrees",
           when, ms, vdpadev);
    } else {
        ok("%s: device config MAC %s", when, ms);
    }
    return 0;
}

static void rx_post(unsigned i)
{
    struct seg s = { RX_BUF + i * BUF_STRIDE, RX_LEN, 1 };
    struct vq *v = &vqs[0];

    /* rx buffer i always uses descriptor i: single-descriptor chains */
    v->next_desc = (uint16_t)i;
    vq_add(v, &s, 1);
}

static unsigned frame_seq;

static size_t make_frame(uint8_t *f, const uint8_t *dst, unsigned n)
{
    size_t len = 60 + (n * 379u) % 1455;    /* 60..1514 */
    uint32_t x = 0x9e3779b9u * (n + 1);

    memcpy(f, dst, 6);
    memcpy(f + 6, "\x02\x00\x5e\x10\x00", 5);
    f[11] = (uint8_t)n;
    f[12] = 0x88; f[13] = 0xb5;             /* local experimental ethertype */
    for (size_t i = 14; i < len; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        f[i] = (uint8_t)x;
    }
    return len;
}

/*
 * Send one frame to dst (header and frame in two descriptors); with
 * expect_rx, the next rx completion must be that frame, byte for byte.
 * Returns 0 on success, or -1 with *why set.
 */
static int send_frame(const uint8_t *dst, int expect_rx, char *why, size_t wl)
{
    static uint8_t f[1600], r[RX_LEN];
    struct vq *tx = &vqs[1], *rx = &vqs[0];
    uint8_t hdr[sizeof(struct virtio_net_hdr_v1)] = { 0 };
    unsigned n = frame_seq++;
    size_t len = make_frame(f, dst, n);
    uint64_t buf = TX_BUF + (n % 32) * BUF_STRIDE;
    struct seg s[2] = { { buf, HDR_LEN, 0 }, { buf + 64, (uint32_t)len, 0 } };
    uint32_t id, ulen;
    uint16_t head;

    ram_write(buf, hdr, HDR_LEN);
    ram_write(buf + 64, f, len);
    head = vq_add(tx, s, 2);
    vq_kick(tx);
    if (vq_used(tx, POLL_MS, &id, &ulen)) {
        snprintf(why, wl, "frame %u (%zu bytes): tx not used within %d ms",
                 n, len, POLL_MS);
        return -1;
    }
    if (id != head) {
        snprintf(why, wl, "frame %u: tx used id %u, expected %u", n, id, head);
        return -1;
    }
    if (!expect_rx)
        return 0;
    if (vq_used(rx, POLL_MS, &id, &ulen)) {
        snprintf(why, wl, "frame %u (%zu bytes): nothing received within %d ms",
                 n, len, POLL_MS);
        return -1;
    }
    if (id >= NRX) {
        snprintf(why, wl, "frame %u: rx used id %u is not an rx buffer", n, id);
        return -1;
    }
    if (ulen != HDR_LEN + len) {
        snprintf(why, wl, "frame %u: received %u bytes, expected %u + %zu", n,
                 ulen, HDR_LEN, len);
        rx_post(id);
        return -1;
    }
    ram_read(RX_BUF + id * BUF_STRIDE, r, ulen);
    rx_post(id);
    vq_kick(rx);
    if (memcmp(r + HDR_LEN, f, len)) {
        size_t i = 0;

        while (r[HDR_LEN + i] == f[i])
            i++;
        snprintf(why, wl, "frame %u: byte %zu received 0x%02x, sent 0x%02x",
                 n, i, r[HDR_LEN + i], f[i]);
        return -1;
    }
    return 0;
}

static int traffic(const char *what, int frames)
{
    uint8_t m[6];
    char ms[18], why[256];
    struct timespec t0;
    size_t bytes = 0;

    dev_mac(m);
    mac_str(m, ms);
    mark("traffic %s: %d frames to %s", what, frames, ms);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < frames; i++) {
        unsigned n = frame_seq;

        if (send_frame(m, 1, why, sizeof(why))) {
            bad("traffic %s: %s", what, why);
            return -1;
        }
        bytes += 60 + (n * 379u) % 1455;
    }
    ok("traffic %s: %d frames (%zu bytes) to %s looped back tx -> rx, "
       "all bytes equal (%ld ms)", what, frames, bytes, ms, ms_since(&t0));
    return 0;
}

/*
 * One CVQ command: class/cmd header and MAC (8 bytes), then, if pad,
 * a second out descriptor of pad bytes, then the 1-byte ack.  Returns
 * the ack (0xff untouched), or -1 if nothing came back.
 */
static int cvq_mac_set(const uint8_t *mac, uint32_t pad, uint32_t *used_len)
{
    struct vq *c = &vqs[2];
    uint8_t cmdb[8] = { VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET };
    uint8_t ack = 0xff;
    struct seg s[3];
    unsigned n = 0;
    uint32_t id;
    uint16_t head;

    memcpy(cmdb + 2, mac, 6);
    ram_write(CVQ_BUF, cmdb, sizeof(cmdb));
    ram_write(CVQ_ACK, &ack, 1);
    s[n++] = (struct seg){ CVQ_BUF, sizeof(cmdb), 0 };
    if (pad) {
        cmd("memset 0x%x 0x%x 0x5a", BIG_BUF, pad);
        s[n++] = (struct seg){ BIG_BUF, pad, 0 };
    }
    s[n++] = (struct seg){ CVQ_ACK, 1, 1 };
    head = vq_add(c, s, n);
    vq_kick(c);
    if (vq_used(c, POLL_MS, &id, used_len))
        return -1;
    if (id != head)
        bad("cvq: used id %u, expected %u", id, head);
    ram_read(CVQ_ACK, &ack, 1);
    return ack;
}

/* Is QEMU still running and answering? */
static int qemu_alive(void)
{
    int st;

    if (waitpid(qemu_pid, &st, WNOHANG) == qemu_pid) {
        qemu_pid = 0;
        return 0;
    }
    cmd("readl 0x%" PRIx64, common + VIRTIO_PCI_COMMON_DF);
    return 1;
}

int main(int argc, char **argv)
{
    int opt, i, qa, frames = 20, svq = 0, ack;
    char **qargv;
    uint32_t id, ulen, f_lo, f_hi;
    uint64_t offered, want, got;
    uint8_t st, mac0[6], mac1[6], mac2[6], m[6];
    char s0[18], s1[18], s2[18], why[256];
    struct timespec t0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt(argc, argv, "s:m:n:e:xf:")) != -1) {
        switch (opt) {
        case 's': slot = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'm': initmac = optarg; break;
        case 'n': vdpadev = optarg; break;
        case 'e': logpath = optarg; break;
        case 'x': svq = 1; break;
        case 'f': frames = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-s SLOT] [-m MAC] [-n VDPADEV] [-e LOG] [-x] "
                    "[-f FRAMES] -- QEMU ARGS...\n", argv[0]);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: no QEMU command given\n", argv[0]);
        return 2;
    }
    l2_open_log();
    l2_tail_skip = "vhost_";        /* trace lines */
    qargv = calloc(argc - optind + L2_QTEST_ARGC + 1, sizeof(char *));
    for (i = optind, qa = 0; i < argc; i++, qa++)
        qargv[qa] = argv[i];

    clock_gettime(CLOCK_MONOTONIC, &t0);
    l2_start(qargv, qa, VNET_TIMEOUT);

    /* the device: modern virtio-net is 1af4:1041 */
    id = cfg_read32(0);
    mark("QEMU up, qtest answering");
    if (id != 0x10411af4)
        fatal("00:%02x.0 has id 0x%08x, expected modern virtio-net 1af4:1041",
              slot, id);
    ok("00:%02x.0 is a modern virtio-net (1af4:1041) (QEMU up after %ld ms)",
       slot, ms_since(&t0));
    place_bars();
    find_caps();

    /* initialisation, virtio 1.x section 3.1.1 */
    status_set(0);
    for (i = 0; status_get() && i < 1000; i++)
        usleep(1000);
    if (status_get())
        fatal("device status %#x after reset", status_get());
    status_set(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    status_set(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    mmio_write(4, common + VIRTIO_PCI_COMMON_DFSELECT, 0);
    f_lo = mmio_read(4, common + VIRTIO_PCI_COMMON_DF);
    mmio_write(4, common + VIRTIO_PCI_COMMON_DFSELECT, 1);
    f_hi = mmio_read(4, common + VIRTIO_PCI_COMMON_DF);
    offered = (uint64_t)f_hi << 32 | f_lo;
    print_features("device features", offered);
    want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_MAC |
           1ull << VIRTIO_NET_F_CTRL_VQ | 1ull << VIRTIO_NET_F_CTRL_MAC_ADDR;
    if ((offered & want) != want) {
        print_features("missing", want & ~offered);
        fatal("the device does not offer VERSION_1, MAC, CTRL_VQ and "
              "CTRL_MAC_ADDR (offers 0x%" PRIx64 ")", offered);
    }
    mmio_write(4, common + VIRTIO_PCI_COMMON_GFSELECT, 0);
    mmio_write(4, common + VIRTIO_PCI_COMMON_GF, (uint32_t)want);
    mmio_write(4, common + VIRTIO_PCI_COMMON_GFSELECT, 1);
    mmio_write(4, common + VIRTIO_PCI_COMMON_GF, (uint32_t)(want >> 32));
    status_set(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
               VIRTIO_CONFIG_S_FEATURES_OK);
    st = status_get();
    if (!(st & VIRTIO_CONFIG_S_FEATURES_OK))
        fatal("FEATURES_OK not accepted (status %#x)", st);
    mmio_write(4, common + VIRTIO_PCI_COMMON_GFSELECT, 0);
    got = mmio_read(4, common + VIRTIO_PCI_COMMON_GF);
    mmio_write(4, common + VIRTIO_PCI_COMMON_GFSELECT, 1);
    got |= (uint64_t)mmio_read(4, common + VIRTIO_PCI_COMMON_GF) << 32;
    ok("features negotiated: offered 0x%" PRIx64 ", driver 0x%" PRIx64
       " (VERSION_1 MAC CTRL_VQ CTRL_MAC_ADDR), FEATURES_OK", offered, got);

    i = (int)mmio_read(2, common + VIRTIO_PCI_COMMON_NUMQ);
    if (i < 3)
        fatal("device has %d queues, need rx, tx and ctrl", i);
    mmio_write(2, common + VIRTIO_PCI_COMMON_MSIX, VIRTIO_MSI_NO_VECTOR);
    for (unsigned q = 0; q < 3; q++)
        vq_setup(q);
    for (unsigned b = 0; b < NRX; b++)
        rx_post(b);
    status_set(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
               VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    st = status_get();
    if (!(st & VIRTIO_CONFIG_S_DRIVER_OK) || (st & (VIRTIO_CONFIG_S_FAILED |
                                                    VIRTIO_CONFIG_S_NEEDS_RESET)))
        fatal("device status %#x after DRIVER_OK", st);
    vq_kick(&vqs[0]);
    mark("DRIVER_OK");
    dev_mac(mac0);
    mac_str(mac0, s0);
    ok("DRIVER_OK: %d queues, rx/tx/ctrl set up (%u/%u/%u entries), %u rx "
       "buffers posted, device MAC %s (%ld ms)", i, vqs[0].num, vqs[1].num,
       vqs[2].num, NRX, s0, ms_since(&t0));
    if (initmac) {
        uint8_t w[6];

        if (sscanf(initmac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &w[0], &w[1],
                   &w[2], &w[3], &w[4], &w[5]) != 6)
            fatal("-m %s: not a MAC address", initmac);
        check_mac("at DRIVER_OK", w);
    } else if (vdpadev) {
        check_mac("at DRIVER_OK", mac0);
    }

    /* 1. traffic */
    traffic("1", frames);

    /* 2. CVQ: MAC_ADDR_SET to a new MAC */
    memcpy(mac1, mac0, 6);
    mac1[0] = 0x02;                     /* locally administered */
    mac1[5] ^= 0x5a;
    mac_str(mac1, s1);
    mark("cvq MAC_ADDR_SET %s", s1);
    ack = cvq_mac_set(mac1, 0, &ulen);
    if (ack < 0)
        bad("cvq MAC_ADDR_SET %s: no answer within %d ms", s1, POLL_MS);
    else if (ack != VIRTIO_NET_OK)
        bad("cvq MAC_ADDR_SET %s: ack %d, expected VIRTIO_NET_OK", s1, ack);
    else
        ok("cvq MAC_ADDR_SET %s: ack VIRTIO_NET_OK (used len %u)", s1, ulen);
    if (ack >= 0 && !check_mac("after MAC_ADDR_SET", mac1)) {
        /* the device filters on its MAC: a frame to the old one is dropped,
         * so the next rx completion must be the frame to the new one */
        if (send_frame(mac0, 0, why, sizeof(why)))
            bad("frame to the old MAC %s: %s", s0, why);
        else if (send_frame(mac1, 1, why, sizeof(why)))
            bad("after a frame to the old MAC %s: %s", s0, why);
        else
            ok("a frame to the old MAC %s was dropped, one to %s came back: "
               "the device filters on the new MAC", s0, s1);
    }
    traffic("2 (new MAC)", frames);

    /* 3. the oversize CVQ element */
    memcpy(mac2, mac1, 6);
    mac2[4] ^= 0xa5;
    mac_str(mac2, s2);
    mark("cvq oversize MAC_ADDR_SET %s, out %u bytes", s2, BIG_LEN);
    ack = cvq_mac_set(mac2, BIG_LEN - 8, &ulen);
    dev_mac(m);
    {
        char sm[18];

        mac_str(m, sm);
        printf("oversize CVQ element (MAC_ADDR_SET %s, out %u bytes in 2 "
               "descriptors, in 1 byte): ack %d, used len %u, device MAC now "
               "%s\n", s2, BIG_LEN, ack, ack < 0 ? 0 : ulen, sm);
        if (svq) {
            if (ack == VIRTIO_NET_ERR)
                ok("oversize CVQ element: QEMU answered VIRTIO_NET_ERR");
            else
                bad("oversize CVQ element: ack %d, expected VIRTIO_NET_ERR (1) "
                    "from QEMU's shadow CVQ", ack);
            if (!memcmp(m, mac1, 6))
                ok("oversize CVQ element: not forwarded (device MAC still %s)",
                   s1);
            else
                bad("oversize CVQ element reached the device: its MAC changed "
                    "%s -> %s", s1, sm);
        } else {
            ok("oversize CVQ element, no SVQ: the device answered %d (%s), "
               "device MAC now %s (noted, not judged)", ack,
               ack == VIRTIO_NET_OK ? "VIRTIO_NET_OK" :
               ack == VIRTIO_NET_ERR ? "VIRTIO_NET_ERR" :
               ack < 0 ? "no answer" : "?", sm);
        }
        if (vdpadev) {
            char ts[32];

            tool_mac(ts);
        }
    }

    /* 4. traffic again, to whatever MAC the device has now */
    traffic("3 (after the oversize element)", frames);
    if (qemu_alive())
        ok("QEMU alive after all (pid %d), %ld ms in all", (int)qemu_pid,
           ms_since(&t0));
    else
        bad("QEMU exited during the run");
    finish(failures ? 1 : 0);
    return 0;
}
