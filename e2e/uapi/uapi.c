/*
 * uapi: drive two QEMU "edu" PCI devices through iommufd and the VFIO
 * device cdev by hand, with DMA checked byte for byte.
 *
 *   uapi /dev/vfio/devices/vfioA /dev/vfio/devices/vfioB
 *
 * It opens /dev/iommu itself, touches the devices only with ioctl and
 * pread/pwrite on the device fd (BAR0 and config space at the offsets from
 * VFIO_DEVICE_GET_REGION_INFO; never mmap), prints one line per step
 * ("ok: ..." or "not ok: ...") and exits 0 only if every step passed.
 *
 * It is the conformance reference for the userspace uAPI model too, so it
 * only relies on behaviour documented in the kernel uAPI headers.
 *
 * edu (QEMU hw/misc/edu.c) as a DMA engine: BAR0 0x80 source, 0x88
 * destination, 0x90 count, 0x98 command (bit 0 start, bit 1 direction:
 * 0 = RAM -> device buffer, 1 = device buffer -> RAM).  The device buffer
 * lives at device address 0x40000 and is 4096 bytes; DMA addresses are
 * masked to 28 bits, so every IOVA used here is below 256 MiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "../lib/report.h"
#include "../lib/ioas.h"

#define EDU_ID          0x00
#define EDU_DMA_SRC     0x80
#define EDU_DMA_DST     0x88
#define EDU_DMA_CNT     0x90
#define EDU_DMA_CMD     0x98
#define EDU_CMD_START   0x1
#define EDU_CMD_TO_RAM  0x2
#define EDU_BUF         0x40000

#define BUF_SIZE        0x10000         /* 64 KiB mapped buffer */
#define XFER            2048            /* bytes per DMA (edu limit < 4096) */
#define IOVA_A          0x100000ULL     /* buffer in IOAS 1 (device A) */
#define IOVA_B          0x200000ULL     /* same pages copied into IOAS 2 */
#define IOVA_GONE       0x300000ULL     /* mapped, then unmapped */


/* Stop at the first failure of a step later steps depend on. */
static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("not ok: ", fmt, ap);
    va_end(ap);
    printf("result: failed (stopped early)\n");
    exit(1);
}

struct dev {
    const char *path;
    int fd;
    uint32_t devid;
    uint64_t bar0_off, bar0_size;
    uint64_t cfg_off;
};

static void region(struct dev *d, unsigned index, uint64_t *off, uint64_t *size)
{
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };

    if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
        fatal("%s: VFIO_DEVICE_GET_REGION_INFO(%u): %s", d->path, index,
              strerror(errno));
    *off = ri.offset;
    *size = ri.size;
}

static uint32_t rd32(struct dev *d, uint64_t reg)
{
    uint32_t v;

    if (pread(d->fd, &v, 4, d->bar0_off + reg) != 4)
        fatal("%s: BAR0 read 0x%" PRIx64 ": %s", d->path, reg, strerror(errno));
    return v;
}

static void wr32(struct dev *d, uint64_t reg, uint32_t v)
{
    if (pwrite(d->fd, &v, 4, d->bar0_off + reg) != 4)
        fatal("%s: BAR0 write 0x%" PRIx64 ": %s", d->path, reg, strerror(errno));
}

/*
 * One edu DMA; returns 0 when the engine reports completion.  Addresses
 * are below 2^32, and a 32-bit write of edu's 64-bit DMA registers sets
 * the whole register.
 */
static int edu_dma(struct dev *d, uint64_t src, uint64_t dst, uint32_t cnt,
                   int to_ram)
{
    struct timespec t0, t;

    wr32(d, EDU_DMA_SRC, (uint32_t)src);
    wr32(d, EDU_DMA_DST, (uint32_t)dst);
    wr32(d, EDU_DMA_CNT, cnt);
    wr32(d, EDU_DMA_CMD, EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (!(rd32(d, EDU_DMA_CMD) & EDU_CMD_START))
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20)
            return -1;
        usleep(5000);
    }
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static int ioctl_errno(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg) ? errno : 0;
}

static void expect_errno(const char *what, int got, int want)
{
    if (got == want)
        ok("%s -> %s", what, strerror(want));
    else
        bad("%s: expected %s, got %s", what, strerror(want),
            got ? strerror(got) : "success");
}

static uint32_t ioas_alloc(int iommufd)
{
    struct iommu_ioas_alloc a = { .size = sizeof(a) };

    if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &a))
        fatal("IOMMU_IOAS_ALLOC: %s", strerror(errno));
    return a.out_ioas_id;
}

static int ioas_unmap(int iommufd, uint32_t ioas, uint64_t iova, uint64_t len,
                      uint64_t *unmapped)
{
    struct iommu_ioas_unmap u = {
        .size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = len,
    };
    int e = ioctl_errno(iommufd, IOMMU_IOAS_UNMAP, &u);

    if (unmapped)
        *unmapped = u.length;
    return e;
}

static int destroy(int iommufd, uint32_t id)
{
    struct iommu_destroy d = { .size = sizeof(d), .id = id };

    return ioctl_errno(iommufd, IOMMU_DESTROY, &d);
}

static void open_dev(struct dev *d, int iommufd)
{
    struct vfio_device_bind_iommufd b = {
        .argsz = sizeof(b), .iommufd = iommufd,
    };
    struct vfio_device_info info = { .argsz = sizeof(info) };
    uint64_t cfg_size;

    d->fd = open(d->path, O_RDWR | O_CLOEXEC);
    if (d->fd < 0)
        fatal("open %s: %s", d->path, strerror(errno));
    ok("open %s: fd %d", d->path, d->fd);

    if (ioctl(d->fd, VFIO_DEVICE_BIND_IOMMUFD, &b))
        fatal("%s: VFIO_DEVICE_BIND_IOMMUFD: %s", d->path, strerror(errno));
    d->devid = b.out_devid;
    ok("%s: VFIO_DEVICE_BIND_IOMMUFD -> dev_id %u", d->path, d->devid);

    if (ioctl(d->fd, VFIO_DEVICE_GET_INFO, &info))
        fatal("%s: VFIO_DEVICE_GET_INFO: %s", d->path, strerror(errno));
    if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) ||
        info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX)
        fatal("%s: not a PCI device (flags 0x%x, %u regions)", d->path,
              info.flags, info.num_regions);
    region(d, VFIO_PCI_BAR0_REGION_INDEX, &d->bar0_off, &d->bar0_size);
    region(d, VFIO_PCI_CONFIG_REGION_INDEX, &d->cfg_off, &cfg_size);
    if (d->bar0_size < 0x100)
        fatal("%s: BAR0 too small (0x%" PRIx64 ")", d->path, d->bar0_size);
    ok("%s: regions: BAR0 0x%" PRIx64 " bytes at fd offset 0x%" PRIx64
       ", config at 0x%" PRIx64, d->path, d->bar0_size, d->bar0_off, d->cfg_off);
}

static void enable_device(struct dev *d)
{
    uint16_t vid[2], cmd;

    if (pread(d->fd, vid, 4, d->cfg_off) != 4)
        fatal("%s: config read: %s", d->path, strerror(errno));
    if (vid[0] != 0x1234 || vid[1] != 0x11e8)
        fatal("%s: not an edu device (%04x:%04x)", d->path, vid[0], vid[1]);
    if (pread(d->fd, &cmd, 2, d->cfg_off + 4) != 2)
        fatal("%s: config read: %s", d->path, strerror(errno));
    cmd |= 0x6;         /* memory space + bus master */
    if (pwrite(d->fd, &cmd, 2, d->cfg_off + 4) != 2)
        fatal("%s: config write: %s", d->path, strerror(errno));
    if (pread(d->fd, &cmd, 2, d->cfg_off + 4) != 2 || (cmd & 0x6) != 0x6)
        fatal("%s: bus mastering did not stick (command 0x%x)", d->path, cmd);
    if (rd32(d, EDU_ID) >> 16 != 0x0100)
        fatal("%s: edu identification register reads 0x%08x", d->path,
              rd32(d, EDU_ID));
    ok("%s: edu %04x:%04x, id 0x%08x, memory + bus master enabled", d->path,
       vid[0], vid[1], rd32(d, EDU_ID));
}

/* RAM(src_iova) -> edu buffer -> RAM(dst_iova), then compare in memory. */
static int round_trip(struct dev *d, const char *what, uint64_t src_iova,
                      uint64_t dst_iova, const uint8_t *src, const uint8_t *dst)
{
    if (edu_dma(d, src_iova, EDU_BUF, XFER, 0)) {
        bad("%s: DMA RAM->device did not complete", what);
        return -1;
    }
    if (edu_dma(d, EDU_BUF, dst_iova, XFER, 1)) {
        bad("%s: DMA device->RAM did not complete", what);
        return -1;
    }
    if (memcmp(src, dst, XFER)) {
        size_t i = 0;
        while (src[i] == dst[i])
            i++;
        bad("%s: byte %zu differs (0x%02x, expected 0x%02x)", what, i, dst[i],
            src[i]);
        return -1;
    }
    ok("%s: %d bytes IOVA 0x%" PRIx64 " -> edu -> IOVA 0x%" PRIx64
       ", all bytes verified", what, XFER, src_iova, dst_iova);
    return 0;
}

int main(int argc, char **argv)
{
    struct dev a = { 0 }, b = { 0 };
    int iommufd;
    uint32_t ioas1, ioas2, hwpt = 0;
    uint8_t *buf, *gone;
    int e;

    if (argc != 3) {
        fprintf(stderr, "usage: %s /dev/vfio/devices/vfioA /dev/vfio/devices/vfioB\n",
                argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    a.path = argv[1];
    b.path = argv[2];

    iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
    if (iommufd < 0)
        fatal("open /dev/iommu: %s", strerror(errno));
    ok("open /dev/iommu: fd %d", iommufd);

    open_dev(&a, iommufd);
    open_dev(&b, iommufd);

    ioas1 = ioas_alloc(iommufd);
    ioas2 = ioas_alloc(iommufd);
    ok("IOMMU_IOAS_ALLOC -> ioas %u and ioas %u", ioas1, ioas2);

    /* What the IOMMU behind device A can do. */
    {
        struct iommu_hw_info hi = { .size = sizeof(hi), .dev_id = a.devid };
        struct iommu_hwpt_alloc ha = {
            .size = sizeof(ha), .dev_id = a.devid, .pt_id = ioas1,
            .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
        };
        int dirty;

        if (ioctl(iommufd, IOMMU_GET_HW_INFO, &hi))
            fatal("IOMMU_GET_HW_INFO: %s", strerror(errno));
        dirty = !!(hi.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
        ok("IOMMU_GET_HW_INFO(dev %u): type %u%s, capabilities 0x%" PRIx64
           " (dirty tracking %s)", a.devid, hi.out_data_type,
           hi.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD ? " (Intel VT-d)" : "",
           (uint64_t)hi.out_capabilities, dirty ? "yes" : "no");

        /* A dirty-tracking HWPT exists exactly when the hardware says so. */
        e = ioctl_errno(iommufd, IOMMU_HWPT_ALLOC, &ha);
        if (dirty && !e) {
            ok("IOMMU_HWPT_ALLOC(DIRTY_TRACKING) -> hwpt %u", ha.out_hwpt_id);
            destroy(iommufd, ha.out_hwpt_id);
        } else if (!dirty) {
            expect_errno("IOMMU_HWPT_ALLOC(DIRTY_TRACKING) without the capability",
                         e, EOPNOTSUPP);
            if (!e)
                destroy(iommufd, ha.out_hwpt_id);
        } else {
            bad("IOMMU_HWPT_ALLOC(DIRTY_TRACKING) with the capability: %s",
                strerror(e));
        }

        /* Device A goes through an explicitly allocated HWPT on IOAS 1. */
        ha.flags = 0;
        ha.out_hwpt_id = 0;
        if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &ha))
            fatal("IOMMU_HWPT_ALLOC(dev %u, ioas %u): %s", a.devid, ioas1,
                  strerror(errno));
        hwpt = ha.out_hwpt_id;
        ok("IOMMU_HWPT_ALLOC(dev %u, ioas %u) -> hwpt %u", a.devid, ioas1, hwpt);
    }

    {
        struct vfio_device_attach_iommufd_pt at = {
            .argsz = sizeof(at), .pt_id = hwpt,
        };

        if (ioctl(a.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
            fatal("%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT(hwpt %u): %s", a.path,
                  hwpt, strerror(errno));
        ok("%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT -> hwpt %u (on ioas %u)", a.path,
           at.pt_id, ioas1);
        at.pt_id = ioas2;
        if (ioctl(b.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
            fatal("%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas %u): %s", b.path,
                  ioas2, strerror(errno));
        ok("%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas %u) -> pt %u", b.path,
           ioas2, at.pt_id);
    }

    /* The usable IOVA ranges; our IOVAs must lie inside one of them. */
    {
        struct iommu_ioas_iova_ranges r = { .size = sizeof(r), .ioas_id = ioas1 };
        struct iommu_iova_range *ranges;
        uint32_t n, i;
        int inside = 0;

        e = ioctl_errno(iommufd, IOMMU_IOAS_IOVA_RANGES, &r);
        if (e != EMSGSIZE && e != 0)
            fatal("IOMMU_IOAS_IOVA_RANGES(count): %s", strerror(e));
        n = r.num_iovas;
        if (n == 0)
            fatal("IOMMU_IOAS_IOVA_RANGES: no usable IOVA range");
        if (e != EMSGSIZE)
            bad("IOMMU_IOAS_IOVA_RANGES with num_iovas 0 and %u ranges: "
                "expected EMSGSIZE, got success", n);
        ranges = calloc(n, sizeof(*ranges));
        r.num_iovas = n;
        r.allowed_iovas = (uintptr_t)ranges;
        if (ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, &r))
            fatal("IOMMU_IOAS_IOVA_RANGES: %s", strerror(errno));
        for (i = 0; i < r.num_iovas; i++) {
            printf("  range %u: 0x%" PRIx64 "-0x%" PRIx64 "\n", i,
                   (uint64_t)ranges[i].start, (uint64_t)ranges[i].last);
            if (ranges[i].start <= IOVA_A && ranges[i].last >= IOVA_GONE + BUF_SIZE)
                inside = 1;
        }
        if (!inside)
            fatal("IOVA 0x%llx-0x%llx is not inside an allowed range",
                  IOVA_A, IOVA_GONE + BUF_SIZE - 1);
        ok("IOMMU_IOAS_IOVA_RANGES(ioas %u): %u ranges, alignment 0x%" PRIx64,
           ioas1, r.num_iovas, (uint64_t)r.out_iova_alignment);
        free(ranges);
    }

    buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    gone = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED || gone == MAP_FAILED)
        fatal("mmap: %s", strerror(errno));
    memset(buf, 0xee, BUF_SIZE);
    memset(gone, 0x5a, BUF_SIZE);

    e = ioas_map_fixed(iommufd, ioas1, buf, BUF_SIZE, IOVA_A);
    if (e)
        fatal("IOMMU_IOAS_MAP(ioas %u, iova 0x%llx): %s", ioas1, IOVA_A,
              strerror(e));
    ok("IOMMU_IOAS_MAP(ioas %u): %d bytes at iova 0x%llx", ioas1, BUF_SIZE,
       IOVA_A);
    e = ioas_map_fixed(iommufd, ioas1, buf, BUF_SIZE, IOVA_A);
    expect_errno("IOMMU_IOAS_MAP over an existing mapping", e, EEXIST);

    /* Without FIXED_IOVA the kernel picks a free, aligned IOVA. */
    {
        struct iommu_ioas_map m = {
            .size = sizeof(m),
            .flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
            .ioas_id = ioas1, .user_va = (uintptr_t)gone, .length = BUF_SIZE,
        };
        uint64_t n = 0;

        if (ioctl(iommufd, IOMMU_IOAS_MAP, &m)) {
            bad("IOMMU_IOAS_MAP without FIXED_IOVA: %s", strerror(errno));
        } else if (m.iova % 4096 ||
                   (m.iova < IOVA_A + BUF_SIZE && m.iova + BUF_SIZE > IOVA_A)) {
            bad("IOMMU_IOAS_MAP without FIXED_IOVA chose iova 0x%" PRIx64
                " (unaligned or overlapping 0x%llx)", (uint64_t)m.iova, IOVA_A);
        } else if ((e = ioas_unmap(iommufd, ioas1, m.iova, BUF_SIZE, &n)) ||
                   n != BUF_SIZE) {
            bad("IOMMU_IOAS_UNMAP of the kernel-chosen iova 0x%" PRIx64 ": %s",
                (uint64_t)m.iova, e ? strerror(e) : "short");
        } else {
            ok("IOMMU_IOAS_MAP without FIXED_IOVA -> iova 0x%" PRIx64
               " (free, page aligned), unmapped again", (uint64_t)m.iova);
        }
    }

    enable_device(&a);
    enable_device(&b);

    /* Round trip on device A: buf[0..] -> edu -> buf[0x8000..] */
    fill(buf, XFER, 1);
    round_trip(&a, "DMA through IOAS 1 (device A)", IOVA_A, IOVA_A + 0x8000,
               buf, buf + 0x8000);

    /* IOAS_COPY: the same pages appear in IOAS 2 for device B. */
    {
        struct iommu_ioas_copy c = {
            .size = sizeof(c),
            .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                     IOMMU_IOAS_MAP_WRITEABLE,
            .dst_ioas_id = ioas2, .src_ioas_id = ioas1,
            .length = BUF_SIZE, .dst_iova = IOVA_B, .src_iova = IOVA_A,
        };

        if (ioctl(iommufd, IOMMU_IOAS_COPY, &c))
            fatal("IOMMU_IOAS_COPY: %s", strerror(errno));
        ok("IOMMU_IOAS_COPY: ioas %u iova 0x%llx -> ioas %u iova 0x%llx, %d bytes",
           ioas1, IOVA_A, ioas2, IOVA_B, BUF_SIZE);
        fill(buf + 0x1000, XFER, 2);
        memset(buf + 0xc000, 0xee, XFER);
        round_trip(&b, "DMA through the copied mapping in IOAS 2 (device B)",
                   IOVA_B + 0x1000, IOVA_B + 0xc000, buf + 0x1000, buf + 0xc000);
        /* Isolation: B cannot reach an IOVA that only IOAS 1 maps. */
        memset(buf + 0x8000, 0xee, XFER);
        if (edu_dma(&b, EDU_BUF, IOVA_A + 0x8000, XFER, 1)) {
            bad("isolation DMA on device B did not complete");
        } else {
            size_t i, changed = 0;
            for (i = 0; i < XFER; i++)
                changed += buf[0x8000 + i] != 0xee;
            if (changed)
                bad("device B wrote %zu bytes through IOVA 0x%llx, which only "
                    "IOAS 1 maps", changed, IOVA_A + 0x8000);
            else
                ok("device B cannot write IOVA 0x%llx (mapped in IOAS 1 only): "
                   "refused, memory intact", IOVA_A + 0x8000);
        }
    }

    /*
     * DMA to/from an IOVA that was mapped and then unmapped must not reach
     * the old pages: nothing is written to them and nothing is read.
     */
    {
        uint64_t n = 0;

        e = ioas_map_fixed(iommufd, ioas1, gone, BUF_SIZE, IOVA_GONE);
        if (e)
            fatal("IOMMU_IOAS_MAP(iova 0x%llx): %s", IOVA_GONE, strerror(e));
        e = ioas_unmap(iommufd, ioas1, IOVA_GONE, BUF_SIZE, &n);
        if (e || n != BUF_SIZE)
            bad("IOMMU_IOAS_UNMAP(iova 0x%llx): %s, %" PRIu64 " bytes", IOVA_GONE,
                e ? strerror(e) : "ok", n);
        else
            ok("IOMMU_IOAS_UNMAP(ioas %u, iova 0x%llx): %" PRIu64 " bytes",
               ioas1, IOVA_GONE, n);

        /* device -> RAM at the unmapped IOVA: the old pages stay intact */
        fill(buf, XFER, 3);
        if (edu_dma(&a, IOVA_A, EDU_BUF, XFER, 0) ||
            edu_dma(&a, EDU_BUF, IOVA_GONE, XFER, 1))
            bad("DMA to unmapped IOVA: engine did not complete");
        else {
            size_t i, changed = 0;
            for (i = 0; i < BUF_SIZE; i++)
                changed += gone[i] != 0x5a;
            if (changed)
                bad("DMA write to unmapped IOVA 0x%llx changed %zu bytes of the "
                    "old pages", IOVA_GONE, changed);
            else
                ok("DMA write to unmapped IOVA 0x%llx: refused, old pages intact",
                   IOVA_GONE);
        }

        /* RAM -> device from the unmapped IOVA: the old contents never
         * reach the device buffer. */
        memset(buf + 0x8000, 0xee, XFER);
        if (edu_dma(&a, IOVA_GONE, EDU_BUF, XFER, 0) ||
            edu_dma(&a, EDU_BUF, IOVA_A + 0x8000, XFER, 1))
            bad("DMA read from unmapped IOVA: engine did not complete");
        else {
            size_t i, leaked = 0;
            for (i = 0; i < XFER; i++)
                leaked += buf[0x8000 + i] == 0x5a;
            if (leaked == XFER)
                bad("DMA read from unmapped IOVA 0x%llx returned the old pages",
                    IOVA_GONE);
            else
                ok("DMA read from unmapped IOVA 0x%llx: refused (device got "
                   "no data from the old pages)", IOVA_GONE);
        }
        /* and the device still works through the live mapping */
        fill(buf, XFER, 4);
        round_trip(&a, "DMA through IOAS 1 after the faults", IOVA_A,
                   IOVA_A + 0x8000, buf, buf + 0x8000);
    }

    /* Error paths. */
    {
        struct iommu_ioas_alloc al = { .size = sizeof(al), .flags = 1u << 31 };
        struct iommu_ioas_map m = {
            .size = sizeof(m), .flags = 1u << 30 | IOMMU_IOAS_MAP_READABLE,
            .ioas_id = ioas1, .user_va = (uintptr_t)gone, .length = 4096,
        };
        uint64_t n;

        expect_errno("IOMMU_IOAS_ALLOC with unknown flags",
                     ioctl_errno(iommufd, IOMMU_IOAS_ALLOC, &al), EOPNOTSUPP);
        expect_errno("IOMMU_IOAS_MAP with unknown flags",
                     ioctl_errno(iommufd, IOMMU_IOAS_MAP, &m), EOPNOTSUPP);
        m.flags = IOMMU_IOAS_MAP_READABLE;
        m.ioas_id = 0xdead;
        expect_errno("IOMMU_IOAS_MAP on a nonexistent IOAS id",
                     ioctl_errno(iommufd, IOMMU_IOAS_MAP, &m), ENOENT);
        expect_errno("IOMMU_DESTROY of a nonexistent id",
                     destroy(iommufd, 0xdead), ENOENT);
        expect_errno("IOMMU_IOAS_UNMAP of a never-mapped range",
                     ioas_unmap(iommufd, ioas1, 0x4000000, 4096, &n), ENOENT);
        char what[96];

        snprintf(what, sizeof(what),
                 "IOMMU_DESTROY of ioas %u with device B attached", ioas2);
        expect_errno(what, destroy(iommufd, ioas2), EBUSY);
        snprintf(what, sizeof(what),
                 "IOMMU_DESTROY of hwpt %u with device A attached", hwpt);
        expect_errno(what, destroy(iommufd, hwpt), EBUSY);
    }

    /* Tear down. */
    {
        struct vfio_device_detach_iommufd_pt dt = { .argsz = sizeof(dt) };
        uint64_t n = 0;

        if (ioctl(a.fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt) ||
            ioctl(b.fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt))
            bad("VFIO_DEVICE_DETACH_IOMMUFD_PT: %s", strerror(errno));
        else
            ok("VFIO_DEVICE_DETACH_IOMMUFD_PT on both devices");
        e = destroy(iommufd, hwpt);
        if (e)
            bad("IOMMU_DESTROY(hwpt %u): %s", hwpt, strerror(e));
        else
            ok("IOMMU_DESTROY(hwpt %u)", hwpt);
        e = ioas_unmap(iommufd, ioas1, 0, UINT64_MAX, &n);
        if (e || n != BUF_SIZE)
            bad("IOMMU_IOAS_UNMAP(all of ioas %u): %s, %" PRIu64 " bytes",
                ioas1, e ? strerror(e) : "ok", n);
        else
            ok("IOMMU_IOAS_UNMAP(all of ioas %u): %" PRIu64 " bytes", ioas1, n);
        e = ioas_unmap(iommufd, ioas2, IOVA_B, BUF_SIZE, &n);
        if (e || n != BUF_SIZE)
            bad("IOMMU_IOAS_UNMAP(ioas %u): %s", ioas2, e ? strerror(e) : "short");
        else
            ok("IOMMU_IOAS_UNMAP(ioas %u, iova 0x%llx): %" PRIu64 " bytes",
               ioas2, IOVA_B, n);
        e = destroy(iommufd, ioas1);
        if (!e)
            e = destroy(iommufd, ioas2);
        if (e)
            bad("IOMMU_DESTROY of the IOASes: %s", strerror(e));
        else
            ok("IOMMU_DESTROY(ioas %u), IOMMU_DESTROY(ioas %u)", ioas1, ioas2);
        expect_errno("IOMMU_DESTROY of a destroyed IOAS", destroy(iommufd, ioas1),
                     ENOENT);
        if (close(a.fd) || close(b.fd) || close(iommufd))
            bad("close: %s", strerror(errno));
        else
            ok("closed the device fds and /dev/iommu");
    }

    printf("result: %s (%d failed)\n", failures ? "failed" : "passed", failures);
    return failures ? 1 : 0;
}
