/*
 * unit: tests of the vfio-model library, run with the library preloaded
 * (LD_PRELOAD) and VFIO_MODEL_CONTROL / VFIO_MODEL_SYSFS set.
 * Usage: unit PREFIX   -- prints "PASS: PREFIX/<test>" or "FAIL: ..." lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "vfio-model-client.h"

static const char *prefix;
static int ctl;
static int nfail;
static char why[512];

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            snprintf(why, sizeof(why), "line %d: ", __LINE__);                \
            snprintf(why + strlen(why), sizeof(why) - strlen(why), __VA_ARGS__); \
            snprintf(why + strlen(why), sizeof(why) - strlen(why), " [%s] (errno %s)", \
                     #cond, strerror(errno));                                 \
            return -1;                                                        \
        }                                                                     \
    } while (0)

#define IOERR(call, e) (((call) == -1) && errno == (e))

static long long C(const char *n) { return vfio_model_counter(ctl, n); }

static void run(const char *name, int (*fn)(void))
{
    why[0] = 0;
    int r = fn();
    if (r == 0 && why[0])
        printf("PASS: %s/%s (%s)\n", prefix, name, why);
    else if (r == 0)
        printf("PASS: %s/%s\n", prefix, name);
    else {
        printf("FAIL: %s/%s: %s\n", prefix, name, why);
        nfail++;
    }
    fflush(stdout);
}

/* all model state released? */
static int quiescent(void)
{
    static const char *keys[] = {
        "fds_iommu", "fds_container", "fds_group", "fds_cdev", "fds_device", "files",
        "iommufd_ctx", "ioas", "hwpt", "devices_bound", "devices_attached",
        "devices_open_group", "ioas_mappings", "pinned_pages", "type1_pinned_pages",
        "containers", "groups_open", "groups_in_container", "type1_mappings", "irq_eventfds",
        "fds_migdata", "mig_sessions", "dirty_bitmap_bytes",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        long long v = C(keys[i]);
        if (v != 0) {
            snprintf(why, sizeof(why), "counter %s=%lld after cleanup", keys[i], v);
            return -1;
        }
    }
    return 0;
}

#define QUIET() do { if (quiescent()) return -1; } while (0)

/* ------------------------------------------------------------ helpers */

static int ioas_alloc(int fd, uint32_t *id)
{
    struct iommu_ioas_alloc a = { .size = sizeof(a) };
    int r = ioctl(fd, IOMMU_IOAS_ALLOC, &a);
    *id = a.out_ioas_id;
    return r;
}

static int map(int fd, uint32_t ioas, void *va, uint64_t len, uint64_t *iova, uint32_t flags)
{
    struct iommu_ioas_map m = { .size = sizeof(m), .flags = flags, .ioas_id = ioas,
                                .user_va = (uintptr_t)va, .length = len, .iova = *iova };
    int r = ioctl(fd, IOMMU_IOAS_MAP, &m);
    *iova = m.iova;
    return r;
}

static int unmap(int fd, uint32_t ioas, uint64_t iova, uint64_t len, uint64_t *out)
{
    struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = len };
    int r = ioctl(fd, IOMMU_IOAS_UNMAP, &u);
    if (out)
        *out = u.length;
    return r;
}

static int destroy(int fd, uint32_t id)
{
    struct iommu_destroy d = { .size = sizeof(d), .id = id };
    return ioctl(fd, IOMMU_DESTROY, &d);
}

static int dbind(int dev, int iommufd, uint32_t *devid)
{
    struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };
    int r = ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b);
    if (r == 0)
        *devid = b.out_devid;
    return r;
}

static int attach(int dev, uint32_t *pt)
{
    struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = *pt };
    int r = ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
    *pt = a.pt_id;
    return r;
}

static int detach(int dev)
{
    struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };
    return ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
}

#define CFG_OFF ((uint64_t)VFIO_PCI_CONFIG_REGION_INDEX << 40)
#define BAR0_OFF ((uint64_t)VFIO_PCI_BAR0_REGION_INDEX << 40)
#define BAR2_OFF ((uint64_t)VFIO_PCI_BAR2_REGION_INDEX << 40)
#define BAR2_SIZE (64u << 10)
#define RW_MAP (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define RW_FIXED (RW_MAP | IOMMU_IOAS_MAP_FIXED_IOVA)

static uint32_t rd32(int dev, uint64_t reg)
{
    uint32_t v = 0xdeadbeef;
    if (pread(dev, &v, 4, BAR0_OFF + reg) != 4)
        return 0xdeadbeef;
    return v;
}

static int wr64(int dev, uint64_t reg, uint64_t v)
{
    return pwrite(dev, &v, 8, BAR0_OFF + reg) == 8 ? 0 : -1;
}

static int wr32(int dev, uint64_t reg, uint32_t v)
{
    return pwrite(dev, &v, 4, BAR0_OFF + reg) == 4 ? 0 : -1;
}

static int bus_master(int dev)
{
    uint16_t cmd = 0x6;
    return pwrite(dev, &cmd, 2, CFG_OFF + 4) == 2 ? 0 : -1;
}

/* edu DMA: to_ram=0: RAM(iova)->buf(off), 1: buf(off)->RAM(iova) */
static int edu_dma(int dev, uint64_t iova, uint32_t off, uint32_t cnt, int to_ram, int irq)
{
    if (wr64(dev, 0x80, to_ram ? 0x40000 + off : iova) ||
        wr64(dev, 0x88, to_ram ? iova : 0x40000 + off) || wr64(dev, 0x90, cnt) ||
        wr64(dev, 0x98, 1 | (to_ram ? 2 : 0) | (irq ? 4 : 0)))
        return -1;
    return (rd32(dev, 0x98) & 1) ? -1 : 0;
}

static void *pages(size_t n)
{
    void *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memset(p, 0, n * 4096);
    return p;
}

/* mmap of a device fd's region at @off (BAR2: BAR2_OFF) */
static void *bar2_mmap(int dev, size_t len, uint64_t off, int flags)
{
    return mmap(NULL, len, PROT_READ | PROT_WRITE, flags, dev, off);
}

#define NOMAP(fd, len, off, flags, what) \
    CHECK(bar2_mmap(fd, len, off, flags) == MAP_FAILED && errno == EINVAL, what)

/* config space BAR2: write *set (if given), read it back */
static uint32_t cfg_bar2(int dev, const uint32_t *set)
{
    uint32_t v = 0xdeadbeef;
    if (set && pwrite(dev, set, 4, CFG_OFF + 0x18) != 4)
        return 0xdeadbeef;
    if (pread(dev, &v, 4, CFG_OFF + 0x18) != 4)
        return 0xdeadbeef;
    return v;
}

/* ------------------------------------------------------------- tests */

static int t_sysfs(void)
{
    const char *s = getenv("VFIO_MODEL_SYSFS");
    CHECK(s, "VFIO_MODEL_SYSFS unset");
    char p[512], buf[64] = "";
    snprintf(p, sizeof(p), "%s/devices/0000:00:03.0/vfio-dev/vfio0/dev", s);
    FILE *f = fopen(p, "r");
    CHECK(f, "no %.300s", p);
    CHECK(fgets(buf, sizeof(buf), f) != NULL, "empty dev");
    fclose(f);
    CHECK(!strcmp(buf, "511:0\n"), "dev=%s", buf);
    snprintf(p, sizeof(p), "%s/devices/0000:00:04.0/iommu_group", s);
    ssize_t n = readlink(p, buf, sizeof(buf) - 1);
    CHECK(n > 0, "no iommu_group link");
    buf[n] = 0;
    CHECK(!strcmp(strrchr(buf, '/'), "/4"), "group link %s", buf);
    snprintf(p, sizeof(p), "%s/devices/0000:00:03.0/vendor", s);
    f = fopen(p, "r");
    CHECK(f && fgets(buf, sizeof(buf), f), "no vendor");
    fclose(f);
    CHECK(!strcmp(buf, "0x1234\n"), "vendor %s", buf);
    struct stat st;
    CHECK(stat("/dev/vfio/devices/vfio1", &st) == 0 && S_ISCHR(st.st_mode) &&
              st.st_rdev == makedev(511, 1), "stat cdev");
    CHECK(IOERR(open("/dev/vfio/devices/vfio9", O_RDWR), ENOENT), "vfio9 must not exist");
    return 0;
}

static int t_ucmd_size(void)
{
    int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0, "open /dev/iommu: %s", strerror(errno));
    CHECK(C("fds_iommu") == 1, "fds_iommu");
    struct { struct iommu_ioas_alloc a; uint32_t tail[5]; } big;
    memset(&big, 0, sizeof(big));
    big.a.size = 4;
    CHECK(IOERR(ioctl(fd, IOMMU_IOAS_ALLOC, &big), EINVAL), "short size");
    big.a.size = sizeof(big);
    big.tail[3] = 1;
    CHECK(IOERR(ioctl(fd, IOMMU_IOAS_ALLOC, &big), E2BIG), "non-zero tail");
    big.tail[3] = 0;
    CHECK(ioctl(fd, IOMMU_IOAS_ALLOC, &big) == 0 && big.a.out_ioas_id, "zero tail ok");
    big.a.flags = 1;
    CHECK(IOERR(ioctl(fd, IOMMU_IOAS_ALLOC, &big), EOPNOTSUPP), "flags");
    CHECK(IOERR(ioctl(fd, _IO(IOMMUFD_TYPE, 0xa0), &big), ENOTTY), "unknown cmd");
    CHECK(IOERR(destroy(fd, 77), ENOENT), "destroy unknown");
    CHECK(C("ioas") == 1, "ioas=%lld", C("ioas"));
    close(fd);
    QUIET();
    return 0;
}

static int t_ioas_map(void)
{
    int fd = open("/dev/iommu", O_RDWR);
    uint32_t ioas;
    CHECK(fd >= 0 && ioas_alloc(fd, &ioas) == 0, "alloc");
    /* a fresh IOAS has the full range */
    struct iommu_iova_range r[4];
    struct iommu_ioas_iova_ranges q = { .size = sizeof(q), .ioas_id = ioas, .num_iovas = 0,
                                        .allowed_iovas = (uintptr_t)r };
    CHECK(IOERR(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q), EMSGSIZE) && q.num_iovas == 1, "EMSGSIZE");
    q.num_iovas = 4;
    CHECK(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q) == 0 && q.num_iovas == 1 && r[0].start == 0 &&
              r[0].last == ULONG_MAX && q.out_iova_alignment == 4096, "full range");
    char *buf = pages(16);
    CHECK(buf, "mmap");
    uint64_t iova = 0x100000;
    uint32_t rw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    CHECK(map(fd, ioas, buf, 8 * 4096, &iova, rw | IOMMU_IOAS_MAP_FIXED_IOVA) == 0, "map fixed");
    CHECK(C("ioas_mappings") == 1 && C("pinned_pages") == 0, "no domain: not pinned");
    iova = 0x104000;
    CHECK(IOERR(map(fd, ioas, buf, 4096, &iova, rw | IOMMU_IOAS_MAP_FIXED_IOVA), EEXIST), "overlap");
    iova = 0x200800;
    CHECK(IOERR(map(fd, ioas, buf, 4096, &iova, rw | IOMMU_IOAS_MAP_FIXED_IOVA), EINVAL), "unaligned");
    iova = 0x300000;
    CHECK(IOERR(map(fd, ioas, buf, 4096, &iova, IOMMU_IOAS_MAP_FIXED_IOVA), EINVAL), "no prot");
    CHECK(IOERR(map(fd, ioas, buf, 4096, &iova, rw | 0x80), EOPNOTSUPP), "bad flag");
    CHECK(IOERR(map(fd, ioas, buf, 0, &iova, rw), EINVAL), "zero length");
    iova = ULONG_MAX;
    CHECK(IOERR(map(fd, ioas, buf, 4096, &iova, rw | IOMMU_IOAS_MAP_FIXED_IOVA), EOVERFLOW), "overflow");
    iova = 0;
    CHECK(IOERR(map(fd, ioas + 5, buf, 4096, &iova, rw), ENOENT), "bad ioas");
    iova = 0;
    CHECK(map(fd, ioas, buf + 8 * 4096, 4 * 4096, &iova, IOMMU_IOAS_MAP_READABLE) == 0, "auto map");
    CHECK(iova + 4 * 4096 <= 0x100000 || iova >= 0x108000, "auto iova 0x%llx overlaps",
          (unsigned long long)iova);
    uint64_t got;
    CHECK(IOERR(unmap(fd, ioas, 0x100000, 4096, NULL), ENOENT), "split refused");
    CHECK(IOERR(unmap(fd, ioas, 0x100000, 0, NULL), EINVAL), "zero-length unmap");
    CHECK(unmap(fd, ioas, 0x100000, 8 * 4096, &got) == 0 && got == 8 * 4096, "exact unmap");
    CHECK(IOERR(unmap(fd, ioas, 0x100000, 8 * 4096, NULL), ENOENT), "unmap twice");
    CHECK(unmap(fd, ioas, 0, UINT64_MAX, &got) == 0 && got == 4 * 4096, "unmap all: %llu",
          (unsigned long long)got);
    CHECK(unmap(fd, ioas, 0, UINT64_MAX, &got) == 0 && got == 0, "unmap all of nothing");
    CHECK(C("ioas_mappings") == 0, "mappings left");
    CHECK(destroy(fd, ioas) == 0 && C("ioas") == 0, "destroy");
    close(fd);
    munmap(buf, 16 * 4096);
    QUIET();
    return 0;
}

static int t_allow_option(void)
{
    int fd = open("/dev/iommu", O_RDWR);
    struct iommu_option o = { .size = sizeof(o), .option_id = IOMMU_OPTION_RLIMIT_MODE,
                              .op = IOMMU_OPTION_OP_GET };
    CHECK(ioctl(fd, IOMMU_OPTION, &o) == 0 && o.val64 == 0, "rlimit get");
    o.op = IOMMU_OPTION_OP_SET;
    o.val64 = 2;
    CHECK(IOERR(ioctl(fd, IOMMU_OPTION, &o), EINVAL), "rlimit 2");
    o.val64 = 1;
    CHECK(ioctl(fd, IOMMU_OPTION, &o) == 0, "rlimit set 1");
    o.op = IOMMU_OPTION_OP_GET;
    CHECK(ioctl(fd, IOMMU_OPTION, &o) == 0 && o.val64 == 1, "rlimit get 1");
    o.object_id = 3;
    CHECK(IOERR(ioctl(fd, IOMMU_OPTION, &o), EINVAL), "rlimit object id");
    uint32_t ioas;
    CHECK(ioas_alloc(fd, &ioas) == 0, "alloc");
    o.object_id = 0;
    o.op = IOMMU_OPTION_OP_SET;
    o.val64 = 0;
    CHECK(IOERR(ioctl(fd, IOMMU_OPTION, &o), EBUSY), "rlimit with objects");
    struct iommu_option h = { .size = sizeof(h), .option_id = IOMMU_OPTION_HUGE_PAGES,
                              .op = IOMMU_OPTION_OP_SET, .object_id = ioas, .val64 = 0 };
    CHECK(ioctl(fd, IOMMU_OPTION, &h) == 0, "huge set");
    h.op = IOMMU_OPTION_OP_GET;
    CHECK(ioctl(fd, IOMMU_OPTION, &h) == 0 && h.val64 == 0, "huge get");
    h.object_id = 99;
    CHECK(IOERR(ioctl(fd, IOMMU_OPTION, &h), ENOENT), "huge bad id");
    h.option_id = 9;
    CHECK(IOERR(ioctl(fd, IOMMU_OPTION, &h), EOPNOTSUPP), "unknown option");
    /* ALLOW_IOVAS steers automatic allocation */
    struct iommu_iova_range al[2] = { { 0x10000000, 0x1fffffff }, { 0x18000000, 0x2fffffff } };
    struct iommu_ioas_allow_iovas a = { .size = sizeof(a), .ioas_id = ioas, .num_iovas = 2,
                                        .allowed_iovas = (uintptr_t)al };
    CHECK(IOERR(ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &a), EINVAL), "overlapping allowed");
    a.num_iovas = 1;
    CHECK(ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &a) == 0, "allow");
    char *buf = pages(2);
    uint64_t iova = 0;
    CHECK(map(fd, ioas, buf, 8192, &iova, IOMMU_IOAS_MAP_READABLE) == 0 && iova >= 0x10000000 &&
              iova + 8192 - 1 <= 0x1fffffff, "auto iova in allowed: 0x%llx", (unsigned long long)iova);
    close(fd);
    munmap(buf, 8192);
    QUIET();
    return 0;
}

static int t_cdev_bind_attach(void)
{
    int fd = open("/dev/iommu", O_RDWR);
    int dev = open("/dev/vfio/devices/vfio0", O_RDWR);
    CHECK(fd >= 0 && dev >= 0, "open");
    struct stat st;
    CHECK(fstat(dev, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(511, 0), "fstat");
    struct vfio_device_info di = { .argsz = sizeof(di) };
    CHECK(IOERR(ioctl(dev, VFIO_DEVICE_GET_INFO, &di), EINVAL), "no access before bind");
    uint32_t devid;
    struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .flags = 1, .iommufd = fd };
    CHECK(IOERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), EINVAL), "bind flags");
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    CHECK(IOERR(dbind(dev, pfd[0], &devid), EBADFD), "bind to a pipe");
    CHECK(IOERR(dbind(dev, 1000, &devid), EBADF), "bind to a closed fd");
    close(pfd[0]);
    close(pfd[1]);
    CHECK(dbind(dev, fd, &devid) == 0 && devid, "bind");
    CHECK(IOERR(dbind(dev, fd, &devid), EINVAL), "bind twice");
    CHECK(C("devices_bound") == 1, "bound");
    CHECK(ioctl(dev, VFIO_DEVICE_GET_INFO, &di) == 0 && di.num_regions == 9 && di.num_irqs == 5 &&
              (di.flags & VFIO_DEVICE_FLAGS_PCI), "get info");
    /* hw info */
    struct iommu_hw_info_vtd vtd;
    struct iommu_hw_info hi = { .size = sizeof(hi), .dev_id = devid, .data_len = sizeof(vtd),
                                .data_uptr = (uintptr_t)&vtd };
    CHECK(ioctl(fd, IOMMU_GET_HW_INFO, &hi) == 0 && hi.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD &&
              (hi.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING) && hi.data_len == sizeof(vtd),
          "hw info");
    hi.dev_id = devid + 40;
    CHECK(IOERR(ioctl(fd, IOMMU_GET_HW_INFO, &hi), ENOENT), "hw info bad dev");
    uint32_t ioas, pt;
    CHECK(ioas_alloc(fd, &ioas) == 0, "alloc");
    char *buf = pages(8);
    uint64_t iova = 0x100000;
    CHECK(map(fd, ioas, buf, 8 * 4096, &iova, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
              IOMMU_IOAS_MAP_FIXED_IOVA) == 0, "map");
    pt = ioas + 50;
    CHECK(IOERR(attach(dev, &pt), ENOENT), "attach to nothing");
    pt = devid;
    CHECK(IOERR(attach(dev, &pt), ENOENT), "attach to a device id");
    pt = ioas;
    CHECK(attach(dev, &pt) == 0 && pt != ioas, "attach to ioas gives hwpt id");
    CHECK(C("hwpt") == 1 && C("hwpt_auto") == 1 && C("devices_attached") == 1, "auto domain");
    CHECK(C("pinned_pages") == 8, "pinned once a domain exists: %lld", C("pinned_pages"));
    struct iommu_iova_range r[4];
    struct iommu_ioas_iova_ranges q = { .size = sizeof(q), .ioas_id = ioas, .num_iovas = 4,
                                        .allowed_iovas = (uintptr_t)r };
    CHECK(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q) == 0 && q.num_iovas == 2 &&
              r[0].last == 0xfedfffff && r[1].start == 0xfef00000, "MSI hole reserved");
    iova = 0xfee00000;
    CHECK(IOERR(map(fd, ioas, buf, 4096, &iova, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA),
                EINVAL), "map into the hole");
    CHECK(IOERR(destroy(fd, ioas), EBUSY), "ioas busy");
    CHECK(IOERR(destroy(fd, pt), EBUSY), "hwpt busy");
    CHECK(IOERR(destroy(fd, devid), EBUSY), "device busy");
    /* second attach to the same IOAS reuses the domain */
    uint32_t pt2 = ioas;
    CHECK(attach(dev, &pt2) == 0 && pt2 == pt && C("hwpt") == 1, "reattach");
    CHECK(detach(dev) == 0 && C("hwpt") == 0 && C("devices_attached") == 0, "detach drops auto domain");
    CHECK(C("pinned_pages") == 0, "unpinned without domain");
    CHECK(destroy(fd, ioas) == 0, "destroy ioas");
    /* closing the iommufd first: the bound device keeps the ctx */
    close(fd);
    CHECK(C("iommufd_ctx") == 1, "ctx held by bound device");
    close(dev);
    munmap(buf, 8 * 4096);
    QUIET();
    return 0;
}

struct env {
    int fd, dev;
    uint32_t devid, ioas, hwpt;
    char *buf;
};

static int setup_cdev(struct env *e, const char *path, uint32_t hwpt_flags)
{
    e->fd = open("/dev/iommu", O_RDWR);
    e->dev = open(path, O_RDWR);
    CHECK(e->fd >= 0 && e->dev >= 0, "open");
    CHECK(dbind(e->dev, e->fd, &e->devid) == 0, "bind");
    CHECK(ioas_alloc(e->fd, &e->ioas) == 0, "alloc");
    struct iommu_hwpt_alloc h = { .size = sizeof(h), .flags = hwpt_flags, .dev_id = e->devid,
                                  .pt_id = e->ioas };
    CHECK(ioctl(e->fd, IOMMU_HWPT_ALLOC, &h) == 0, "hwpt alloc: %s", strerror(errno));
    e->hwpt = h.out_hwpt_id;
    uint32_t pt = e->hwpt;
    CHECK(attach(e->dev, &pt) == 0 && pt == e->hwpt, "attach hwpt");
    e->buf = pages(16);
    CHECK(e->buf, "mmap");
    uint64_t iova = 0x100000;
    CHECK(map(e->fd, e->ioas, e->buf, 8 * 4096, &iova, IOMMU_IOAS_MAP_READABLE |
              IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA) == 0, "map rw");
    iova = 0x200000;
    CHECK(map(e->fd, e->ioas, e->buf + 8 * 4096, 4 * 4096, &iova, IOMMU_IOAS_MAP_READABLE |
              IOMMU_IOAS_MAP_FIXED_IOVA) == 0, "map ro");
    CHECK(bus_master(e->dev) == 0, "bus master");
    return 0;
}

static void teardown(struct env *e)
{
    close(e->dev);
    close(e->fd);
    munmap(e->buf, 16 * 4096);
}

static int t_edu_regs(void)
{
    struct env e;
    if (setup_cdev(&e, "/dev/vfio/devices/vfio0", 0))
        return -1;
    CHECK(rd32(e.dev, 0) == 0x010000ed, "ident 0x%x", rd32(e.dev, 0));
    CHECK(wr32(e.dev, 4, 0x12345678) == 0 && rd32(e.dev, 4) == ~0x12345678u, "liveness");
    CHECK(wr32(e.dev, 8, 5) == 0 && rd32(e.dev, 8) == 120, "factorial");
    uint16_t v;
    CHECK(pread(e.dev, &v, 2, CFG_OFF) == 2 && v == 0x1234, "vendor");
    CHECK(pread(e.dev, &v, 2, CFG_OFF + 2) == 2 && v == 0x11e8, "device");
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX };
    CHECK(ioctl(e.dev, VFIO_DEVICE_GET_REGION_INFO, &ri) == 0 && ri.size == 1 << 20 &&
              ri.flags == (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE) &&
              ri.offset == BAR0_OFF, "bar0 info");
    ri.index = 9;
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_GET_REGION_INFO, &ri), EINVAL), "region 9");
    ri.argsz = 8;
    ri.index = 0;
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_GET_REGION_INFO, &ri), EINVAL), "argsz small");
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, e.dev, BAR0_OFF) == MAP_FAILED, "bar0 not mmapable");
    struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = VFIO_PCI_MSI_IRQ_INDEX };
    CHECK(ioctl(e.dev, VFIO_DEVICE_GET_IRQ_INFO, &ii) == 0 && ii.count == 1, "msi info");
    CHECK(ioctl(e.dev, VFIO_DEVICE_RESET) == 0 && rd32(e.dev, 8) == 0, "reset");
    struct { struct vfio_device_feature f; struct vfio_device_feature_bus_master bm; } ft = {
        .f = { .argsz = sizeof(ft), .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIGRATION } };
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_FEATURE, &ft), ENOTTY), "no migration");
    ft.f.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_BUS_MASTER;
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_FEATURE, &ft), EINVAL), "get+set");
    ft.f.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_BUS_MASTER;
    ft.bm.op = VFIO_DEVICE_FEATURE_SET_MASTER;
    CHECK(ioctl(e.dev, VFIO_DEVICE_FEATURE, &ft) == 0, "bus master feature");
    CHECK(pread(e.dev, &v, 2, CFG_OFF + 4) == 2 && (v & 4), "bus master bit");
    teardown(&e);
    QUIET();
    return 0;
}

static int t_dma_dirty(void)
{
    struct env e;
    if (setup_cdev(&e, "/dev/vfio/devices/vfio0", IOMMU_HWPT_ALLOC_DIRTY_TRACKING))
        return -1;
    struct iommu_hwpt_set_dirty_tracking sd = { .size = sizeof(sd), .hwpt_id = e.hwpt,
                                                .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE };
    CHECK(ioctl(e.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd) == 0, "enable dirty");
    for (int i = 0; i < 1024; i++)
        e.buf[i] = (char)(i * 7 + 3);
    long long ops = C("dma_ops");
    CHECK(edu_dma(e.dev, 0x100000, 0, 1024, 0, 0) == 0, "dma RAM->dev");
    CHECK(edu_dma(e.dev, 0x100000 + 3 * 4096 + 100, 0, 1024, 1, 0) == 0, "dma dev->RAM");
    CHECK(C("dma_ops") == ops + 2, "dma_ops");
    CHECK(!memcmp(e.buf, e.buf + 3 * 4096 + 100, 1024), "bytes round trip");
    uint64_t bm[2] = { 0, 0 };
    struct iommu_hwpt_get_dirty_bitmap g = { .size = sizeof(g), .hwpt_id = e.hwpt, .iova = 0x100000,
                                             .length = 8 * 4096, .page_size = 4096,
                                             .data = (uintptr_t)bm,
                                             .flags = IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR };
    CHECK(ioctl(e.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g) == 0 && bm[0] == (1u << 3),
          "dirty page 3 only: 0x%llx", (unsigned long long)bm[0]);
    bm[0] = 0;
    g.flags = 0;
    CHECK(ioctl(e.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g) == 0 && bm[0] == (1u << 3), "still dirty (no-clear)");
    bm[0] = 0;
    CHECK(ioctl(e.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g) == 0 && bm[0] == 0, "cleared");
    g.page_size = 3000;
    CHECK(IOERR(ioctl(e.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g), EINVAL), "bad page size");
    g.page_size = 4096;
    g.flags = 8;
    CHECK(IOERR(ioctl(e.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g), EOPNOTSUPP), "bad flags");
    CHECK(C("dirty_bitmap_queries") >= 3, "queries counted");
    /* faults: unmapped IOVA, read-only IOVA for a device write */
    long long f0 = C("dma_faults");
    memset(e.buf + 8 * 4096, 0x5a, 4096);
    CHECK(edu_dma(e.dev, 0x900000, 0, 64, 0, 0) == 0 && C("dma_faults") == f0 + 1, "unmapped fault");
    CHECK(edu_dma(e.dev, 0x200000, 0, 64, 1, 0) == 0 && C("dma_faults") == f0 + 2, "ro fault");
    CHECK((unsigned char)e.buf[8 * 4096] == 0x5a, "read-only memory untouched");
    CHECK(edu_dma(e.dev, 0x200000, 0, 64, 0, 0) == 0 && C("dma_faults") == f0 + 2, "ro readable");
    /* a plain domain refuses dirty tracking */
    struct iommu_hwpt_alloc h = { .size = sizeof(h), .dev_id = e.devid, .pt_id = e.ioas };
    CHECK(ioctl(e.fd, IOMMU_HWPT_ALLOC, &h) == 0, "plain hwpt");
    sd.hwpt_id = h.out_hwpt_id;
    CHECK(IOERR(ioctl(e.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd), EOPNOTSUPP), "plain: no dirty");
    CHECK(destroy(e.fd, h.out_hwpt_id) == 0, "destroy unused hwpt");
    /* IOMMU without dirty tracking */
    CHECK(vfio_model_set(ctl, "dirty_tracking", 0) == 0, "set");
    h.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    CHECK(IOERR(ioctl(e.fd, IOMMU_HWPT_ALLOC, &h), EOPNOTSUPP), "dirty unsupported");
    CHECK(vfio_model_set(ctl, "dirty_tracking", 1) == 0, "set");
    teardown(&e);
    QUIET();
    return 0;
}

static int t_copy_pin(void)
{
    struct env e;
    if (setup_cdev(&e, "/dev/vfio/devices/vfio0", 0))
        return -1;
    CHECK(C("pinned_pages") == 12, "pinned %lld", C("pinned_pages"));
    uint32_t ioas2;
    CHECK(ioas_alloc(e.fd, &ioas2) == 0, "alloc 2");
    int dev2 = open("/dev/vfio/devices/vfio1", O_RDWR);
    uint32_t devid2, pt = ioas2;
    CHECK(dev2 >= 0 && dbind(dev2, e.fd, &devid2) == 0 && attach(dev2, &pt) == 0, "dev2");
    struct iommu_ioas_copy cp = { .size = sizeof(cp), .dst_ioas_id = ioas2, .src_ioas_id = e.ioas,
                                  .length = 8 * 4096, .src_iova = 0x100000, .dst_iova = 0x500000,
                                  .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                                           IOMMU_IOAS_MAP_WRITEABLE };
    CHECK(ioctl(e.fd, IOMMU_IOAS_COPY, &cp) == 0, "copy: %s", strerror(errno));
    CHECK(C("pinned_pages") == 12, "copy pins once: %lld", C("pinned_pages"));
    CHECK(C("ioas_mappings") == 3, "3 mappings");
    cp.src_iova = 0x900000;
    CHECK(IOERR(ioctl(e.fd, IOMMU_IOAS_COPY, &cp), ENOENT), "copy of unmapped");
    /* the copy is the same memory: DMA through dev2 */
    CHECK(bus_master(dev2) == 0, "bm2");
    memset(e.buf, 0x11, 64);
    CHECK(edu_dma(dev2, 0x500000, 0, 64, 0, 0) == 0, "dma via copy");
    memset(e.buf, 0, 64);
    CHECK(edu_dma(dev2, 0x500000 + 4096, 0, 64, 1, 0) == 0, "dma back");
    CHECK((unsigned char)e.buf[4096] == 0x11, "copied pages shared");
    /* unmapping the source keeps the copy pinned */
    CHECK(unmap(e.fd, e.ioas, 0x100000, 8 * 4096, NULL) == 0, "unmap src");
    CHECK(C("pinned_pages") == 12, "still pinned by copy: %lld", C("pinned_pages"));
    CHECK(unmap(e.fd, ioas2, 0, UINT64_MAX, NULL) == 0 && C("pinned_pages") == 4, "unpinned");
    /* pin limit */
    CHECK(vfio_model_set(ctl, "pin_limit", 6) == 0, "set limit");
    uint64_t iova = 0x700000;
    CHECK(IOERR(map(e.fd, ioas2, e.buf, 8 * 4096, &iova, IOMMU_IOAS_MAP_READABLE |
                IOMMU_IOAS_MAP_FIXED_IOVA), ENOMEM), "over the pin limit");
    CHECK(C("pinned_pages") == 4 && C("ioas_mappings") == 1, "nothing left behind");
    CHECK(map(e.fd, ioas2, e.buf, 2 * 4096, &iova, IOMMU_IOAS_MAP_READABLE |
              IOMMU_IOAS_MAP_FIXED_IOVA) == 0, "under the limit");
    CHECK(vfio_model_set(ctl, "pin_limit", 0) == 0, "unset limit");
    close(dev2);
    teardown(&e);
    QUIET();
    return 0;
}

static int t_irqs(void)
{
    struct env e;
    if (setup_cdev(&e, "/dev/vfio/devices/vfio0", 0))
        return -1;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct { struct vfio_irq_set s; int32_t fd; } is = {
        .s = { .argsz = sizeof(is), .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
               .index = VFIO_PCI_INTX_IRQ_INDEX, .start = 0, .count = 1 }, .fd = efd };
    CHECK(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &is) == 0, "intx eventfd");
    CHECK(C("irq_eventfds") == 1, "eventfd held");
    uint64_t n = 0;
    CHECK(wr32(e.dev, 0x60, 0x8) == 0 && read(efd, &n, 8) == 8 && n == 1, "raise -> intx");
    CHECK(rd32(e.dev, 0x24) == 0x8, "irq status");
    CHECK(wr32(e.dev, 0x60, 0x10) == 0 && read(efd, &n, 8) == -1 && errno == EAGAIN, "automasked");
    struct vfio_irq_set um = { .argsz = sizeof(um), .flags = VFIO_IRQ_SET_DATA_NONE |
                               VFIO_IRQ_SET_ACTION_UNMASK, .index = VFIO_PCI_INTX_IRQ_INDEX,
                               .count = 1 };
    CHECK(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &um) == 0 && read(efd, &n, 8) == 8, "unmask re-fires");
    CHECK(wr32(e.dev, 0x64, 0x18) == 0 && ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &um) == 0 &&
              read(efd, &n, 8) == -1, "acked: quiet");
    /* MSI while INTx enabled is refused; switch over */
    int mfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    is.s.index = VFIO_PCI_MSI_IRQ_INDEX;
    is.fd = mfd;
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &is), EINVAL), "msi while intx");
    struct vfio_irq_set off = { .argsz = sizeof(off), .flags = VFIO_IRQ_SET_DATA_NONE |
                                VFIO_IRQ_SET_ACTION_TRIGGER, .index = VFIO_PCI_INTX_IRQ_INDEX };
    CHECK(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &off) == 0, "intx off");
    CHECK(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &is) == 0, "msi on");
    e.buf[0] = 1;
    CHECK(edu_dma(e.dev, 0x100000, 0, 8, 0, 1) == 0 && read(mfd, &n, 8) == 8 && n == 1,
          "dma completion irq via msi");
    CHECK(rd32(e.dev, 0x24) & 0x100, "dma irq status");
    is.s.count = 2;
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &is), EINVAL), "count beyond");
    is.s.count = 1;
    is.s.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER;
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &is), EINVAL), "two data types");
    is.s.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    is.s.argsz = sizeof(is.s);
    CHECK(IOERR(ioctl(e.dev, VFIO_DEVICE_SET_IRQS, &is), EINVAL), "argsz without data");
    /* closing the device releases the eventfds */
    teardown(&e);
    close(efd);
    close(mfd);
    QUIET();
    return 0;
}

static int t_type1(void)
{
    int c = open("/dev/vfio/vfio", O_RDWR);
    CHECK(c >= 0, "open container");
    CHECK(ioctl(c, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "api");
    CHECK(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1, "type1v2");
    CHECK(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU) == 0, "no spapr");
    CHECK(IOERR(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), EINVAL), "no group yet");
    int g = open("/dev/vfio/3", O_RDWR);
    CHECK(g >= 0, "open group");
    CHECK(IOERR(open("/dev/vfio/3", O_RDWR), EBUSY), "group opened once");
    CHECK(IOERR(open("/dev/vfio/42", O_RDWR), ENOENT), "no group 42");
    struct vfio_group_status gs = { .argsz = sizeof(gs) };
    CHECK(ioctl(g, VFIO_GROUP_GET_STATUS, &gs) == 0 && gs.flags == VFIO_GROUP_FLAGS_VIABLE, "viable");
    CHECK(IOERR(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:03.0"), EINVAL), "device before container");
    CHECK(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c) == 0, "set container");
    CHECK(IOERR(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), EINVAL), "set twice");
    CHECK(ioctl(g, VFIO_GROUP_GET_STATUS, &gs) == 0 && (gs.flags & VFIO_GROUP_FLAGS_CONTAINER_SET), "set");
    CHECK(IOERR(ioctl(c, VFIO_SET_IOMMU, 42), ENODEV), "bad type");
    CHECK(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "set iommu");
    CHECK(IOERR(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), EBUSY), "set iommu twice");
    /* GET_INFO: first learn the size, then walk the capability chain */
    struct vfio_iommu_type1_info small = { .argsz = sizeof(small) };
    CHECK(ioctl(c, VFIO_IOMMU_GET_INFO, &small) == 0 && small.argsz > sizeof(small) &&
              (small.flags & VFIO_IOMMU_INFO_CAPS) && small.cap_offset == 0, "info size");
    char *ib = calloc(1, small.argsz);
    struct vfio_iommu_type1_info *info = (void *)ib;
    info->argsz = small.argsz;
    CHECK(ioctl(c, VFIO_IOMMU_GET_INFO, info) == 0 && info->cap_offset, "info caps");
    CHECK(info->iova_pgsizes & 4096, "pgsizes");
    int seen = 0;
    for (uint32_t off = info->cap_offset; off; ) {
        struct vfio_info_cap_header *h = (void *)(ib + off);
        if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;
            CHECK(r->nr_iovas == 2 && r->iova_ranges[0].end == 0xfedfffff, "iova ranges");
            seen |= 1;
        } else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
            seen |= 2;
        } else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
            seen |= 4;
        }
        off = h->next;
    }
    free(ib);
    CHECK(seen == 7, "caps seen %d", seen);
    int dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:03.0");
    CHECK(dev >= 0, "device fd");
    CHECK(IOERR(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:04.0"), ENODEV), "not in group");
    int cdev = open("/dev/vfio/devices/vfio0", O_RDWR), ifd = open("/dev/iommu", O_RDWR);
    uint32_t devid;
    CHECK(IOERR(dbind(cdev, ifd, &devid), EBUSY), "cdev busy while opened via group");
    close(cdev);
    close(ifd);
    char *buf = pages(8);
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ |
                                          VFIO_DMA_MAP_FLAG_WRITE, .vaddr = (uintptr_t)buf,
                                          .iova = 0x100000, .size = 8 * 4096 };
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map");
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), EEXIST), "map twice");
    CHECK(C("type1_mappings") == 1 && C("type1_pinned_pages") == 8, "pinned");
    m.iova = 0xfee00000;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), EINVAL), "map into msi hole");
    m.iova = 0x300000;
    m.flags = 0;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), EINVAL), "no prot");
    m.flags = VFIO_DMA_MAP_FLAG_READ;
    m.size = 100;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), EINVAL), "unaligned size");
    m.argsz = 8;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), EINVAL), "argsz");
    /* dirty logging + DMA through the device */
    struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START };
    CHECK(ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &d) == 0, "dirty start");
    CHECK(bus_master(dev) == 0, "bm");
    strcpy(buf, "legacy type1 dma");
    CHECK(edu_dma(dev, 0x100000, 0, 32, 0, 0) == 0 && edu_dma(dev, 0x102000, 0, 32, 1, 0) == 0, "dma");
    CHECK(!strcmp(buf + 0x2000, "legacy type1 dma"), "type1 round trip");
    uint64_t bits = 0;
    struct { struct vfio_iommu_type1_dirty_bitmap d; struct vfio_iommu_type1_dirty_bitmap_get g; } gb = {
        .d = { .argsz = sizeof(gb), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP },
        .g = { .iova = 0x100000, .size = 8 * 4096,
               .bitmap = { .pgsize = 4096, .size = 8, .data = (__u64 *)&bits } } };
    CHECK(ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &gb) == 0 && bits == 4, "type1 dirty 0x%llx",
          (unsigned long long)bits);
    gb.g.size = 4096;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &gb), EINVAL), "bitmap splits a mapping");
    d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &d), EINVAL), "two flags");
    CHECK(edu_dma(dev, 0x104000, 0, 32, 1, 0) == 0, "dma 2");
    /* unmap with dirty bitmap */
    bits = 0;
    struct { struct vfio_iommu_type1_dma_unmap u; struct vfio_bitmap b; } ub = {
        .u = { .argsz = sizeof(ub), .flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, .iova = 0x100000,
               .size = 8 * 4096 },
        .b = { .pgsize = 4096, .size = 8, .data = (__u64 *)&bits } };
    struct vfio_iommu_type1_dma_unmap u1 = { .argsz = sizeof(u1), .iova = 0x100000, .size = 4096 };
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_UNMAP_DMA, &u1), EINVAL), "no split unmap");
    CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, &ub) == 0 && ub.u.size == 8 * 4096 && bits == 0x10,
          "unmap+bitmap 0x%llx", (unsigned long long)bits);
    CHECK(C("type1_pinned_pages") == 0, "unpinned");
    long long f0 = C("dma_faults");
    CHECK(edu_dma(dev, 0x100000, 0, 32, 0, 0) == 0 && C("dma_faults") == f0 + 1, "fault after unmap");
    m = (struct vfio_iommu_type1_dma_map){ .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ,
                                           .vaddr = (uintptr_t)buf, .iova = 0x100000, .size = 4096 };
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map again");
    struct vfio_iommu_type1_dma_unmap ua = { .argsz = sizeof(ua), .flags = VFIO_DMA_UNMAP_FLAG_ALL };
    CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, &ua) == 0 && ua.size == 4096, "unmap all");
    CHECK(IOERR(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EBUSY), "unset with device open");
    close(dev);
    CHECK(ioctl(g, VFIO_GROUP_UNSET_CONTAINER) == 0, "unset");
    CHECK(C("containers_iommu_set") == 0, "container lost its iommu");
    close(g);
    close(c);
    munmap(buf, 8 * 4096);
    QUIET();
    return 0;
}

static int t_fault_injection(void)
{
    int fd = open("/dev/iommu", O_RDWR);
    uint32_t a, b, c2;
    CHECK(vfio_model_fail(ctl, "IOMMU_IOAS_ALLOC", 2, "ENOMEM") == 0, "arm");
    CHECK(ioas_alloc(fd, &a) == 0, "first ok");
    CHECK(IOERR(ioas_alloc(fd, &b), ENOMEM), "second fails");
    CHECK(ioas_alloc(fd, &c2) == 0, "third ok");
    CHECK(C("ioas") == 2 && C("faults_injected") >= 1, "counts");
    CHECK(vfio_model_fail(ctl, "NO_SUCH_IOCTL", 1, "EIO") == -1, "bad name refused");
    close(fd);
    QUIET();
    return 0;
}

/* madvise(MADV_POPULATE_WRITE) is counted and can be made to fail */
static int t_populate(void)
{
    size_t len = 16 * 4096;
    char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long long calls = C("populate_calls"), bytes = C("populate_bytes");
    CHECK(buf != MAP_FAILED, "mmap");
    CHECK(madvise(buf, len, 23 /* MADV_POPULATE_WRITE */) == 0, "populate");
    CHECK(C("populate_calls") == calls + 1 && C("populate_bytes") == bytes + (long long)len,
          "counted");
    CHECK(madvise(buf, len, MADV_NORMAL) == 0 && C("populate_calls") == calls + 1,
          "other advice not counted");
    CHECK(vfio_model_fail(ctl, "MADV_POPULATE_WRITE", 2, "ENOMEM") == 0, "arm");
    CHECK(madvise(buf, 4096, 23) == 0, "first ok");
    CHECK(madvise(buf, 4096, 23) == -1 && errno == ENOMEM, "second fails");
    CHECK(madvise(buf, 4096, 23) == 0, "third ok");
    CHECK(C("populate_calls") == calls + 4 &&
          C("populate_bytes") == bytes + (long long)len + 2 * 4096, "failed one adds no bytes");
    munmap(buf, len);
    QUIET();
    return 0;
}

/* The kernel selftests' fail-nth idea: fail the Nth step (internal
 * allocation or ioctl) of a full sequence, unwind, check nothing leaks. */
static int sequence(void)
{
    int r = -1, fd = -1, dev = -1;
    char *buf = pages(4);
    uint32_t ioas, devid, pt;
    uint64_t iova = 0x100000;
    fd = open("/dev/iommu", O_RDWR);
    if (fd < 0)
        goto out;
    dev = open("/dev/vfio/devices/vfio1", O_RDWR);
    if (dev < 0)
        goto out;
    if (ioas_alloc(fd, &ioas) || dbind(dev, fd, &devid))
        goto out;
    if (map(fd, ioas, buf, 4 * 4096, &iova, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
            IOMMU_IOAS_MAP_FIXED_IOVA))
        goto out;
    struct iommu_hwpt_alloc h = { .size = sizeof(h), .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
                                  .dev_id = devid, .pt_id = ioas };
    if (ioctl(fd, IOMMU_HWPT_ALLOC, &h))
        goto out;
    pt = h.out_hwpt_id;
    if (attach(dev, &pt))
        goto out;
    pt = ioas;
    if (attach(dev, &pt))   /* replace with an automatic domain */
        goto out;
    uint64_t iova2 = 0;
    if (map(fd, ioas, buf, 4096, &iova2, IOMMU_IOAS_MAP_READABLE))
        goto out;
    struct iommu_ioas_copy cp = { .size = sizeof(cp), .dst_ioas_id = ioas, .src_ioas_id = ioas,
                                  .length = 4096, .src_iova = 0x100000, .dst_iova = 0,
                                  .flags = IOMMU_IOAS_MAP_READABLE };
    if (ioctl(fd, IOMMU_IOAS_COPY, &cp))
        goto out;
    if (unmap(fd, ioas, 0x100000, 4 * 4096, NULL) || detach(dev))
        goto out;
    r = 0;
out:
    if (dev >= 0)
        close(dev);
    if (fd >= 0)
        close(fd);
    munmap(buf, 4 * 4096);
    return r;
}

static int fail_nth(const char *what, const char *err)
{
    int n;
    for (n = 1; n < 200; n++) {
        CHECK(vfio_model_cmd(ctl, "fail-clear", why, sizeof(why)) > 0, "clear");
        CHECK(vfio_model_fail(ctl, what, n, err) == 0, "arm %s %d", what, n);
        int r = sequence();
        long long armed = C("faults_armed");
        if (quiescent()) {
            snprintf(why + strlen(why), sizeof(why) - strlen(why), " (after %s #%d)", what, n);
            return -1;
        }
        if (armed == 1) {       /* the sequence ran out before the Nth */
            CHECK(r == 0, "sequence failed without injection at n=%d", n);
            break;
        }
        CHECK(r == -1, "injected failure #%d not reported", n);
    }
    vfio_model_cmd(ctl, "fail-clear", why, sizeof(why));
    why[0] = 0;
    CHECK(n > 3 && n < 200, "sequence length %d", n);
    return 0;
}

static int t_fail_nth_alloc(void) { return fail_nth("alloc", "ENOMEM"); }
static int t_fail_nth_ioctl(void) { return fail_nth("any", "EIO"); }

static int t_dup_and_spapr_off(void)
{
    int fd = open("/dev/iommu", O_RDWR);
    uint32_t ioas;
    CHECK(ioas_alloc(fd, &ioas) == 0, "alloc");
    int d = dup(fd);
    close(fd);
    CHECK(C("iommufd_ctx") == 1, "dup keeps the ctx");
    CHECK(destroy(d, ioas) == 0, "same ctx through the dup");
    close(d);
    QUIET();
    return 0;
}

/* ------------------------------------------------- PCI hot (bus) reset */

struct hr_info {
    struct vfio_pci_hot_reset_info h;
    struct vfio_pci_dependent_device d[4];
};

static int hr_info(int dev, struct hr_info *i, uint32_t argsz)
{
    memset(i, 0, sizeof(*i));
    i->h.argsz = argsz;
    return ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, i);
}

static int hot_reset(int dev, uint32_t argsz, uint32_t flags, const int32_t *fds, uint32_t n)
{
    struct { struct vfio_pci_hot_reset h; int32_t fds[8]; } r = {
        .h = { .argsz = argsz ? argsz : (uint32_t)(sizeof(r.h) + 4 * n), .flags = flags, .count = n } };
    if (n)
        memcpy(r.fds, fds, 4 * n);
    return ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, &r);
}

#define HR_ALL (uint32_t)sizeof(struct hr_info)

/* a type1 container holding n groups g[i] (number grp[i]), and from each
 * group the device fd d[i] of bdf[i] */
struct legacy { int n, c, g[3], d[3]; };

static int legacy_open(struct legacy *l, int n, const int *grp, const char *const *bdf)
{
    l->n = n;
    l->c = open("/dev/vfio/vfio", O_RDWR);
    CHECK(l->c >= 0, "open container");
    for (int i = 0; i < n; i++) {
        char p[32];
        snprintf(p, sizeof(p), "/dev/vfio/%d", grp[i]);
        l->g[i] = open(p, O_RDWR);
        CHECK(l->g[i] >= 0 && ioctl(l->g[i], VFIO_GROUP_SET_CONTAINER, &l->c) == 0, "group %d",
              grp[i]);
    }
    CHECK(ioctl(l->c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "set iommu");
    for (int i = 0; i < n; i++) {
        l->d[i] = ioctl(l->g[i], VFIO_GROUP_GET_DEVICE_FD, bdf[i]);
        CHECK(l->d[i] >= 0, "device fd %s", bdf[i]);
    }
    return 0;
}

static void legacy_close(struct legacy *l)
{
    for (int i = 0; i < l->n; i++) {
        close(l->d[i]);
        close(l->g[i]);
    }
    close(l->c);
}

/* Run @body on the "hotreset" run's groups 7, 8, 9 and their devices vfio0
 * (on the bus), vfio2 (on the bus, no FLR), vfio3 (root bus); everything
 * is closed again, also when @body fails. */
static int with_hr_legacy(int (*body)(struct legacy *))
{
    static const int grp[] = { 7, 8, 9 };
    static const char *const bdf[] = { "0000:02:00.0", "0000:02:01.0", "0000:00:05.0" };
    struct legacy l;
    if (legacy_open(&l, 3, grp, bdf))
        return -1;
    int r = body(&l);
    legacy_close(&l);
    if (r)
        return r;
    QUIET();
    return 0;
}

/* one entry of GET_PCI_HOT_RESET_INFO: id (group or devid) and 0000:02:<devfn> */
static int dep_is(const struct vfio_pci_dependent_device *d, uint32_t id, unsigned devfn)
{
    return d->devid == id && d->segment == 0 && d->bus == 2 && d->devfn == devfn;
}

/* Without VFIO_MODEL_RESET_BUS no device can be bus-reset. */
static int t_hot_reset_none(void)
{
    int fd = open("/dev/iommu", O_RDWR), v0 = open("/dev/vfio/devices/vfio0", O_RDWR);
    uint32_t id;
    CHECK(fd >= 0 && v0 >= 0 && dbind(v0, fd, &id) == 0, "bind");
    struct hr_info i;
    CHECK(IOERR(hr_info(v0, &i, 4), EINVAL), "argsz below count");
    CHECK(IOERR(hr_info(v0, &i, HR_ALL), ENODEV), "cdev info: root bus");
    CHECK(IOERR(hot_reset(v0, 0, 0, NULL, 0), ENODEV), "cdev reset: root bus");
    CHECK(IOERR(hot_reset(v0, 0, 1, NULL, 0), EINVAL), "unknown flag");
    struct vfio_device_info di = { .argsz = sizeof(di) };
    CHECK(ioctl(v0, VFIO_DEVICE_GET_INFO, &di) == 0 && (di.flags & VFIO_DEVICE_FLAGS_RESET),
          "function reset offered");
    close(v0);
    close(fd);
    struct legacy l;
    static const int grp[] = { 3 };
    static const char *const bdf[] = { "0000:00:03.0" };
    if (legacy_open(&l, 1, grp, bdf))
        return -1;
    CHECK(IOERR(hr_info(l.d[0], &i, HR_ALL), ENODEV), "group info: root bus");
    CHECK(IOERR(hot_reset(l.d[0], 0, 0, l.g, 1), ENODEV), "group reset: root bus");
    CHECK(IOERR(hot_reset(l.d[0], 0, 0, NULL, 0), EINVAL), "group caller, empty array");
    CHECK(C("bus_resets") == 0, "bus_resets %lld", C("bus_resets"));
    legacy_close(&l);
    QUIET();
    return 0;
}

/* The "hotreset" run: vfio0 02:00.0 and vfio1 02:00.1 in group 7, vfio2
 * 02:01.0 in group 8 (no FLR) on one resettable bus; vfio3 00:05.0 in
 * group 9 on the root bus (see model/check). */

static int hr_info_group(struct legacy *l)
{
    int d0 = l->d[0], d3 = l->d[2];
    struct hr_info i;
    CHECK(IOERR(hr_info(d0, &i, 8), EINVAL), "argsz below count");
    CHECK(IOERR(hr_info(d0, &i, sizeof(i.h)), ENOSPC) && i.h.count == 3 && i.h.flags == 0,
          "no room: count %u flags %u", i.h.count, i.h.flags);
    CHECK(IOERR(hr_info(d0, &i, sizeof(i.h) + 2 * sizeof(i.d[0])), ENOSPC) && i.h.count == 3,
          "room for 2 of 3");
    CHECK(hr_info(d0, &i, sizeof(i.h) + 3 * sizeof(i.d[0])) == 0 && i.h.count == 3 &&
              i.h.flags == 0, "info: count %u flags %u", i.h.count, i.h.flags);
    CHECK(dep_is(&i.d[0], 7, 0x00) && dep_is(&i.d[1], 7, 0x01) && dep_is(&i.d[2], 8, 0x08),
          "entries: group %u %u %u devfn %x %x %x", i.d[0].group_id, i.d[1].group_id,
          i.d[2].group_id, i.d[0].devfn, i.d[1].devfn, i.d[2].devfn);
    CHECK(IOERR(hr_info(d3, &i, HR_ALL), ENODEV), "root bus device");
    CHECK(vfio_model_fail(ctl, "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", 1, "ENOMEM") == 0, "arm");
    CHECK(IOERR(hr_info(d0, &i, HR_ALL), ENOMEM) && i.h.count == 0, "injected");
    return 0;
}

static int t_hr_info_group(void) { return with_hr_legacy(hr_info_group); }

static int hr_reset_group(struct legacy *l)
{
    int c = l->c, *g = l->g, d0 = l->d[0], d2 = l->d[1], d3 = l->d[2];
    CHECK(wr32(d0, 8, 5) == 0 && bus_master(d0) == 0, "device state");
    long long br = C("bus_resets"), dr = C("device_resets");
    int32_t fds[4] = { g[0], g[1], g[2], g[0] };
    CHECK(IOERR(hot_reset(d0, 0, 0, NULL, 0), EINVAL), "group caller, empty array");
    CHECK(IOERR(hot_reset(d0, 0, 1, fds, 2), EINVAL), "unknown flag");
    CHECK(IOERR(hot_reset(d0, 8, 0, fds, 2), EINVAL), "argsz below count");
    CHECK(IOERR(hot_reset(d0, 0, 0, fds, 4), EINVAL), "more fds than devices");
    CHECK(IOERR(hot_reset(d0, 0, 0, fds, 1), EINVAL), "group 8 not proven");
    int32_t bad[2] = { g[0], 1000 };
    CHECK(IOERR(hot_reset(d0, 0, 0, bad, 2), EBADF), "closed fd");
    bad[1] = -1;
    CHECK(IOERR(hot_reset(d0, 0, 0, bad, 2), EBADF), "negative fd");
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    bad[1] = pfd[0];
    CHECK(IOERR(hot_reset(d0, 0, 0, bad, 2), EINVAL), "a pipe is no group");
    close(pfd[0]);
    close(pfd[1]);
    bad[1] = c;
    CHECK(IOERR(hot_reset(d0, 0, 0, bad, 2), EINVAL), "a container is no group");
    bad[1] = d2;
    CHECK(IOERR(hot_reset(d0, 0, 0, bad, 2), EINVAL), "a device fd is no group");
    CHECK(vfio_model_fail(ctl, "VFIO_DEVICE_PCI_HOT_RESET", 1, "EIO") == 0, "arm");
    CHECK(IOERR(hot_reset(d0, 0, 0, fds, 2), EIO), "injected");
    CHECK(C("bus_resets") == br && C("device_resets") == dr && rd32(d0, 8) == 120,
          "refused resets reset nothing");
    CHECK(hot_reset(d0, 0, 0, fds, 2) == 0, "groups 7 and 8");
    CHECK(C("bus_resets") == br + 1 && C("device_resets") == dr + 3, "one bus, three devices: %lld %lld",
          C("bus_resets") - br, C("device_resets") - dr);
    uint16_t cmd = 0xffff;
    CHECK(rd32(d0, 8) == 0 && pread(d0, &cmd, 2, CFG_OFF + 4) == 2 && cmd == 0, "device 0 reset");
    int32_t more[3] = { g[2], g[1], g[0] };
    CHECK(hot_reset(d0, 0, 0, more, 3) == 0, "any order, an extra group");
    CHECK(hot_reset(d2, 0, 0, fds, 2) == 0, "from the device without FLR");
    CHECK(C("bus_resets") == br + 3 && C("device_resets") == dr + 9, "counts");
    CHECK(IOERR(hot_reset(d3, 0, 0, &g[2], 1), ENODEV), "root bus device");
    return 0;
}

static int t_hr_reset_group(void) { return with_hr_legacy(hr_reset_group); }

/* Run @body with two iommufd contexts and the cdevs vfio0..vfio3, none
 * bound; everything is closed again, also when @body fails. */
struct cdevs { int a, b, v[4]; };

static int open_cdev(int i)
{
    char p[48];
    snprintf(p, sizeof(p), "/dev/vfio/devices/vfio%d", i);
    return open(p, O_RDWR);
}

static int with_hr_cdevs(int (*body)(struct cdevs *))
{
    struct cdevs e;
    e.a = open("/dev/iommu", O_RDWR);
    e.b = open("/dev/iommu", O_RDWR);
    int r = e.a >= 0 && e.b >= 0 ? 0 : -1;
    for (int i = 0; i < 4; i++) {
        e.v[i] = open_cdev(i);
        r |= e.v[i] >= 0 ? 0 : -1;
    }
    if (r)
        snprintf(why, sizeof(why), "open: %s", strerror(errno));
    else
        r = body(&e);
    for (int i = 0; i < 4; i++)
        close(e.v[i]);
    close(e.a);
    close(e.b);
    if (r)
        return r;
    QUIET();
    return 0;
}

/* close and open again: unbound */
static int reopen_cdev(struct cdevs *e, int i)
{
    close(e->v[i]);
    e->v[i] = open_cdev(i);
    return e->v[i] >= 0 ? 0 : -1;
}

static int hr_info_cdev(struct cdevs *e)
{
    int v0 = e->v[0], v1 = e->v[1], v2 = e->v[2];
    uint32_t id0, id1, id2;
    struct hr_info i;
    CHECK(IOERR(hr_info(v0, &i, HR_ALL), EINVAL), "cdev before bind");
    CHECK(dbind(v0, e->a, &id0) == 0, "bind vfio0");
    CHECK(IOERR(hr_info(v0, &i, sizeof(i.h)), ENOSPC) && i.h.count == 3 && i.h.flags == 0,
          "no room: count %u flags %u", i.h.count, i.h.flags);
    const uint32_t dev_id = VFIO_PCI_HOT_RESET_FLAG_DEV_ID;
    const uint32_t owned = VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
    const uint32_t not_owned = (uint32_t)VFIO_PCI_DEVID_NOT_OWNED;
    CHECK(hr_info(v0, &i, HR_ALL) == 0 && i.h.count == 3 && i.h.flags == dev_id, "flags %u",
          i.h.flags);
    CHECK(dep_is(&i.d[0], id0, 0x00) && dep_is(&i.d[1], VFIO_PCI_DEVID_OWNED, 0x01) &&
              dep_is(&i.d[2], not_owned, 0x08),
          "own id, same group owned, group 8 not: %u %u %u", i.d[0].devid, i.d[1].devid, i.d[2].devid);
    CHECK(dbind(v2, e->a, &id2) == 0, "bind vfio2 in the same ctx");
    CHECK(hr_info(v0, &i, HR_ALL) == 0 && i.h.flags == owned && i.d[0].devid == id0 &&
              i.d[1].devid == VFIO_PCI_DEVID_OWNED && i.d[2].devid == id2,
          "all owned: flags %u ids %u %u %u", i.h.flags, i.d[0].devid, i.d[1].devid, i.d[2].devid);
    CHECK(dbind(v1, e->a, &id1) == 0, "bind vfio1");
    CHECK(hr_info(v2, &i, HR_ALL) == 0 && i.h.flags == owned && i.d[0].devid == id0 &&
              i.d[1].devid == id1 && i.d[2].devid == id2, "from vfio2: ids %u %u %u",
          i.d[0].devid, i.d[1].devid, i.d[2].devid);
    CHECK(reopen_cdev(e, 2) == 0 && dbind(e->v[2], e->b, &id2) == 0, "bind vfio2 in another ctx");
    CHECK(hr_info(v0, &i, HR_ALL) == 0 && i.h.flags == dev_id && i.d[2].devid == not_owned,
          "another ctx: flags %u devid %u", i.h.flags, i.d[2].devid);
    CHECK(hr_info(e->v[2], &i, HR_ALL) == 0 && i.h.flags == dev_id && i.d[0].devid == not_owned &&
              i.d[1].devid == not_owned && i.d[2].devid == id2, "from ctx b: %u %u %u",
          i.d[0].devid, i.d[1].devid, i.d[2].devid);
    return 0;
}

static int t_hr_info_cdev(void) { return with_hr_cdevs(hr_info_cdev); }

static int hr_reset_cdev(struct cdevs *e)
{
    int v0 = e->v[0], v3 = e->v[3];
    uint32_t id0, id2, id3;
    CHECK(dbind(v0, e->a, &id0) == 0 && dbind(e->v[2], e->b, &id2) == 0 &&
              dbind(v3, e->a, &id3) == 0, "bind");
    CHECK(wr32(v0, 8, 5) == 0, "device state");
    long long br = C("bus_resets"), dr = C("device_resets");
    CHECK(IOERR(hot_reset(v0, 0, 0, NULL, 0), EPERM), "vfio2 bound in another ctx");
    int g7 = open("/dev/vfio/7", O_RDWR);
    CHECK(g7 >= 0, "group 7");
    int r = hot_reset(v0, 0, 0, &g7, 1), err = errno;
    close(g7);
    errno = err;
    CHECK(r == -1 && errno == EINVAL, "cdev caller with group fds");
    CHECK(IOERR(hot_reset(v0, 0, 1, NULL, 0), EINVAL), "unknown flag");
    CHECK(IOERR(hot_reset(v0, 8, 0, NULL, 0), EINVAL), "argsz below count");
    CHECK(reopen_cdev(e, 2) == 0, "unbind vfio2");
    CHECK(IOERR(hot_reset(v0, 0, 0, NULL, 0), EPERM), "vfio2 not bound, group 8 not in ctx");
    CHECK(IOERR(hot_reset(v3, 0, 0, NULL, 0), ENODEV), "root bus device");
    CHECK(C("bus_resets") == br && C("device_resets") == dr && rd32(v0, 8) == 120,
          "refused resets reset nothing");
    CHECK(dbind(e->v[2], e->a, &id2) == 0, "bind vfio2 in the caller's ctx");
    CHECK(hot_reset(v0, 0, 0, NULL, 0) == 0, "all owned (vfio1 through group 7)");
    CHECK(C("bus_resets") == br + 1 && C("device_resets") == dr + 3 && rd32(v0, 8) == 0,
          "one bus, three devices: %lld %lld", C("bus_resets") - br, C("device_resets") - dr);
    CHECK(hot_reset(e->v[2], 0, 0, NULL, 0) == 0 && C("bus_resets") == br + 2,
          "from the device without FLR");
    return 0;
}

static int t_hr_reset_cdev(void) { return with_hr_cdevs(hr_reset_cdev); }

static int hr_no_flr(struct cdevs *e)
{
    int v0 = e->v[0], v2 = e->v[2];
    uint32_t id0, id2;
    CHECK(dbind(v0, e->a, &id0) == 0 && dbind(v2, e->a, &id2) == 0, "bind");
    struct vfio_device_info di = { .argsz = sizeof(di) };
    CHECK(ioctl(v0, VFIO_DEVICE_GET_INFO, &di) == 0 &&
              di.flags == (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET), "vfio0 flags %u", di.flags);
    CHECK(ioctl(v2, VFIO_DEVICE_GET_INFO, &di) == 0 && di.flags == VFIO_DEVICE_FLAGS_PCI,
          "vfio2 flags %u", di.flags);
    long long dr = C("device_resets");
    CHECK(IOERR(ioctl(v2, VFIO_DEVICE_RESET), EINVAL) && C("device_resets") == dr, "no FLR");
    CHECK(ioctl(v0, VFIO_DEVICE_RESET) == 0 && C("device_resets") == dr + 1, "FLR");
    return 0;
}

static int t_hr_no_flr(void) { return with_hr_cdevs(hr_no_flr); }

/* sPAPR TCE v2 container (run with VFIO_MODEL_SPAPR=1) */
static int t_spapr(void)
{
    int c = open("/dev/vfio/vfio", O_RDWR), g = open("/dev/vfio/3", O_RDWR);
    CHECK(c >= 0 && g >= 0, "open");
    CHECK(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 0 &&
              ioctl(c, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU) == 1, "extensions");
    CHECK(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c) == 0, "set container");
    CHECK(IOERR(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), ENODEV), "no type1 here");
    CHECK(ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU) == 0, "set spapr");
    struct vfio_iommu_spapr_tce_info ti = { .argsz = sizeof(ti) };
    CHECK(ioctl(c, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &ti) == 0 && ti.dma32_window_size == 1u << 30 &&
              (ti.flags & VFIO_IOMMU_SPAPR_INFO_DDW) && (ti.ddw.pgsizes & 4096), "tce info");
    CHECK(C("spapr_windows") == 1, "default window");
    struct vfio_iommu_spapr_tce_remove rm = { .argsz = sizeof(rm), .start_addr = 0 };
    CHECK(ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, &rm) == 0 && C("spapr_windows") == 0, "remove default");
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_SPAPR_TCE_REMOVE, &rm), EINVAL), "remove twice");
    struct vfio_iommu_spapr_tce_create cr = { .argsz = sizeof(cr), .page_shift = 16,
                                              .window_size = 1ULL << 32, .levels = 1 };
    CHECK(ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, &cr) == 0 && cr.start_addr == 0, "create window");
    cr.page_shift = 13;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_SPAPR_TCE_CREATE, &cr), EINVAL), "bad page shift");
    char *buf = pages(16);
    struct vfio_iommu_spapr_register_memory rg = { .argsz = sizeof(rg), .vaddr = (uintptr_t)buf,
                                                   .size = 16 * 4096 };
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ |
                                          VFIO_DMA_MAP_FLAG_WRITE, .vaddr = (uintptr_t)buf,
                                          .iova = 0x10000, .size = 0x10000 };
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), EINVAL), "map without preregistration");
    CHECK(ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &rg) == 0 && C("type1_pinned_pages") == 16,
          "preregister pins");
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &rg), EBUSY), "register twice");
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0 && C("type1_pinned_pages") == 16, "map in window");
    m.iova = 1ULL << 33;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), ENXIO), "map outside windows");
    int dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:03.0");
    CHECK(dev >= 0 && bus_master(dev) == 0, "device");
    void *bar = bar2_mmap(dev, BAR2_SIZE, BAR2_OFF, MAP_SHARED);
    struct vfio_iommu_spapr_register_memory rb = { .argsz = sizeof(rb), .vaddr = (uintptr_t)bar,
                                                   .size = BAR2_SIZE };
    CHECK(bar != MAP_FAILED && IOERR(ioctl(c, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &rb), EFAULT) &&
              C("type1_pinned_pages") == 16, "a BAR cannot be preregistered (pinned)");
    munmap(bar, BAR2_SIZE);
    strcpy(buf, "spapr tce dma");
    CHECK(edu_dma(dev, 0x10000, 0, 16, 0, 0) == 0 && edu_dma(dev, 0x18000, 0, 16, 1, 0) == 0 &&
              !strcmp(buf + 0x8000, "spapr tce dma"), "dma through the TCE window");
    struct vfio_eeh_pe_op eo = { .argsz = sizeof(eo), .op = VFIO_EEH_PE_GET_STATE };
    CHECK(ioctl(c, VFIO_EEH_PE_OP, &eo) == VFIO_EEH_PE_STATE_NORMAL, "eeh state");
    struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = 0x10000, .size = 0x10000 };
    CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, &u) == 0 && u.size == 0x10000, "unmap");
    CHECK(ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, &rg) == 0 && C("type1_pinned_pages") == 0,
          "unregister");
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, &rg), ENOENT), "unregister twice");
    close(dev);
    close(g);
    close(c);
    munmap(buf, 16 * 4096);
    QUIET();
    return 0;
}

/* ------------------------------------------- BAR2: mmap-able plain memory */

/* /dev/iommu and vfio<i>'s cdev bound to it: 0, or -1 */
static int open_bound(int i, int *fd, int *dev, uint32_t *devid)
{
    char p[64];
    snprintf(p, sizeof(p), "/dev/vfio/devices/vfio%d", i);
    *fd = open("/dev/iommu", O_RDWR);
    *dev = open(p, O_RDWR);
    return *fd >= 0 && *dev >= 0 && dbind(*dev, *fd, devid) == 0 ? 0 : -1;
}

static int t_bar2(void)
{
    int fd = open("/dev/iommu", O_RDWR), dev = open("/dev/vfio/devices/vfio0", O_RDWR);
    uint32_t devid;
    CHECK(fd >= 0 && dev >= 0, "open");
    NOMAP(dev, BAR2_SIZE, BAR2_OFF, MAP_SHARED, "mmap before bind");
    CHECK(dbind(dev, fd, &devid) == 0, "bind");
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR2_REGION_INDEX };
    CHECK(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri) == 0 && ri.size == BAR2_SIZE &&
              ri.offset == BAR2_OFF && ri.flags == (VFIO_REGION_INFO_FLAG_READ |
              VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP), "bar2 info");
    ri.index = VFIO_PCI_BAR3_REGION_INDEX;
    CHECK(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri) == 0 && ri.size == 0 && ri.flags == 0,
          "bar3 absent");
    /* sized through config space like PCI: 32-bit prefetchable memory */
    uint32_t ones = ~0u, addr = 0xfebf0000, zero = 0;
    CHECK(cfg_bar2(dev, NULL) == 0x8, "BAR2 type 0x%x", cfg_bar2(dev, NULL));
    CHECK(cfg_bar2(dev, &ones) == 0xffff0008, "size mask");
    CHECK(cfg_bar2(dev, &addr) == 0xfebf0008, "programmed address kept");
    CHECK(cfg_bar2(dev, &zero) == 0x8, "cleared");
    long long m0 = C("region_mmaps");
    uint8_t *b = bar2_mmap(dev, BAR2_SIZE, BAR2_OFF, MAP_SHARED);
    CHECK(b != MAP_FAILED && C("region_mmaps") == m0 + 1, "mmap of BAR2");
    NOMAP(dev, 4096, BAR0_OFF, MAP_SHARED, "BAR0 is not mmap-able");
    NOMAP(dev, 256, CFG_OFF, MAP_SHARED, "config space");
    NOMAP(dev, 4096, (uint64_t)VFIO_PCI_BAR3_REGION_INDEX << 40, MAP_SHARED, "absent BAR3");
    NOMAP(dev, 2 * BAR2_SIZE, BAR2_OFF, MAP_SHARED, "larger than BAR2");
    NOMAP(dev, 4096, BAR2_OFF + BAR2_SIZE, MAP_SHARED, "past BAR2");
    NOMAP(dev, BAR2_SIZE, BAR2_OFF + 4096, MAP_SHARED, "across BAR2's end");
    NOMAP(dev, BAR2_SIZE, BAR2_OFF, MAP_PRIVATE, "a private mapping");
    NOMAP(fd, 4096, 0, MAP_SHARED, "/dev/iommu");
    CHECK(C("region_mmaps") == m0 + 1, "refusals not counted");
    /* a page-aligned piece inside the region maps too (vfio_pci_core_mmap) */
    uint8_t *piece = bar2_mmap(dev, 4096, BAR2_OFF + 4096, MAP_SHARED);
    CHECK(piece != MAP_FAILED, "a page of BAR2");
    /* plain memory, the same through mmap and pread/pwrite */
    memcpy(b + 4096 + 16, "through mmap", 13);
    char s[16] = "";
    CHECK(pread(dev, s, 13, BAR2_OFF + 4096 + 16) == 13 && !strcmp(s, "through mmap"),
          "pread sees the mmap write");
    CHECK(!memcmp(piece + 16, "through mmap", 13), "the other mapping too");
    CHECK(pwrite(dev, "through pwrite", 15, BAR2_OFF + BAR2_SIZE - 15) == 15 &&
              !memcmp(b + BAR2_SIZE - 15, "through pwrite", 15), "mmap sees the pwrite");
    uint64_t q = 0;
    CHECK(pread(dev, &q, 8, BAR2_OFF + BAR2_SIZE - 4) == 4, "short read at the end");
    CHECK(IOERR(pread(dev, &q, 8, BAR2_OFF + BAR2_SIZE), EINVAL), "read past the end");
    munmap(piece, 4096);
    /* iommufd (Linux 6.12) cannot pin a BAR (VM_PFNMAP): EFAULT */
    uint32_t ioas, pt;
    CHECK(ioas_alloc(fd, &ioas) == 0, "alloc");
    uint64_t iova = 0x400000;
    CHECK(map(fd, ioas, b, BAR2_SIZE, &iova, RW_FIXED) == 0 && C("pinned_pages") == 0,
          "no domain: mapped, nothing pinned");
    pt = ioas;
    CHECK(IOERR(attach(dev, &pt), EFAULT), "the first domain cannot pin it");
    CHECK(C("hwpt") == 0 && C("devices_attached") == 0 && C("ioas_mappings") == 1, "unchanged");
    CHECK(unmap(fd, ioas, 0, UINT64_MAX, NULL) == 0, "unmap");
    pt = ioas;
    CHECK(attach(dev, &pt) == 0, "attach");
    iova = 0x400000;
    CHECK(IOERR(map(fd, ioas, b, BAR2_SIZE, &iova, RW_FIXED), EFAULT) &&
              C("ioas_mappings") == 0 && C("pinned_pages") == 0, "IOAS_MAP of a BAR: EFAULT");
    munmap(b, BAR2_SIZE);
    close(dev);
    close(fd);
    QUIET();
    /* the memory is the device's: a new open maps the same bytes */
    CHECK(open_bound(0, &fd, &dev, &devid) == 0, "reopen");
    b = bar2_mmap(dev, BAR2_SIZE, BAR2_OFF, MAP_SHARED);
    CHECK(b != MAP_FAILED && !memcmp(b + 4096 + 16, "through mmap", 13), "contents kept");
    munmap(b, BAR2_SIZE);
    close(dev);
    close(fd);
    QUIET();
    return 0;
}

/* type1 maps a BAR mmap (peer-to-peer) by pfn: mapped, not pinned */
static int t_bar2_type1(void)
{
    struct legacy l;
    static const int grp = 3;
    static const char *const bdf = "0000:00:03.0";
    if (legacy_open(&l, 1, &grp, &bdf))
        return -1;
    int c = l.c, g = l.g[0], dev = l.d[0];
    uint8_t *b = bar2_mmap(dev, BAR2_SIZE, BAR2_OFF, MAP_SHARED);
    CHECK(b != MAP_FAILED, "mmap through the group's device fd");
    NOMAP(dev, 4096, BAR0_OFF, MAP_SHARED, "BAR0");
    NOMAP(g, 4096, 0, MAP_SHARED, "group fd");
    char *ram = pages(8);
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ |
                                          VFIO_DMA_MAP_FLAG_WRITE, .vaddr = (uintptr_t)ram,
                                          .iova = 0x100000, .size = 8 * 4096 };
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map RAM");
    m.vaddr = (uintptr_t)b;
    m.iova = 0x400000;
    m.size = BAR2_SIZE;
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map the BAR");
    CHECK(C("type1_mappings") == 2 && C("type1_pinned_pages") == 8 &&
              C("type1_mapped_bytes") == 8 * 4096 + BAR2_SIZE, "BAR pages mapped, not pinned: %lld",
          C("type1_pinned_pages"));
    /* the device's DMA engine reaches the BAR through the IOVA */
    long long f0 = C("dma_faults");
    CHECK(bus_master(dev) == 0, "bm");
    strcpy(ram, "p2p into a BAR");
    CHECK(edu_dma(dev, 0x100000, 0, 16, 0, 0) == 0 && edu_dma(dev, 0x402000, 0, 16, 1, 0) == 0,
          "dma RAM -> device -> BAR2");
    char s[16] = "";
    CHECK(!strcmp((char *)b + 0x2000, "p2p into a BAR") &&
              pread(dev, s, 15, BAR2_OFF + 0x2000) == 15 && !strcmp(s, "p2p into a BAR"),
          "written into BAR2");
    memcpy(b + 0x3000, "out of a BAR", 13);
    CHECK(edu_dma(dev, 0x403000, 0x100, 13, 0, 0) == 0 && edu_dma(dev, 0x101000, 0x100, 13, 1, 0) == 0 &&
              !strcmp(ram + 0x1000, "out of a BAR"), "dma BAR2 -> device -> RAM");
    CHECK(C("dma_faults") == f0, "no fault");
    /* nor counted against the pin limit */
    struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = 0x400000, .size = BAR2_SIZE };
    CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, &u) == 0 && C("type1_pinned_pages") == 8, "unmap the BAR");
    CHECK(vfio_model_set(ctl, "pin_limit", 8) == 0, "limit");
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "BAR at the pin limit");
    CHECK(vfio_model_set(ctl, "pin_limit", 0) == 0, "no limit");
    struct vfio_iommu_type1_dma_unmap ua = { .argsz = sizeof(ua), .flags = VFIO_DMA_UNMAP_FLAG_ALL };
    CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, &ua) == 0 && C("type1_pinned_pages") == 0, "unmap all");
    munmap(b, BAR2_SIZE);
    legacy_close(&l);
    munmap(ram, 8 * 4096);
    QUIET();
    return 0;
}

/* VFIO_MODEL_BAR2=0: BAR2 is absent like the other BARs */
static int t_no_bar2(void)
{
    int fd, dev;
    uint32_t devid, ones = ~0u;
    CHECK(open_bound(0, &fd, &dev, &devid) == 0, "bind");
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR2_REGION_INDEX };
    CHECK(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri) == 0 && ri.size == 0 && ri.flags == 0,
          "bar2 size %llu", (unsigned long long)ri.size);
    CHECK(cfg_bar2(dev, NULL) == 0 && cfg_bar2(dev, &ones) == 0, "no BAR2 in config space");
    NOMAP(dev, BAR2_SIZE, BAR2_OFF, MAP_SHARED, "nothing to mmap");
    uint32_t v;
    CHECK(IOERR(pread(dev, &v, 4, BAR2_OFF), EINVAL), "nothing to read");
    close(dev);
    close(fd);
    QUIET();
    return 0;
}

/* ------------------------- per-device reserved ranges (VFIO_MODEL_DEVICE_RESV) */

/* check.sh runs "resv" with
 *   VFIO_MODEL_DEVICE_RESV=1:0x8000000-0x800ffff,1:0x20000000-0x2fffffff
 * (and two malformed entries that must be ignored) and VFIO_MODEL_IOMMUFD_P2P=1 */
#define RESV_START 0x8000000ULL
#define RESV_LAST 0x800ffffULL
#define RESV2_START 0x20000000ULL
#define RESV2_LAST 0x2fffffffULL
#define APERTURE_LAST ((1ULL << 48) - 1)

/* IOMMU_IOAS_IOVA_RANGES into r[max]: the count, or -1 */
static int ioas_ranges(int fd, uint32_t ioas, struct iommu_iova_range *r, uint32_t max)
{
    struct iommu_ioas_iova_ranges q = { .size = sizeof(q), .ioas_id = ioas, .num_iovas = max,
                                        .allowed_iovas = (uintptr_t)r };
    return ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q) ? -1 : (int)q.num_iovas;
}

/* the IOVA ranges of type1's capability chain into r[max]: the count, or -1 */
static int type1_ranges(int c, struct vfio_iova_range *r, uint32_t max)
{
    char ib[1024] = { 0 };
    struct vfio_iommu_type1_info *info = (void *)ib;
    info->argsz = sizeof(ib);
    if (ioctl(c, VFIO_IOMMU_GET_INFO, info) || !info->cap_offset)
        return -1;
    for (uint32_t off = info->cap_offset; off && off < sizeof(ib);) {
        struct vfio_info_cap_header *h = (void *)(ib + off);
        if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            struct vfio_iommu_type1_info_cap_iova_range *ir = (void *)h;
            for (uint32_t i = 0; i < ir->nr_iovas && i < max; i++)
                r[i] = ir->iova_ranges[i];
            return (int)ir->nr_iovas;
        }
        off = h->next;
    }
    return -1;
}

static int is_range(const struct iommu_iova_range *r, uint64_t start, uint64_t last)
{
    return r->start == start && r->last == last;
}

static int t_resv_iommufd(void)
{
    int fd, d0, d1 = open("/dev/vfio/devices/vfio1", O_RDWR);
    uint32_t id0, id1, ioas1, ioas2, hwpt1, pt;
    CHECK(open_bound(0, &fd, &d0, &id0) == 0 && d1 >= 0 && dbind(d1, fd, &id1) == 0, "bind");
    CHECK(ioas_alloc(fd, &ioas1) == 0 && ioas_alloc(fd, &ioas2) == 0, "alloc");
    pt = ioas1;
    CHECK(attach(d0, &pt) == 0, "vfio0 joins IOAS 1");
    hwpt1 = pt;
    char *ram = pages(8);
    uint64_t iova = 0x100000;
    CHECK(map(fd, ioas1, ram, 8 * 4096, &iova, RW_FIXED) == 0, "map RAM");
    /* peer-to-peer: vfio0's BAR2 over vfio1's reserved range */
    uint8_t *bar = bar2_mmap(d0, BAR2_SIZE, BAR2_OFF, MAP_SHARED);
    CHECK(bar != MAP_FAILED, "mmap");
    iova = RESV_START;
    CHECK(map(fd, ioas1, bar, BAR2_SIZE, &iova, RW_FIXED) == 0,
          "IOAS_MAP of the BAR mmap (VFIO_MODEL_IOMMUFD_P2P=1)");
    CHECK(C("ioas_mappings") == 2 && C("pinned_pages") == 8, "BAR pages not pinned: %lld",
          C("pinned_pages"));
    /* and guest RAM inside vfio1's second range */
    iova = RESV2_START + 0x10000;
    CHECK(map(fd, ioas1, ram + 7 * 4096, 4096, &iova, RW_FIXED) == 0, "map RAM");
    /* vfio1 cannot join IOAS 1, whatever the way; nothing changes */
    pt = ioas1;
    CHECK(IOERR(attach(d1, &pt), EADDRINUSE), "attach vfio1 to IOAS 1");
    pt = hwpt1;
    CHECK(IOERR(attach(d1, &pt), EADDRINUSE), "attach vfio1 to IOAS 1's HWPT");
    struct iommu_hwpt_alloc h = { .size = sizeof(h), .dev_id = id1, .pt_id = ioas1 };
    CHECK(ioctl(fd, IOMMU_HWPT_ALLOC, &h) == 0, "HWPT_ALLOC for vfio1 (does not attach)");
    pt = h.out_hwpt_id;
    CHECK(IOERR(attach(d1, &pt), EADDRINUSE), "attach vfio1 to its HWPT on IOAS 1");
    CHECK(destroy(fd, h.out_hwpt_id) == 0, "destroy it");
    CHECK(C("hwpt") == 1 && C("devices_attached") == 1 && C("ioas_mappings") == 3 &&
              C("pinned_pages") == 9, "nothing changed");
    /* RAM alone is in the way as well */
    CHECK(unmap(fd, ioas1, RESV_START, BAR2_SIZE, NULL) == 0, "unmap the BAR");
    pt = ioas1;
    CHECK(IOERR(attach(d1, &pt), EADDRINUSE), "RAM in the way");
    CHECK(unmap(fd, ioas1, RESV2_START + 0x10000, 4096, NULL) == 0, "unmap that RAM");
    iova = RESV_START;
    CHECK(map(fd, ioas1, bar, BAR2_SIZE, &iova, RW_FIXED) == 0, "the BAR again");
    pt = ioas1;
    CHECK(IOERR(attach(d1, &pt), EADDRINUSE), "BAR in the way");
    CHECK(C("ioas_mappings") == 2 && C("pinned_pages") == 8 && C("hwpt") == 1, "unchanged");
    struct iommu_iova_range r[8];
    CHECK(ioas_ranges(fd, ioas1, r, 8) == 2 && is_range(&r[0], 0, 0xfedfffff), "IOAS 1 ranges");
    /* a fresh IOAS takes vfio1: its ranges leave vfio1's out */
    pt = ioas2;
    CHECK(attach(d1, &pt) == 0, "vfio1 joins IOAS 2");
    CHECK(ioas_ranges(fd, ioas2, r, 8) == 4 && is_range(&r[0], 0, RESV_START - 1) &&
              is_range(&r[1], RESV_LAST + 1, RESV2_START - 1) &&
              is_range(&r[2], RESV2_LAST + 1, 0xfedfffff) &&
              is_range(&r[3], 0xfef00000, APERTURE_LAST), "IOAS 2 ranges");
    iova = RESV_START;
    CHECK(IOERR(map(fd, ioas2, ram, 4096, &iova, RW_FIXED), EINVAL), "map into the range");
    iova = RESV_LAST + 1 - 4096;
    CHECK(IOERR(map(fd, ioas2, ram, 2 * 4096, &iova, RW_FIXED), EINVAL), "map across its end");
    struct iommu_iova_range al = { RESV_LAST - 0xfff, RESV_LAST + 0x1000 };
    struct iommu_ioas_allow_iovas a = { .size = sizeof(a), .ioas_id = ioas2, .num_iovas = 1,
                                        .allowed_iovas = (uintptr_t)&al };
    CHECK(IOERR(ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &a), EADDRINUSE), "allow the range");
    /* guest RAM copied from IOAS 1: pinned once */
    struct iommu_ioas_copy cp = { .size = sizeof(cp), .dst_ioas_id = ioas2, .src_ioas_id = ioas1,
                                  .length = 8 * 4096, .src_iova = 0x100000, .dst_iova = 0x100000,
                                  .flags = RW_FIXED };
    CHECK(ioctl(fd, IOMMU_IOAS_COPY, &cp) == 0, "copy RAM");
    CHECK(C("ioas_mappings") == 3 && C("pinned_pages") == 8, "pinned once: %lld",
          C("pinned_pages"));
    cp.src_iova = RESV_START;
    cp.dst_iova = RESV_START;
    cp.length = BAR2_SIZE;
    CHECK(IOERR(ioctl(fd, IOMMU_IOAS_COPY, &cp), EINVAL), "copy the BAR into the range");
    cp.dst_iova = 0x9000000;
    CHECK(ioctl(fd, IOMMU_IOAS_COPY, &cp) == 0 && C("pinned_pages") == 8, "copy the BAR elsewhere");
    /* vfio1 reaches vfio0's BAR through the copies */
    CHECK(bus_master(d1) == 0, "bm");
    strcpy(ram + 0x100, "vfio1 -> vfio0");
    CHECK(edu_dma(d1, 0x100100, 0, 15, 0, 0) == 0 && edu_dma(d1, 0x9000100, 0, 15, 1, 0) == 0 &&
              !strcmp((char *)bar + 0x100, "vfio1 -> vfio0"), "p2p dma");
    /* detached, the range is free again */
    CHECK(detach(d1) == 0, "detach vfio1");
    pt = ioas2;
    CHECK(attach(d0, &pt) == 0 && C("hwpt") == 1, "vfio0 moves to IOAS 2");
    CHECK(ioas_ranges(fd, ioas2, r, 8) == 2 && is_range(&r[1], 0xfef00000, APERTURE_LAST),
          "IOAS 2 without vfio1's ranges");
    iova = RESV_START;
    CHECK(map(fd, ioas2, ram, 4096, &iova, RW_FIXED) == 0, "map at the former range");
    pt = ioas2;
    CHECK(IOERR(attach(d1, &pt), EADDRINUSE), "vfio1 refused again");
    CHECK(unmap(fd, ioas2, RESV_START, 4096, NULL) == 0, "unmap");
    pt = ioas2;
    CHECK(attach(d1, &pt) == 0 && C("devices_attached") == 2, "vfio1 back");
    /* closing vfio1 drops its ranges too */
    close(d1);
    CHECK(ioas_ranges(fd, ioas2, r, 8) == 2, "IOAS 2 after close");
    munmap(bar, BAR2_SIZE);
    munmap(ram, 8 * 4096);
    close(d0);
    close(fd);
    QUIET();
    return 0;
}

static int t_resv_type1(void)
{
    struct legacy l;        /* group 3 (vfio0) in a type1 container */
    static const int grp = 3;
    static const char *const bdf = "0000:00:03.0";
    if (legacy_open(&l, 1, &grp, &bdf))
        return -1;
    int c = l.c, g4 = open("/dev/vfio/4", O_RDWR);
    CHECK(g4 >= 0, "open group 4");
    char *ram = pages(16);
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ |
                                          VFIO_DMA_MAP_FLAG_WRITE, .vaddr = (uintptr_t)ram,
                                          .iova = RESV_LAST + 1 - 0x2000, .size = 0x4000 };
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map across vfio1's range");
    /* group 4 (vfio1) cannot join: its reserved region is mapped */
    CHECK(IOERR(ioctl(g4, VFIO_GROUP_SET_CONTAINER, &c), EINVAL), "group 4 refused");
    struct vfio_group_status gs = { .argsz = sizeof(gs) };
    CHECK(ioctl(g4, VFIO_GROUP_GET_STATUS, &gs) == 0 &&
              !(gs.flags & VFIO_GROUP_FLAGS_CONTAINER_SET), "group 4 not set");
    CHECK(C("groups_in_container") == 1 && C("type1_mappings") == 1 && C("type1_pinned_pages") == 4,
          "nothing changed");
    struct vfio_iova_range r[8];
    CHECK(type1_ranges(c, r, 8) == 2, "ranges without group 4");
    struct vfio_iommu_type1_dma_unmap ua = { .argsz = sizeof(ua), .flags = VFIO_DMA_UNMAP_FLAG_ALL };
    CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, &ua) == 0, "unmap");
    CHECK(ioctl(g4, VFIO_GROUP_SET_CONTAINER, &c) == 0, "group 4 joins");
    CHECK(type1_ranges(c, r, 8) == 4 && r[0].start == 0 && r[0].end == RESV_START - 1 &&
              r[1].start == RESV_LAST + 1 && r[1].end == RESV2_START - 1 &&
              r[2].start == RESV2_LAST + 1 && r[2].end == 0xfedfffff, "ranges with group 4");
    m.iova = RESV_START;
    m.size = 0x1000;
    CHECK(IOERR(ioctl(c, VFIO_IOMMU_MAP_DMA, &m), EINVAL), "map into the range");
    m.iova = RESV_START - 0x1000;
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map next to it");
    /* the group leaves: the range is free */
    CHECK(ioctl(g4, VFIO_GROUP_UNSET_CONTAINER) == 0 && type1_ranges(c, r, 8) == 2, "group 4 left");
    m.iova = RESV_START;
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map at the former range");
    close(g4);
    legacy_close(&l);
    munmap(ram, 16 * 4096);
    QUIET();
    return 0;
}


/* ------------------------------------------------------ migration (v2) */

/* The "mig*" runs set VFIO_MODEL_MIGRATION; the flags the device must
 * report, from the same variable (stop_copy implied by the others). */
static uint64_t mig_flags_expected(void)
{
    const char *v = getenv("VFIO_MODEL_MIGRATION");
    uint64_t f = 0;
    if (!v)
        return 0;
    if (strstr(v, "stop_copy"))
        f |= VFIO_MIGRATION_STOP_COPY;
    if (strstr(v, "p2p"))
        f |= VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
    if (strstr(v, "pre_copy"))
        f |= VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
    return f;
}

#define MS(x) VFIO_DEVICE_STATE_##x
#define F_GET VFIO_DEVICE_FEATURE_GET
#define F_SET VFIO_DEVICE_FEATURE_SET
#define F_PROBE VFIO_DEVICE_FEATURE_PROBE
#define F_STATE VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE
/* the stream of a device with BAR2: header 40, registers 64, 17 pages of
 * 4 KiB each with an 8-byte index (see model/README.md) */
#define FULL_LEN (40 + 64 + 17 * (8 + 4096))
#define PRECOPY_LEN(n) (40 + (n) * (8 + 4096))

static const char *const sname[] = { "ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING",
                                     "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P" };

/* VFIO_DEVICE_FEATURE with @len bytes of data (in and out); argsz from
 * @argsz when non-zero */
static int feature(int dev, uint32_t flags, void *data, size_t len, uint32_t argsz)
{
    struct { struct vfio_device_feature f; uint64_t d[8]; } b;
    memset(&b, 0, sizeof(b));
    b.f.argsz = argsz ? argsz : (uint32_t)(sizeof(b.f) + len);
    b.f.flags = flags;
    if (len)
        memcpy(b.d, data, len);
    int r = ioctl(dev, VFIO_DEVICE_FEATURE, &b), e = errno;
    if (len)
        memcpy(data, b.d, len);
    errno = e;
    return r;
}

/* the device state, -1 on error, -2 if data_fd was not -1 */
static int mig_get(int dev)
{
    struct vfio_device_feature_mig_state st = { .device_state = 77, .data_fd = -5 };
    if (feature(dev, F_GET | F_STATE, &st, sizeof(st), 0))
        return -1;
    return st.data_fd == -1 ? (int)st.device_state : -2;
}

static int mig_set(int dev, uint32_t state, int *fd)
{
    struct vfio_device_feature_mig_state st = { .device_state = state, .data_fd = -5 };
    int r = feature(dev, F_SET | F_STATE, &st, sizeof(st), 0), e = errno;
    if (fd)
        *fd = st.data_fd;
    errno = e;
    return r;
}

static int mig_supported(uint32_t s)
{
    uint64_t f = mig_flags_expected();
    switch (s) {
    case MS(RUNNING): return 1;
    case MS(STOP): case MS(STOP_COPY): case MS(RESUMING): return !!(f & VFIO_MIGRATION_STOP_COPY);
    case MS(RUNNING_P2P): return !!(f & VFIO_MIGRATION_P2P);
    case MS(PRE_COPY): return !!(f & VFIO_MIGRATION_PRE_COPY);
    case MS(PRE_COPY_P2P): return (f & VFIO_MIGRATION_P2P) && (f & VFIO_MIGRATION_PRE_COPY);
    }
    return 0;
}

static int mig_saving(uint32_t s)
{
    return s == MS(STOP_COPY) || s == MS(PRE_COPY) || s == MS(PRE_COPY_P2P);
}

/* read a data fd in pieces of @chunk until EOF or an error; the bytes read
 * (-1 if @cap is too small); *end: 0 for EOF, else the errno */
static ssize_t mig_read_all(int fd, uint8_t *buf, size_t cap, size_t chunk, int *end)
{
    size_t n = 0;
    for (;;) {
        size_t want = chunk < cap - n ? chunk : cap - n;
        if (!want)
            return -1;
        ssize_t r = read(fd, buf + n, want);
        if (r <= 0) {
            *end = r ? errno : 0;
            return (ssize_t)n;
        }
        n += (size_t)r;
    }
}

static int mig_write_all(int fd, const uint8_t *buf, size_t len, size_t chunk)
{
    for (size_t o = 0; o < len;) {
        size_t k = len - o < chunk ? len - o : chunk;
        ssize_t w = write(fd, buf + o, k);
        if (w <= 0)
            return -1;
        o += (size_t)w;
    }
    return 0;
}

/* the whole STOP_COPY stream of @dev (left in STOP afterwards) */
static int save_image(int dev, uint8_t *img, size_t cap, size_t *len)
{
    int fd, end = -1;
    CHECK(mig_set(dev, MS(STOP_COPY), &fd) == 0 && fd >= 0, "to STOP_COPY");
    ssize_t n = mig_read_all(fd, img, cap, 8192, &end);
    close(fd);
    CHECK(n == FULL_LEN && end == 0, "image %zd bytes, end %d", n, end);
    CHECK(mig_set(dev, MS(STOP), NULL) == 0, "to STOP");
    *len = (size_t)n;
    return 0;
}

/* load @img into @dev (from RUNNING or STOP) and go to @final */
static int load_image(int dev, const uint8_t *img, size_t len, size_t chunk, uint32_t final)
{
    int fd;
    CHECK(mig_set(dev, MS(RESUMING), &fd) == 0 && fd >= 0, "to RESUMING");
    int w = mig_write_all(fd, img, len, chunk);
    close(fd);          /* as QEMU does, before RESUMING is left */
    CHECK(w == 0, "write the image");
    CHECK(mig_set(dev, final, NULL) == 0, "leave RESUMING: load refused");
    return 0;
}

/* the device-state line of vfio<i> without its name and migration state */
static int dev_state(int i, char *out, size_t sz)
{
    char line[512];
    CHECK(vfio_model_device_state(ctl, i, line, sizeof(line)) > 0, "device-state %d", i);
    char *sp = strchr(line, ' '), *mig = strstr(line, " mig=");
    CHECK(sp && mig && mig > sp, "device-state line: %.300s", line);
    *mig = 0;
    snprintf(out, sz, "%.400s", sp + 1);
    return 0;
}

static int mig_state_is(int i, const char *name)
{
    char k[64], want[96], out[128];
    snprintf(k, sizeof(k), "get mig_state_vfio%d", i);
    snprintf(want, sizeof(want), "mig_state_vfio%d=%s\n", i, name);
    return vfio_model_cmd(ctl, k, out, sizeof(out)) > 0 && !strcmp(out, want);
}

/* migration off (the default): the features are not there */
static int t_mig_off(void)
{
    int fd, dev;
    uint32_t devid;
    CHECK(open_bound(0, &fd, &dev, &devid) == 0, "bind");
    struct vfio_device_feature_migration mf = { 0 };
    struct vfio_device_feature_mig_state st = { 0 };
    CHECK(IOERR(feature(dev, F_GET | VFIO_DEVICE_FEATURE_MIGRATION, &mf, sizeof(mf), 0), ENOTTY),
          "GET MIGRATION");
    CHECK(IOERR(feature(dev, F_PROBE | VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0, 0), ENOTTY),
          "PROBE MIGRATION");
    CHECK(IOERR(feature(dev, F_GET | F_STATE, &st, sizeof(st), 0), ENOTTY), "GET state");
    CHECK(IOERR(feature(dev, F_SET | F_STATE, &st, sizeof(st), 0), ENOTTY), "SET state");
    CHECK(IOERR(feature(dev, F_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &mf, 8, 0), ENOTTY),
          "GET data size");
    CHECK(mig_state_is(0, "RUNNING") && C("migration_flags") == 0, "counters");
    close(dev);
    close(fd);
    QUIET();
    return 0;
}

static int t_mig_feature(void)
{
    int fd, dev;
    uint32_t devid;
    uint64_t want = mig_flags_expected();
    CHECK(want, "VFIO_MODEL_MIGRATION unset");
    CHECK(open_bound(0, &fd, &dev, &devid) == 0, "bind");
    const uint32_t MIG = VFIO_DEVICE_FEATURE_MIGRATION;
    struct vfio_device_feature_migration mf = { 0 };
    CHECK(feature(dev, F_GET | MIG, &mf, sizeof(mf), 0) == 0 && mf.flags == want,
          "flags 0x%llx", (unsigned long long)mf.flags);
    CHECK(C("migration_flags") == (long long)want, "counter");
    CHECK(feature(dev, F_PROBE | MIG, NULL, 0, 0) == 0, "probe");
    CHECK(feature(dev, F_PROBE | F_GET | MIG, NULL, 0, 0) == 0, "probe GET");
    CHECK(IOERR(feature(dev, F_PROBE | F_SET | MIG, NULL, 0, 0), EINVAL), "probe SET");
    CHECK(IOERR(feature(dev, F_SET | MIG, &mf, sizeof(mf), 0), EINVAL), "SET refused");
    CHECK(IOERR(feature(dev, MIG, &mf, sizeof(mf), 0), EINVAL), "neither GET nor SET");
    CHECK(IOERR(feature(dev, F_GET | F_SET | MIG, &mf, sizeof(mf), 0), EINVAL), "GET|SET");
    CHECK(IOERR(feature(dev, F_GET | MIG | (1u << 19), &mf, sizeof(mf), 0), EINVAL),
          "unknown flag");
    CHECK(IOERR(feature(dev, F_GET | MIG, &mf, sizeof(mf),
                        sizeof(struct vfio_device_feature) + 4), EINVAL), "no room for flags");
    CHECK(IOERR(feature(dev, F_GET | MIG, NULL, 0, 4), EINVAL), "argsz below the header");
    /* the state */
    struct vfio_device_feature_mig_state st = { 0 };
    CHECK(mig_get(dev) == MS(RUNNING) && mig_state_is(0, "RUNNING"), "RUNNING at open");
    CHECK(feature(dev, F_PROBE | F_GET | F_SET | F_STATE, NULL, 0, 0) == 0, "probe state");
    CHECK(IOERR(feature(dev, F_GET | F_STATE, &st, sizeof(st),
                        sizeof(struct vfio_device_feature) + 4), EINVAL), "short state");
    CHECK(IOERR(feature(dev, F_SET | F_STATE, &st, sizeof(st),
                        sizeof(struct vfio_device_feature) + 4), EINVAL), "short SET");
    int dfd = 7;
    CHECK(IOERR(mig_set(dev, MS(ERROR), &dfd), EINVAL) && dfd == -1, "SET ERROR");
    CHECK(IOERR(mig_set(dev, MS(NR), NULL), EINVAL) && IOERR(mig_set(dev, 1000, NULL), EINVAL),
          "SET beyond the states");
    for (uint32_t s = 0; s < MS(NR); s++)
        if (!mig_supported(s))
            CHECK(IOERR(mig_set(dev, s, NULL), EINVAL) && mig_get(dev) == MS(RUNNING),
                  "unsupported %s", sname[s]);
    CHECK(mig_set(dev, MS(RUNNING), &dfd) == 0 && dfd == -1, "RUNNING -> RUNNING");
    /* the size of a STOP_COPY stream */
    struct vfio_device_feature_mig_data_size ds = { 0 };
    CHECK(feature(dev, F_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &ds, sizeof(ds), 0) == 0 &&
              ds.stop_copy_length == FULL_LEN, "data size %llu",
          (unsigned long long)ds.stop_copy_length);
    CHECK(IOERR(feature(dev, F_SET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &ds, sizeof(ds), 0),
                EINVAL), "data size SET");
    /* the others stay as they were */
    struct vfio_device_feature_bus_master bm = { .op = VFIO_DEVICE_FEATURE_SET_MASTER };
    CHECK(feature(dev, F_SET | VFIO_DEVICE_FEATURE_BUS_MASTER, &bm, sizeof(bm), 0) == 0,
          "bus master");
    CHECK(IOERR(feature(dev, F_PROBE | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0, 0),
                ENOTTY), "no DMA logging");
    /* unbound cdev: no access */
    int d1 = open("/dev/vfio/devices/vfio1", O_RDWR);
    CHECK(d1 >= 0 && IOERR(feature(d1, F_GET | MIG, &mf, sizeof(mf), 0), EINVAL), "unbound");
    close(d1);
    close(dev);
    close(fd);
    QUIET();
    return 0;
}

/* The expected outcome of SET from -> to, from the header: optional
 * states must be supported, ERROR is never a target and only a reset
 * leaves it, STOP_COPY cannot go back to PRE_COPY; anything else is a
 * (combination) transition. A new fd iff a session starts. */
static int fsm_ok(uint32_t from, uint32_t to)
{
    if (to >= MS(NR) || to == MS(ERROR) || !mig_supported(to) || from == MS(ERROR))
        return 0;
    return !(from == MS(STOP_COPY) && (to == MS(PRE_COPY) || to == MS(PRE_COPY_P2P)));
}

static int fsm_new_fd(uint32_t from, uint32_t to)
{
    if (from == to)
        return 0;
    return to == MS(RESUMING) || (mig_saving(to) && !mig_saving(from));
}

static uint8_t img0[128 << 10], img1[256 << 10];

/* bring a RUNNING device to @s: *fd the data fd of that state, or -1 */
static int goto_state(int dev, uint32_t s, const uint8_t *img, size_t ilen, int *fd)
{
    *fd = -1;
    if (s == MS(RUNNING))
        return 0;
    if (s == MS(ERROR)) {
        int rfd;
        CHECK(mig_set(dev, MS(RESUMING), &rfd) == 0 && write(rfd, "junk", 4) == 4, "resume junk");
        CHECK(IOERR(mig_set(dev, MS(STOP), NULL), EINVAL), "junk loaded");
        close(rfd);
    } else {
        CHECK(mig_set(dev, s, fd) == 0, "RUNNING -> %s", sname[s]);
        if (s == MS(RESUMING))
            CHECK(*fd >= 0 && mig_write_all(*fd, img, ilen, 5000) == 0, "write image");
    }
    CHECK(mig_get(dev) == (int)s, "in %s", sname[s]);
    return 0;
}

static int t_mig_fsm(void)
{
    int fd, dev;
    uint32_t devid;
    size_t ilen;
    CHECK(open_bound(0, &fd, &dev, &devid) == 0, "bind");
    if (save_image(dev, img0, sizeof(img0), &ilen))
        return -1;
    int pairs = 0;
    for (uint32_t from = 0; from < MS(NR); from++) {
        if (from != MS(ERROR) && !mig_supported(from))
            continue;
        for (uint32_t to = 0; to <= MS(NR); to++) {
            int ffd, tfd = -5;
            CHECK(ioctl(dev, VFIO_DEVICE_RESET) == 0 && mig_get(dev) == MS(RUNNING), "reset");
            if (goto_state(dev, from, img0, ilen, &ffd))
                return -1;
            long long sets = C("mig_state_sets"), loads = C("mig_loads"),
                      fds = C("fds_migdata");
            int r = mig_set(dev, to, &tfd), e = errno;
            const char *f = sname[from], *t = to < MS(NR) ? sname[to] : "NR";
            if (fsm_ok(from, to)) {
                CHECK(r == 0, "%s -> %s refused: %s", f, t, strerror(e));
                CHECK(mig_get(dev) == (int)to, "%s -> %s: in %d", f, t, mig_get(dev));
                CHECK(mig_state_is(0, t), "%s -> %s: counter", f, t);
                if (fsm_new_fd(from, to))
                    CHECK(tfd >= 0 && C("fds_migdata") == fds + 1, "%s -> %s: no new fd", f, t);
                else
                    CHECK(tfd == -1 && C("fds_migdata") == fds, "%s -> %s: fd %d", f, t, tfd);
                CHECK(C("mig_state_sets") == sets + 1, "sets");
                CHECK(C("mig_loads") == loads + (from == MS(RESUMING) && to != MS(RESUMING)),
                      "%s -> %s: loads", f, t);
            } else {
                CHECK(r == -1 && e == EINVAL && tfd == -1, "%s -> %s: r %d %s fd %d", f, t, r,
                      strerror(e), tfd);
                CHECK(mig_get(dev) == (int)from && C("mig_state_sets") == sets &&
                          C("fds_migdata") == fds, "%s -> %s refused but changed", f, t);
            }
            if (tfd >= 0)
                close(tfd);
            if (ffd >= 0)
                close(ffd);
            pairs++;
        }
    }
    CHECK(ioctl(dev, VFIO_DEVICE_RESET) == 0 && C("mig_sessions") == 0, "sessions left");
    snprintf(why, sizeof(why), "%d transitions", pairs);
    close(dev);
    close(fd);
    QUIET();
    return 0;
}

/* Device state that a restore must carry: registers, DMA buffer, BAR2 */
static int make_state(struct env *e, unsigned seed)
{
    for (int i = 0; i < 4096; i++)
        e->buf[i] = (char)(i * seed + (i >> 8));
    CHECK(edu_dma(e->dev, 0x100000, 0, 4095, 0, 0) == 0, "dma into the buffer");
    CHECK(wr32(e->dev, 0x04, 0x1000 + seed) == 0 && wr32(e->dev, 0x20, 0x80) == 0 &&
              wr32(e->dev, 0x08, 5 + seed % 4) == 0 && wr64(e->dev, 0x80, 0x40010 + seed) == 0,
          "registers");
    uint8_t b2[BAR2_SIZE];
    for (unsigned i = 0; i < BAR2_SIZE; i++)
        b2[i] = (uint8_t)(i / 7 + seed * 13);
    CHECK(pwrite(e->dev, b2, BAR2_SIZE, BAR2_OFF) == BAR2_SIZE, "BAR2");
    return 0;
}

static int t_mig_roundtrip(void)
{
    struct env s, d;
    if (setup_cdev(&s, "/dev/vfio/devices/vfio0", 0) || setup_cdev(&d, "/dev/vfio/devices/vfio1", 0))
        return -1;
    if (make_state(&s, 3) || make_state(&d, 11))
        return -1;
    char ss[512], ds[512];
    CHECK(dev_state(0, ss, sizeof(ss)) == 0 && dev_state(1, ds, sizeof(ds)) == 0 &&
              strcmp(ss, ds), "states differ before");
    long long saved = C("mig_bytes_saved"), loaded = C("mig_bytes_loaded"), loads = C("mig_loads");
    /* source: RUNNING -> STOP_COPY (a combination arc), read in pieces */
    int sfd, end = -1;
    CHECK(mig_set(s.dev, MS(STOP_COPY), &sfd) == 0 && sfd >= 0, "STOP_COPY");
    CHECK(C("fds_migdata") == 1 && mig_state_is(0, "STOP_COPY"), "fd counted");
    ssize_t n = mig_read_all(sfd, img0, sizeof(img0), 1000, &end);
    CHECK(n == FULL_LEN && end == 0, "stream %zd end %d", n, end);
    CHECK(!memcmp(img0, "VMIG", 4), "magic");
    char c;
    CHECK(read(sfd, &c, 1) == 0 && read(sfd, &c, 1) == 0, "EOF for ever");
    CHECK(C("mig_bytes_saved") == saved + FULL_LEN, "bytes saved");
    CHECK(mig_set(s.dev, MS(STOP), NULL) == 0, "STOP_COPY -> STOP");
    CHECK(IOERR(read(sfd, &c, 1), ENODEV), "session over");
    close(sfd);
    /* destination: RUNNING -> RESUMING, odd pieces, RESUMING -> RUNNING */
    if (load_image(d.dev, img0, (size_t)n, 777, MS(RUNNING)))
        return -1;
    CHECK(C("mig_loads") == loads + 1 && C("mig_bytes_loaded") == loaded + FULL_LEN, "counted");
    CHECK(mig_get(d.dev) == MS(RUNNING) && mig_state_is(1, "RUNNING"), "running");
    CHECK(dev_state(0, ss, sizeof(ss)) == 0 && dev_state(1, ds, sizeof(ds)) == 0 &&
              !strcmp(ss, ds), "states differ after:\n  %.200s\n  %.200s", ss, ds);
    /* the registers, the buffer and BAR2 as the source had them */
    CHECK(rd32(d.dev, 0x04) == ~(0x1000u + 3) && rd32(d.dev, 0x08) == 40320 &&
              rd32(d.dev, 0x20) == 0x80 && rd32(d.dev, 0x24) == 1 && rd32(d.dev, 0x80) == 0x40013,
          "registers");
    uint8_t b0[BAR2_SIZE], b1[BAR2_SIZE];
    CHECK(mig_set(s.dev, MS(RUNNING), NULL) == 0, "source runs again");
    CHECK(pread(s.dev, b0, BAR2_SIZE, BAR2_OFF) == BAR2_SIZE &&
              pread(d.dev, b1, BAR2_SIZE, BAR2_OFF) == BAR2_SIZE && !memcmp(b0, b1, BAR2_SIZE),
          "BAR2");
    memset(d.buf + 4096, 0, 4096);
    CHECK(edu_dma(d.dev, 0x101000, 0, 4095, 1, 0) == 0 && !memcmp(d.buf + 4096, s.buf, 4095),
          "the DMA buffer");
    teardown(&s);
    teardown(&d);
    QUIET();
    return 0;
}

static int precopy_info(int fd, uint64_t *init, uint64_t *dirty)
{
    struct vfio_precopy_info pi = { .argsz = sizeof(pi) };
    int r = ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &pi);
    *init = pi.initial_bytes;
    *dirty = pi.dirty_bytes;
    return r;
}

static int t_mig_precopy(void)
{
    struct env s, d;
    if (setup_cdev(&s, "/dev/vfio/devices/vfio0", 0) || setup_cdev(&d, "/dev/vfio/devices/vfio1", 0))
        return -1;
    if (make_state(&s, 5))
        return -1;
    int p2p = mig_supported(MS(PRE_COPY_P2P));
    int fd, x = -1;
    uint64_t init, dirty;
    size_t n = 0;
    char c;
    CHECK(mig_set(s.dev, MS(PRE_COPY), &fd) == 0 && fd >= 0, "RUNNING -> PRE_COPY");
    CHECK(precopy_info(fd, &init, &dirty) == 0 && init == PRECOPY_LEN(17) && dirty == 0,
          "initial %llu dirty %llu", (unsigned long long)init, (unsigned long long)dirty);
    CHECK(read(fd, img1, 1000) == 1000, "read");
    n = 1000;
    CHECK(precopy_info(fd, &init, &dirty) == 0 && init == PRECOPY_LEN(17) - 1000 && dirty == 0,
          "initial decreases: %llu", (unsigned long long)init);
    /* the device runs: its state changes */
    CHECK(pwrite(s.dev, "changed", 7, BAR2_OFF + 3 * 4096 + 5) == 7, "BAR2 write");
    CHECK(precopy_info(fd, &init, &dirty) == 0 && dirty == PRECOPY_LEN(1), "dirty 1 page: %llu",
          (unsigned long long)dirty);
    memset(s.buf, 0x77, 64);
    CHECK(edu_dma(s.dev, 0x100000, 0, 64, 0, 0) == 0, "DMA into the buffer");
    CHECK(precopy_info(fd, &init, &dirty) == 0 && dirty == PRECOPY_LEN(2), "dirty 2 pages: %llu",
          (unsigned long long)dirty);
    /* read to the temporary end: the initial data, then the changes */
    ssize_t r = mig_read_all(fd, img1 + n, sizeof(img1) - n, 4096, &x);
    CHECK(r == (ssize_t)(PRECOPY_LEN(17) - 1000 + PRECOPY_LEN(2)) && x == ENOMSG, "read %zd end %d",
          r, x);
    n += (size_t)r;
    CHECK(precopy_info(fd, &init, &dirty) == 0 && init == 0 && dirty == 0, "all read");
    CHECK(IOERR(read(fd, &c, 1), ENOMSG), "temporary end again");
    struct vfio_precopy_info pi = { .argsz = 16 };
    CHECK(IOERR(ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &pi), EINVAL), "argsz");
    CHECK(IOERR(ioctl(fd, VFIO_DEVICE_GET_INFO, &pi), ENOTTY), "other ioctl on the data fd");
    if (p2p) {
        int f2 = 5;
        CHECK(mig_set(s.dev, MS(PRE_COPY_P2P), &f2) == 0 && f2 == -1, "PRE_COPY -> PRE_COPY_P2P");
        CHECK(precopy_info(fd, &init, &dirty) == 0, "info in PRE_COPY_P2P");
        long long ops = C("dma_ops");
        CHECK(edu_dma(s.dev, 0x100000, 0, 64, 0, 0) == 0 && C("dma_ops") == ops + 1,
              "DMA to RAM in PRE_COPY_P2P");
    }
    /* one more change, then STOP_COPY continues the same session */
    CHECK(wr32(s.dev, 0x04, 0xabc) == 0 && pwrite(s.dev, "x", 1, BAR2_OFF + 9 * 4096) == 1, "change");
    int f3 = 5;
    CHECK(mig_set(s.dev, MS(STOP_COPY), &f3) == 0 && f3 == -1, "PRE_COPY -> STOP_COPY: same fd");
    CHECK(IOERR(precopy_info(fd, &init, &dirty), EINVAL), "no info in STOP_COPY");
    r = mig_read_all(fd, img1 + n, sizeof(img1) - n, 65536, &x);
    CHECK(r == FULL_LEN && x == 0, "the full image, then EOF: %zd %d", r, x);
    n += (size_t)r;
    CHECK(read(fd, &c, 1) == 0, "EOF");
    close(fd);
    CHECK(C("fds_migdata") == 0 && C("mig_sessions") == 1, "the device keeps its session");
    CHECK(mig_set(s.dev, MS(STOP), NULL) == 0 && C("mig_sessions") == 0, "ended");
    /* the destination takes the whole stream */
    if (load_image(d.dev, img1, n, 3000, MS(STOP)))
        return -1;
    char ss[512], ds[512];
    CHECK(dev_state(0, ss, sizeof(ss)) == 0 && dev_state(1, ds, sizeof(ds)) == 0 &&
              !strcmp(ss, ds), "states differ:\n  %.200s\n  %.200s", ss, ds);
    /* pre-copy data alone is no image */
    CHECK(ioctl(d.dev, VFIO_DEVICE_RESET) == 0, "reset");
    CHECK(mig_set(d.dev, MS(RESUMING), &fd) == 0 && mig_write_all(fd, img1, PRECOPY_LEN(17), 9999) == 0,
          "pre-copy only");
    CHECK(IOERR(mig_set(d.dev, MS(STOP), NULL), EINVAL) && mig_get(d.dev) == MS(ERROR),
          "no full image: refused");
    close(fd);
    /* leaving PRE_COPY for RUNNING ends the session */
    CHECK(ioctl(s.dev, VFIO_DEVICE_RESET) == 0 && mig_set(s.dev, MS(PRE_COPY), &fd) == 0, "again");
    CHECK(mig_set(s.dev, MS(RUNNING), NULL) == 0, "PRE_COPY -> RUNNING");
    CHECK(IOERR(read(fd, &c, 1), ENODEV) && IOERR(precopy_info(fd, &init, &dirty), EINVAL),
          "session over");
    close(fd);
    teardown(&s);
    teardown(&d);
    QUIET();
    return 0;
}

/* a refused stream leaves the device in ERROR until VFIO_DEVICE_RESET */
static int t_mig_corrupt(void)
{
    struct env s, d;
    if (setup_cdev(&s, "/dev/vfio/devices/vfio0", 0) || setup_cdev(&d, "/dev/vfio/devices/vfio1", 0))
        return -1;
    if (make_state(&s, 7) || make_state(&d, 9))
        return -1;
    size_t ilen;
    if (save_image(s.dev, img0, sizeof(img0), &ilen))
        return -1;
    char before[512], after[512];
    CHECK(dev_state(1, before, sizeof(before)) == 0, "state");
    static const char *const what[] = { "flipped byte", "truncated", "trailing byte", "empty",
                                        "bad magic", "bad version", "header only" };
    for (int k = 0; k < 7; k++) {
        memcpy(img1, img0, ilen);
        size_t len = ilen;
        switch (k) {
        case 0: img1[ilen / 2] ^= 0x10; break;
        case 1: len--; break;
        case 2: img1[len++] = 0; break;
        case 3: len = 0; break;
        case 4: img1[0] = 'X'; break;
        case 5: img1[4] = 2; break;
        case 6: len = 40; break;
        }
        long long errs = C("mig_load_errors"), loads = C("mig_loads");
        int fd;
        CHECK(mig_set(d.dev, MS(RESUMING), &fd) == 0 && mig_write_all(fd, img1, len, 4096) == 0,
              "%s: write", what[k]);
        /* RESUMING -> RUNNING: the first arc (the load) fails */
        CHECK(IOERR(mig_set(d.dev, k % 2 ? MS(STOP) : MS(RUNNING), NULL), EINVAL),
              "%s: accepted", what[k]);
        CHECK(mig_get(d.dev) == MS(ERROR) && mig_state_is(1, "ERROR"), "%s: not ERROR", what[k]);
        CHECK(C("mig_load_errors") == errs + 1 && C("mig_loads") == loads, "%s: counters", what[k]);
        CHECK(IOERR(mig_set(d.dev, MS(RUNNING), NULL), EINVAL) &&
                  IOERR(mig_set(d.dev, MS(STOP), NULL), EINVAL), "%s: ERROR left", what[k]);
        CHECK(IOERR(write(fd, "x", 1), ENODEV), "%s: session not over", what[k]);
        long long stopped = C("dma_while_stopped");
        CHECK(wr64(d.dev, 0x98, 1) == 0 && C("dma_while_stopped") == stopped + 1,
              "%s: DMA in ERROR", what[k]);
        CHECK(dev_state(1, after, sizeof(after)) == 0 && !strcmp(before, after),
              "%s: device changed", what[k]);
        close(fd);
        CHECK(ioctl(d.dev, VFIO_DEVICE_RESET) == 0 && mig_get(d.dev) == MS(RUNNING),
              "%s: reset", what[k]);
        CHECK(dev_state(1, before, sizeof(before)) == 0, "state");
    }
    /* and a good one still loads after that */
    if (load_image(d.dev, img0, ilen, ilen, MS(RUNNING)))
        return -1;
    CHECK(dev_state(0, before, sizeof(before)) == 0 && dev_state(1, after, sizeof(after)) == 0 &&
              !strcmp(before, after), "restored");
    teardown(&s);
    teardown(&d);
    QUIET();
    return 0;
}

/* a stopped device does no DMA and does not change; config space works */
static int t_mig_stopped(void)
{
    struct env e;
    if (setup_cdev(&e, "/dev/vfio/devices/vfio0", 0))
        return -1;
    if (make_state(&e, 1))
        return -1;
    static const uint32_t stopped[] = { MS(STOP), MS(STOP_COPY), MS(RESUMING) };
    for (int k = 0; k < 3; k++) {
        char before[512], after[512];
        int fd = -1;
        CHECK(ioctl(e.dev, VFIO_DEVICE_RESET) == 0 && bus_master(e.dev) == 0, "reset");
        CHECK(wr32(e.dev, 0x04, 0x55) == 0, "liveness");
        CHECK(mig_set(e.dev, stopped[k], &fd) == 0, "to %s", sname[stopped[k]]);
        CHECK(dev_state(0, before, sizeof(before)) == 0, "state");
        long long ops = C("dma_ops"), st = C("dma_while_stopped"), f0 = C("dma_faults");
        memset(e.buf, 0x3c, 4096);
        memset(e.buf + 4096, 0, 4096);
        CHECK(edu_dma(e.dev, 0x100000, 0, 256, 0, 0) == 0 &&
                  edu_dma(e.dev, 0x101000, 0, 256, 1, 1) == 0, "DMA commands");
        CHECK(C("dma_while_stopped") == st + 2 && C("dma_ops") == ops && C("dma_faults") == f0,
              "%s: not executed", sname[stopped[k]]);
        CHECK(e.buf[4096] == 0, "%s: RAM written", sname[stopped[k]]);
        CHECK(wr32(e.dev, 0x04, 0x66) == 0 && wr32(e.dev, 0x08, 4) == 0 &&
                  pwrite(e.dev, "zz", 2, BAR2_OFF) == 2, "other writes");
        CHECK(dev_state(0, after, sizeof(after)) == 0 && !strcmp(before, after),
              "%s: device changed", sname[stopped[k]]);
        CHECK(rd32(e.dev, 0x04) == ~0x55u, "liveness kept");
        /* config space keeps working (QEMU restores it while RESUMING) */
        uint8_t line = 0x0b, got = 0;
        uint16_t cmd = 0;
        CHECK(pwrite(e.dev, &line, 1, CFG_OFF + 0x3c) == 1 && pread(e.dev, &got, 1, CFG_OFF + 0x3c) == 1 &&
                  got == 0x0b, "config write");
        CHECK(pwrite(e.dev, &cmd, 2, CFG_OFF + 4) == 2 && bus_master(e.dev) == 0, "command");
        if (fd >= 0)
            close(fd);
    }
    /* RUNNING again: DMA works */
    CHECK(ioctl(e.dev, VFIO_DEVICE_RESET) == 0 && mig_set(e.dev, MS(STOP), NULL) == 0 &&
              mig_set(e.dev, MS(RUNNING), NULL) == 0 && bus_master(e.dev) == 0, "STOP -> RUNNING");
    long long ops = C("dma_ops");
    strcpy(e.buf, "running again");
    CHECK(edu_dma(e.dev, 0x100000, 0, 14, 0, 0) == 0 && edu_dma(e.dev, 0x102000, 0, 14, 1, 0) == 0 &&
              C("dma_ops") == ops + 2 && !strcmp(e.buf + 0x2000, "running again"), "DMA");
    if (mig_supported(MS(RUNNING_P2P))) {
        CHECK(mig_set(e.dev, MS(RUNNING_P2P), NULL) == 0, "RUNNING_P2P");
        strcpy(e.buf, "p2p quiesced");
        CHECK(edu_dma(e.dev, 0x100000, 0, 13, 0, 0) == 0 && edu_dma(e.dev, 0x103000, 0, 13, 1, 0) == 0 &&
                  C("dma_ops") == ops + 4 && !strcmp(e.buf + 0x3000, "p2p quiesced"),
              "DMA to RAM in RUNNING_P2P");
        CHECK(wr32(e.dev, 0x04, 0x99) == 0 && rd32(e.dev, 0x04) == ~0x99u, "registers work");
    }
    teardown(&e);
    QUIET();
    return 0;
}

/* RUNNING_P2P: no peer-to-peer DMA (type1 maps the BAR) */
static int t_mig_p2p(void)
{
    struct legacy l;
    static const int grp = 3;
    static const char *const bdf = "0000:00:03.0";
    if (legacy_open(&l, 1, &grp, &bdf))
        return -1;
    int c = l.c, dev = l.d[0];
    uint8_t *b = bar2_mmap(dev, BAR2_SIZE, BAR2_OFF, MAP_SHARED);
    char *ram = pages(8);
    CHECK(b != MAP_FAILED && ram, "mmap");
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ |
                                          VFIO_DMA_MAP_FLAG_WRITE, .vaddr = (uintptr_t)ram,
                                          .iova = 0x100000, .size = 8 * 4096 };
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map RAM");
    m.vaddr = (uintptr_t)b;
    m.iova = 0x400000;
    m.size = BAR2_SIZE;
    CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0, "map the BAR");
    CHECK(bus_master(dev) == 0 && mig_set(dev, MS(RUNNING_P2P), NULL) == 0, "RUNNING_P2P");
    memset(b + 0x1000, 0, 64);
    strcpy(ram, "to the BAR");
    long long ops = C("dma_ops"), st = C("dma_while_stopped"), f0 = C("dma_faults");
    CHECK(edu_dma(dev, 0x100000, 0, 11, 0, 0) == 0 && C("dma_ops") == ops + 1, "RAM -> device");
    CHECK(edu_dma(dev, 0x401000, 0, 11, 1, 0) == 0 && C("dma_while_stopped") == st + 1 &&
              C("dma_ops") == ops + 1 && C("dma_faults") == f0 && b[0x1000] == 0,
          "device -> BAR refused");
    CHECK(edu_dma(dev, 0x401000, 0x100, 11, 0, 0) == 0 && C("dma_while_stopped") == st + 2,
          "BAR -> device refused");
    CHECK(mig_set(dev, MS(RUNNING), NULL) == 0, "RUNNING");
    CHECK(edu_dma(dev, 0x401000, 0, 11, 1, 0) == 0 && !strcmp((char *)b + 0x1000, "to the BAR") &&
              C("dma_while_stopped") == st + 2, "peer-to-peer again");
    munmap(b, BAR2_SIZE);
    legacy_close(&l);
    munmap(ram, 8 * 4096);
    QUIET();
    return 0;
}

/* the data fd: a stream; its session and its fd */
static int t_mig_datafd(void)
{
    struct env s, d;
    if (setup_cdev(&s, "/dev/vfio/devices/vfio0", 0) || setup_cdev(&d, "/dev/vfio/devices/vfio1", 0))
        return -1;
    int fd, rfd;
    char c, p[64], l[128] = "";
    size_t ilen;
    CHECK(mig_set(s.dev, MS(STOP_COPY), &fd) == 0 && fd >= 0, "STOP_COPY");
    snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
    CHECK(readlink(p, l, sizeof(l) - 1) > 0 && strstr(l, "memfd:vfio-model:migdata:vfio0"),
          "name %s", l);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC), "O_CLOEXEC");
    CHECK(IOERR(pread(fd, &c, 1, 0), ESPIPE) && IOERR(pwrite(fd, &c, 1, 0), ESPIPE), "no position");
    CHECK(IOERR(write(fd, "x", 1), EBADF), "write to a saving fd");
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED, "no mmap");
    /* a dup reads the same stream */
    int fd2 = dup(fd);
    CHECK(read(fd, img0, 100) == 100 && read(fd2, img0 + 100, 100) == 100 && C("fds_migdata") == 2,
          "dup");
    close(fd2);
    /* the device closes: the session ends, the fd stays until closed */
    close(s.dev);
    CHECK(IOERR(read(fd, &c, 1), ENODEV) && C("fds_migdata") == 1 && C("mig_sessions") == 1, "closed");
    close(fd);
    CHECK(C("fds_migdata") == 0 && C("mig_sessions") == 0, "released");
    s.dev = open("/dev/vfio/devices/vfio0", O_RDWR);
    uint32_t id;
    CHECK(s.dev >= 0 && dbind(s.dev, s.fd, &id) == 0 && mig_get(s.dev) == MS(RUNNING), "reopen");
    uint32_t pt = s.hwpt;
    CHECK(attach(s.dev, &pt) == 0 && bus_master(s.dev) == 0, "attach");
    /* VFIO_DEVICE_RESET ends it too */
    CHECK(mig_set(s.dev, MS(STOP_COPY), &fd) == 0 && ioctl(s.dev, VFIO_DEVICE_RESET) == 0, "reset");
    CHECK(IOERR(read(fd, &c, 1), ENODEV) && mig_get(s.dev) == MS(RUNNING), "reset ends the session");
    close(fd);
    /* the resuming fd: write only; closed before RESUMING is left, the
     * device still loads what it got (QEMU's order) */
    if (save_image(s.dev, img0, sizeof(img0), &ilen))
        return -1;
    CHECK(mig_set(d.dev, MS(RESUMING), &rfd) == 0 && IOERR(read(rfd, &c, 1), EBADF), "read a resuming fd");
    CHECK(mig_write_all(rfd, img0, ilen, 65536) == 0, "write");
    close(rfd);
    CHECK(C("fds_migdata") == 0 && C("mig_sessions") == 1, "the device holds the data");
    long long loads = C("mig_loads");
    CHECK(mig_set(d.dev, MS(RUNNING), NULL) == 0 && C("mig_loads") == loads + 1 &&
              C("mig_sessions") == 0, "loaded after close");
    teardown(&s);
    teardown(&d);
    QUIET();
    return 0;
}

/* each fault name fails the call it names and nothing else */
static int t_mig_faults(void)
{
    struct env s, d;
    if (setup_cdev(&s, "/dev/vfio/devices/vfio0", 0) || setup_cdev(&d, "/dev/vfio/devices/vfio1", 0))
        return -1;
    struct vfio_device_feature_migration mf;
    struct vfio_device_feature_mig_data_size ds;
    struct vfio_device_feature_bus_master bm = { .op = VFIO_DEVICE_FEATURE_SET_MASTER };
    const uint32_t MIG = VFIO_DEVICE_FEATURE_MIGRATION;
    long long inj = C("faults_injected");
    /* MIGRATION: neither BUS_MASTER nor the state count against it */
    CHECK(vfio_model_fail(ctl, "VFIO_DEVICE_FEATURE_MIGRATION", 1, "EIO") == 0, "arm");
    CHECK(feature(s.dev, F_SET | VFIO_DEVICE_FEATURE_BUS_MASTER, &bm, sizeof(bm), 0) == 0 &&
              mig_get(s.dev) == MS(RUNNING) && C("faults_armed") == 1, "other features");
    CHECK(IOERR(feature(s.dev, F_GET | MIG, &mf, sizeof(mf), 0), EIO), "injected");
    CHECK(feature(s.dev, F_GET | MIG, &mf, sizeof(mf), 0) == 0 && C("faults_injected") == inj + 1,
          "once");
    /* MIG_DEVICE_STATE: GET and SET; nothing changes */
    CHECK(vfio_model_fail(ctl, "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE", 2, "EIO") == 0, "arm");
    CHECK(feature(s.dev, F_SET | VFIO_DEVICE_FEATURE_BUS_MASTER, &bm, sizeof(bm), 0) == 0 &&
              feature(s.dev, F_GET | MIG, &mf, sizeof(mf), 0) == 0, "other features");
    CHECK(mig_get(s.dev) == MS(RUNNING), "GET #1");
    long long sets = C("mig_state_sets");
    int fd = 99;
    CHECK(IOERR(mig_set(s.dev, MS(STOP_COPY), &fd), EIO) && fd == -5, "SET #2 injected");
    CHECK(mig_get(s.dev) == MS(RUNNING) && C("fds_migdata") == 0 && C("mig_sessions") == 0 &&
              C("mig_state_sets") == sets, "nothing changed");
    CHECK(vfio_model_fail(ctl, "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE", 1, "EBUSY") == 0, "arm");
    CHECK(IOERR(mig_get(s.dev), EBUSY), "GET injected");
    /* MIG_DATA_SIZE */
    CHECK(vfio_model_fail(ctl, "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE", 1, "ENOMEM") == 0, "arm");
    CHECK(IOERR(feature(s.dev, F_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &ds, sizeof(ds), 0), ENOMEM),
          "data size injected");
    CHECK(feature(s.dev, F_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &ds, sizeof(ds), 0) == 0, "once");
    /* the ioctl VFIO_DEVICE_FEATURE (number of VFIO_IOMMU_DIRTY_PAGES) */
    int c = open("/dev/vfio/vfio", O_RDWR), g = open("/dev/vfio/4", O_RDWR);
    CHECK(c >= 0 && g >= 0 && ioctl(g, VFIO_GROUP_SET_CONTAINER, &c) == 0 &&
              ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "container");
    CHECK(vfio_model_fail(ctl, "VFIO_DEVICE_FEATURE", 1, "EIO") == 0, "arm");
    struct vfio_iommu_type1_dirty_bitmap db = { .argsz = sizeof(db),
                                                .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START };
    CHECK(ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &db) == 0 && C("faults_armed") == 1, "DIRTY_PAGES spared");
    CHECK(IOERR(mig_get(s.dev), EIO), "the device's FEATURE fails");
    close(g);
    close(c);
    /* read() and write() of a data fd: nothing consumed or stored */
    CHECK(vfio_model_fail(ctl, "MIG_DATA_READ", 2, "EIO") == 0, "arm");
    CHECK(mig_set(s.dev, MS(STOP_COPY), &fd) == 0, "STOP_COPY");
    int end = -1;
    CHECK(read(fd, img0, 1000) == 1000 && IOERR(read(fd, img0 + 1000, 1000), EIO), "read #2");
    ssize_t n = mig_read_all(fd, img0 + 1000, sizeof(img0) - 1000, 1000, &end);
    CHECK(n + 1000 == FULL_LEN && end == 0, "nothing consumed: %zd", n);
    close(fd);
    CHECK(vfio_model_fail(ctl, "MIG_DATA_WRITE", 3, "ENOSPC") == 0, "arm");
    long long loaded = C("mig_bytes_loaded");
    CHECK(mig_set(d.dev, MS(RESUMING), &fd) == 0, "RESUMING");
    CHECK(write(fd, img0, 100) == 100 && write(fd, img0 + 100, 100) == 100 &&
              IOERR(write(fd, img0 + 200, 100), ENOSPC) && C("mig_bytes_loaded") == loaded + 200,
          "write #3");
    CHECK(mig_write_all(fd, img0 + 200, FULL_LEN - 200, 3333) == 0, "the rest");
    CHECK(mig_set(d.dev, MS(RUNNING), NULL) == 0, "nothing stored by the failed write");
    close(fd);
    char a[512], b[512];
    CHECK(dev_state(0, a, sizeof(a)) == 0 && dev_state(1, b, sizeof(b)) == 0 && !strcmp(a, b),
          "restored");
    if (mig_supported(MS(PRE_COPY))) {
        uint64_t init, dirty;
        CHECK(mig_set(s.dev, MS(RUNNING), NULL) == 0 && mig_set(s.dev, MS(PRE_COPY), &fd) == 0,
              "PRE_COPY");
        CHECK(vfio_model_fail(ctl, "VFIO_MIG_GET_PRECOPY_INFO", 1, "EAGAIN") == 0, "arm");
        CHECK(IOERR(precopy_info(fd, &init, &dirty), EAGAIN), "info injected");
        CHECK(precopy_info(fd, &init, &dirty) == 0 && init == PRECOPY_LEN(17), "once");
        close(fd);
    }
    CHECK(C("faults_armed") == 0, "all spent");
    teardown(&s);
    teardown(&d);
    QUIET();
    return 0;
}

/* ----------------------------------------- dirty: drop knob, mark-dirty */

static int hwpt_dirty_bits(int fd, uint32_t hwpt, uint64_t iova, uint64_t len, uint64_t *bm,
                           size_t words)
{
    memset(bm, 0, words * 8);
    struct iommu_hwpt_get_dirty_bitmap g = { .size = sizeof(g), .hwpt_id = hwpt, .iova = iova,
                                             .length = len, .page_size = 4096,
                                             .data = (uintptr_t)bm };
    return ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g);
}

static int type1_dirty_bits(int c, uint64_t iova, uint64_t len, uint64_t *bm, size_t words)
{
    memset(bm, 0, words * 8);
    struct { struct vfio_iommu_type1_dirty_bitmap d; struct vfio_iommu_type1_dirty_bitmap_get g; } gb = {
        .d = { .argsz = sizeof(gb), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP },
        .g = { .iova = iova, .size = len,
               .bitmap = { .pgsize = 4096, .size = words * 8, .data = (__u64 *)bm } } };
    return ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &gb);
}

static long long mark(int dev, uint64_t iova, uint64_t len, uint64_t stride)
{
    return vfio_model_mark_dirty(ctl, dev, iova, len, stride);
}

static int t_drop_dirty(void)
{
    struct env e;
    if (setup_cdev(&e, "/dev/vfio/devices/vfio0", IOMMU_HWPT_ALLOC_DIRTY_TRACKING))
        return -1;
    struct iommu_hwpt_set_dirty_tracking sd = { .size = sizeof(sd), .hwpt_id = e.hwpt,
                                                .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE };
    CHECK(ioctl(e.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd) == 0, "enable");
    uint64_t bm[1];
    long long drop = C("dirty_pages_dropped");
    CHECK(vfio_model_set(ctl, "drop_dirty", 1) == 0 && C("drop_dirty") == 1, "drop on");
    CHECK(edu_dma(e.dev, 0x100000, 0, 64, 0, 0) == 0 && edu_dma(e.dev, 0x102ff0, 0, 64, 1, 0) == 0,
          "DMA write");
    CHECK(!memcmp(e.buf + 0x2ff0, e.buf, 64), "the write happened");
    CHECK(hwpt_dirty_bits(e.fd, e.hwpt, 0x100000, 8 * 4096, bm, 1) == 0 && bm[0] == 0,
          "dropped: 0x%llx", (unsigned long long)bm[0]);
    CHECK(C("dirty_pages_dropped") == drop + 2, "two pages dropped: %lld",
          C("dirty_pages_dropped") - drop);
    CHECK(mark(0, 0x100000, 8 * 4096, 1) == 0 && C("dirty_pages_dropped") == drop + 10,
          "mark-dirty dropped too");
    CHECK(vfio_model_set(ctl, "drop_dirty", 0) == 0, "drop off");
    CHECK(edu_dma(e.dev, 0x102ff0, 0, 64, 1, 0) == 0 &&
              hwpt_dirty_bits(e.fd, e.hwpt, 0x100000, 8 * 4096, bm, 1) == 0 && bm[0] == 0x0c,
          "marked again: 0x%llx", (unsigned long long)bm[0]);
    teardown(&e);
    /* type1 dirty logging */
    struct legacy l;
    static const int grp = 3;
    static const char *const bdf = "0000:00:03.0";
    if (legacy_open(&l, 1, &grp, &bdf))
        return -1;
    char *ram = pages(8);
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ |
                                          VFIO_DMA_MAP_FLAG_WRITE, .vaddr = (uintptr_t)ram,
                                          .iova = 0x100000, .size = 8 * 4096 };
    struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d),
                                               .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START };
    CHECK(ioctl(l.c, VFIO_IOMMU_MAP_DMA, &m) == 0 && ioctl(l.c, VFIO_IOMMU_DIRTY_PAGES, &d) == 0,
          "map, start");
    CHECK(bus_master(l.d[0]) == 0 && vfio_model_set(ctl, "drop_dirty", 1) == 0, "drop on");
    drop = C("dirty_pages_dropped");
    CHECK(edu_dma(l.d[0], 0x105000, 0, 64, 1, 0) == 0 &&
              type1_dirty_bits(l.c, 0x100000, 8 * 4096, bm, 1) == 0 && bm[0] == 0 &&
              C("dirty_pages_dropped") == drop + 1, "type1: dropped");
    CHECK(vfio_model_set(ctl, "drop_dirty", 0) == 0, "drop off");
    CHECK(edu_dma(l.d[0], 0x105000, 0, 64, 1, 0) == 0 &&
              type1_dirty_bits(l.c, 0x100000, 8 * 4096, bm, 1) == 0 && bm[0] == 0x20,
          "type1: marked 0x%llx", (unsigned long long)bm[0]);
    legacy_close(&l);
    munmap(ram, 8 * 4096);
    QUIET();
    return 0;
}

static int t_mark_dirty(void)
{
    struct env e;
    char out[128];
    if (setup_cdev(&e, "/dev/vfio/devices/vfio0", IOMMU_HWPT_ALLOC_DIRTY_TRACKING))
        return -1;
    CHECK(mark(0, 0x100000, 8 * 4096, 1) == -1 &&
              vfio_model_cmd(ctl, "mark-dirty 0 0x100000 0x8000 1", out, sizeof(out)) > 0 &&
              !strcmp(out, "error dirty tracking not enabled\n"), "tracking off: %s", out);
    struct iommu_hwpt_set_dirty_tracking sd = { .size = sizeof(sd), .hwpt_id = e.hwpt,
                                                .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE };
    CHECK(ioctl(e.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd) == 0, "enable");
    uint64_t bm[4];
    long long marked = C("dirty_pages_marked");
    /* 0x100000: 8 pages read-write, 0x200000: 4 pages read-only */
    CHECK(mark(0, 0x100000, 0x200000, 3) == 3, "every third page of the rw mapping");
    CHECK(hwpt_dirty_bits(e.fd, e.hwpt, 0x100000, 8 * 4096, bm, 1) == 0 && bm[0] == 0x49,
          "bits 0x%llx", (unsigned long long)bm[0]);
    CHECK(C("dirty_pages_marked") == marked + 3, "counted");
    CHECK(mark(0, 0x101000, 0x3000, 2) == 2 &&
              hwpt_dirty_bits(e.fd, e.hwpt, 0x100000, 8 * 4096, bm, 1) == 0 && bm[0] == 0x0a,
          "from IOVA 0x101000: 0x%llx", (unsigned long long)bm[0]);
    CHECK(mark(0, 0x1ff000, 0x6000, 1) == 0, "read-only and unmapped pages");
    CHECK(mark(0, 0x100000, 8 * 4096, 1) == 8 && mark(0, 0x100000, 8 * 4096, 1) == 8 &&
              C("dirty_pages_marked") == marked + 3 + 2 + 8, "already dirty: counted once");
    static const char *const bad[] = { "mark-dirty 0 0x100000 0x1000 0", "mark-dirty 0 0x100000 0 1",
                                       "mark-dirty 9 0x100000 0x1000 1", "mark-dirty 0 1 2",
                                       "mark-dirty 0 x 1 1", "mark-dirty 0 0x1000 0x1000 1 5",
                                       "mark-dirty 1 0x100000 0x1000 1",
                                       "mark-dirty 0 0xfffffffffffff000 0x2000 1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(vfio_model_cmd(ctl, bad[i], out, sizeof(out)) > 0 && !strncmp(out, "error ", 6),
              "%s: %s", bad[i], out);
    teardown(&e);
    QUIET();
    return 0;
}

/* ------------------------------- 64 GiB: map, mark, read back, timings */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char l[256];
    long v = -1;
    while (f && fgets(l, sizeof(l), f))
        if (!strncmp(l, "VmRSS:", 6))
            v = atol(l + 6);
    if (f)
        fclose(f);
    return v;
}

static uint64_t popcount(const uint64_t *bm, size_t words)
{
    uint64_t n = 0;
    for (size_t i = 0; i < words; i++)
        n += (uint64_t)__builtin_popcountll(bm[i]);
    return n;
}

#define BIG (64ULL << 30)
#define BIG_IOVA (1ULL << 36)
#define BIG_PAGES (BIG / 4096)
#define BIG_WORDS (BIG_PAGES / 64)

static char timings[1024];

static int t_dirty_64g(void)
{
    /* guest RAM that is never touched (QEMU: memory-backend-ram,reserve=off;
     * without MAP_NORESERVE the heuristic overcommit refuses 64 GiB here) */
    char *ram = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    uint64_t *bm = malloc(BIG_WORDS * 8);
    CHECK(ram != MAP_FAILED && bm, "mmap 64 GiB");
    memset(bm, 0, BIG_WORDS * 8);      /* the test's own bitmap: resident before rss0 */
    double limit = getenv("ASAN_OPTIONS") ? 10.0 : 1.0;  /* seconds, per operation */
    size_t o = 0;
    int fd, dev;
    uint32_t devid, ioas;
    CHECK(open_bound(0, &fd, &dev, &devid) == 0 && ioas_alloc(fd, &ioas) == 0, "bind");
    struct iommu_hwpt_alloc h = { .size = sizeof(h), .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
                                  .dev_id = devid, .pt_id = ioas };
    CHECK(ioctl(fd, IOMMU_HWPT_ALLOC, &h) == 0, "hwpt");
    uint32_t pt = h.out_hwpt_id;
    CHECK(attach(dev, &pt) == 0, "attach");
    long rss0 = rss_kib();
    double t0 = now();
    uint64_t iova = BIG_IOVA;
    CHECK(map(fd, ioas, ram, BIG, &iova, RW_FIXED) == 0, "IOAS_MAP 64 GiB");
    double tmap = now() - t0;
    CHECK(C("pinned_pages") == (long long)BIG_PAGES, "pinned %lld", C("pinned_pages"));
    struct iommu_hwpt_set_dirty_tracking sd = { .size = sizeof(sd), .hwpt_id = pt,
                                                .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE };
    CHECK(ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd) == 0, "enable");
    o += (size_t)snprintf(timings + o, sizeof(timings) - o, "iommufd: map %.3fs rss +%ldKiB;",
                          tmap, rss_kib() - rss0);
    CHECK(tmap < limit, "map took %.3fs", tmap);
    static const uint64_t strides[] = { 100, 10, 1 };
    for (int k = 0; k < 3; k++) {
        uint64_t want = (BIG_PAGES + strides[k] - 1) / strides[k];
        t0 = now();
        long long n = mark(0, BIG_IOVA, BIG, strides[k]);
        double tm = now() - t0;
        CHECK(n == (long long)want, "mark-dirty %lld of %llu", n, (unsigned long long)want);
        t0 = now();
        CHECK(hwpt_dirty_bits(fd, pt, BIG_IOVA, BIG, bm, BIG_WORDS) == 0, "bitmap");
        double tb = now() - t0;
        CHECK(popcount(bm, BIG_WORDS) == want, "%llu bits",
              (unsigned long long)popcount(bm, BIG_WORDS));
        CHECK((bm[0] & 1) && (strides[k] > 1 ? !(bm[0] & 2) : bm[BIG_WORDS - 1] == ~0ULL), "the pages");
        o += (size_t)snprintf(timings + o, sizeof(timings) - o, " %d%%: mark %.3fs bitmap %.3fs;",
                              (int)(100 / strides[k]), tm, tb);
        CHECK(tm < limit && tb < limit, "too slow: mark %.3fs bitmap %.3fs", tm, tb);
    }
    o += (size_t)snprintf(timings + o, sizeof(timings) - o, " rss +%ldKiB, dirty bitmaps %lldKiB;",
                          rss_kib() - rss0, C("dirty_bitmap_bytes") / 1024);
    CHECK(hwpt_dirty_bits(fd, pt, BIG_IOVA, BIG, bm, BIG_WORDS) == 0 && !popcount(bm, BIG_WORDS),
          "cleared by the read");
    t0 = now();
    CHECK(unmap(fd, ioas, BIG_IOVA, BIG, NULL) == 0, "unmap");
    o += (size_t)snprintf(timings + o, sizeof(timings) - o, " unmap %.3fs;", now() - t0);
    close(dev);
    close(fd);
    QUIET();
    /* type1 */
    struct legacy l;
    static const int grp = 3;
    static const char *const bdf = "0000:00:03.0";
    if (legacy_open(&l, 1, &grp, &bdf))
        return -1;
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ |
                                          VFIO_DMA_MAP_FLAG_WRITE, .vaddr = (uintptr_t)ram,
                                          .iova = BIG_IOVA, .size = BIG };
    rss0 = rss_kib();
    t0 = now();
    CHECK(ioctl(l.c, VFIO_IOMMU_MAP_DMA, &m) == 0, "MAP_DMA 64 GiB");
    tmap = now() - t0;
    struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d),
                                               .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START };
    CHECK(ioctl(l.c, VFIO_IOMMU_DIRTY_PAGES, &d) == 0, "start");
    t0 = now();
    long long n = mark(0, BIG_IOVA, BIG, 1);
    double tm = now() - t0;
    CHECK(n == (long long)BIG_PAGES, "mark-dirty %lld", n);
    t0 = now();
    CHECK(type1_dirty_bits(l.c, BIG_IOVA, BIG, bm, BIG_WORDS) == 0, "bitmap");
    double tb = now() - t0;
    CHECK(popcount(bm, BIG_WORDS) == BIG_PAGES, "bits");
    o += (size_t)snprintf(timings + o, sizeof(timings) - o,
                          " type1: map %.3fs, 100%%: mark %.3fs bitmap %.3fs, rss +%ldKiB, "
                          "dirty bitmaps %lldKiB", tmap, tm, tb, rss_kib() - rss0,
                          C("dirty_bitmap_bytes") / 1024);
    CHECK(tmap < limit && tm < limit && tb < limit, "too slow: %.400s", timings);
    struct vfio_iommu_type1_dma_unmap ua = { .argsz = sizeof(ua), .flags = VFIO_DMA_UNMAP_FLAG_ALL };
    CHECK(ioctl(l.c, VFIO_IOMMU_UNMAP_DMA, &ua) == 0, "unmap");
    legacy_close(&l);
    munmap(ram, BIG);
    free(bm);
    QUIET();
    snprintf(why, sizeof(why), "%.500s", timings);
    return 0;
}


int main(int argc, char **argv)
{
    prefix = argc > 1 ? argv[1] : "model-unit";
    const char *cp = getenv("VFIO_MODEL_CONTROL");
    ctl = cp ? vfio_model_connect(cp) : -1;
    if (ctl < 0) {
        printf("FAIL: %s/control: cannot connect to VFIO_MODEL_CONTROL\n", prefix);
        return 1;
    }
    if (argc > 2 && !strcmp(argv[2], "leave-open")) {
        /* exits with objects alive: the strict exit report must see them */
        int fd = open("/dev/iommu", O_RDWR);
        uint32_t ioas;
        char out[4096];
        int ok = fd >= 0 && ioas_alloc(fd, &ioas) == 0 &&
                 vfio_model_cmd(ctl, "objects", out, sizeof(out)) > 0 && strstr(out, " ioas id=") &&
                 strstr(out, "end\n");
        printf(ok ? "PASS: %s/objects-listing\n" : "FAIL: %s/objects-listing: %s\n", prefix, out);
        return ok ? 0 : 1;
    }
    if (argc > 2 && !strcmp(argv[2], "hotreset")) {
        run("hot-reset-info-group", t_hr_info_group);
        run("hot-reset-group", t_hr_reset_group);
        run("hot-reset-info-cdev", t_hr_info_cdev);
        run("hot-reset-cdev", t_hr_reset_cdev);
        run("no-flr", t_hr_no_flr);
        vfio_model_close(ctl);
        return nfail ? 1 : 0;
    }
    if (argc > 2 && !strcmp(argv[2], "resv")) {
        run("device-resv-iommufd", t_resv_iommufd);
        run("device-resv-type1", t_resv_type1);
        vfio_model_close(ctl);
        return nfail ? 1 : 0;
    }
    if (argc > 2 && !strcmp(argv[2], "nobar2")) {
        run("no-bar2", t_no_bar2);
        vfio_model_close(ctl);
        return nfail ? 1 : 0;
    }
    if (argc > 2 && !strcmp(argv[2], "mig")) {
        /* VFIO_MODEL_MIGRATION set (see model/check) */
        run("mig-feature", t_mig_feature);
        run("mig-fsm", t_mig_fsm);
        run("mig-roundtrip", t_mig_roundtrip);
        if (mig_supported(VFIO_DEVICE_STATE_PRE_COPY))
            run("mig-precopy", t_mig_precopy);
        run("mig-corrupt-stream", t_mig_corrupt);
        run("mig-stopped-no-dma", t_mig_stopped);
        if (mig_supported(VFIO_DEVICE_STATE_RUNNING_P2P))
            run("mig-p2p-quiesced", t_mig_p2p);
        run("mig-data-fd", t_mig_datafd);
        run("mig-fault-injection", t_mig_faults);
        vfio_model_close(ctl);
        return nfail ? 1 : 0;
    }
    if (argc > 2 && !strcmp(argv[2], "spapr")) {
        run("spapr-tce-v2", t_spapr);
        vfio_model_close(ctl);
        return nfail ? 1 : 0;
    }
    run("sysfs-layout", t_sysfs);
    run("ucmd-size-checks", t_ucmd_size);
    run("ioas-map-unmap", t_ioas_map);
    run("option-allow-iovas", t_allow_option);
    run("cdev-bind-attach", t_cdev_bind_attach);
    run("edu-registers", t_edu_regs);
    run("dma-dirty-faults", t_dma_dirty);
    run("copy-pin-accounting", t_copy_pin);
    run("irqs-intx-msi", t_irqs);
    run("legacy-type1", t_type1);
    run("fault-injection", t_fault_injection);
    run("populate", t_populate);
    run("fail-nth-alloc", t_fail_nth_alloc);
    run("fail-nth-ioctl", t_fail_nth_ioctl);
    run("dup-fd", t_dup_and_spapr_off);
    run("hot-reset-none", t_hot_reset_none);
    run("bar2-mmap", t_bar2);
    run("bar2-type1-p2p", t_bar2_type1);
    run("mig-off", t_mig_off);
    run("drop-dirty", t_drop_dirty);
    run("mark-dirty", t_mark_dirty);
    run("dirty-64g", t_dirty_64g);
    vfio_model_close(ctl);
    return nfail ? 1 : 0;
}
