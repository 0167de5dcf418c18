/*
 * bench/floor.c: the kernel floor for pinning + mapping guest RAM through
 * iommufd, measured with raw ioctls (no QEMU).
 *
 *   floor [-d CDEV_A] [-D CDEV_B] [-s GIB,GIB,...] [-r REPS] [-t THREADS]
 *         [-m MODE,MODE,...] [-c GIB] [-i IOVA]
 *
 * Opens /dev/iommu, binds CDEV_A (default /dev/vfio/devices/vfio0) with
 * VFIO_DEVICE_BIND_IOMMUFD, allocates an IOAS and attaches the device to
 * it (VFIO_DEVICE_ATTACH_IOMMUFD_PT), so that IOMMU_IOAS_MAP really pins
 * the pages and fills the IOMMU page table.  For every size S and every
 * mode it mmaps S bytes of fresh anonymous memory (untouched, so every
 * page is faulted in by the kernel's pin or by populate), times the mode
 * with CLOCK_MONOTONIC, then unmaps the IOVA range and munmaps the memory
 * (not timed; printed as "teardown").  Sizes are interleaved: for each
 * repetition, every size, every mode.
 *
 * Modes (THREADS = N, default 2; threads get disjoint, page-aligned
 * parts of the buffer; thread creation is inside the timed interval):
 *   map1     one IOMMU_IOAS_MAP of the whole buffer, one thread
 *   mapN     N threads, each IOMMU_IOAS_MAP of its part, IOVA = base + offset
 *   popN+map N threads madvise(MADV_POPULATE_WRITE) their part, then one
 *            IOMMU_IOAS_MAP of the whole buffer (prints the two phases too)
 *   popN     N threads madvise(MADV_POPULATE_WRITE) only (no map)
 *   pop1+map one thread: MADV_POPULATE_WRITE of the whole, then one map
 *   ovlN     what our QEMU does (hw/vfio/listener.c, map-threads): one
 *            thread maps the whole buffer in one IOMMU_IOAS_MAP while
 *            N-1 threads populate it in 64 MiB chunks from its end, last
 *            chunk first, until no chunk is left (prints map= and the
 *            wait for the populating threads after it, join=)
 *   ovlN-stop  ovlN, but the populating threads take no new chunk once
 *            the map has returned
 *   chunkN   N threads IOMMU_IOAS_MAP 64 MiB chunks taken in order from
 *            a shared counter (one IOAS area per chunk)
 *
 * -c GIB (0 = skip; default 1): pinned-memory accounting with two IOAS.
 * CDEV_B (default /dev/vfio/devices/vfio1) is bound and attached to a
 * second IOAS B (with VT-d each device may have its own IOAS), so a
 * mapping in B pins too.  Map GIB into IOAS A, then either
 * IOMMU_IOAS_COPY it into B or IOMMU_IOAS_MAP the same memory again into
 * B; VmPin and VmLck of /proc/self/status are printed after each step.
 * Done twice: as is (root has CAP_IPC_LOCK: the kernel accounts only
 * mm->pinned_vm = VmPin), and with CAP_IPC_LOCK dropped and
 * IOMMU_OPTION_RLIMIT_MODE = 1 (accounting to the mm: VmLck as well).
 *
 * Output, one result a line (the bench/run harness parses these):
 *   FLOOR size=<GiB> mode=<mode> threads=<n> rep=<r> secs=<s> [phase=...]
 *   PIN mode=<as-root|mm> step=<step> VmPin=<kB> VmLck=<kB>
 * Other lines start with "floor:".  Exit status 0 if everything worked.
 *
 * Build: gcc -static -O2 -pthread $(e2e/lib/headers) -o floor bench/floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "../e2e/lib/ioas.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23      /* asm-generic/mman-common.h, 5.14+ */
#endif

#define GIB (1ULL << 30)

static int iommufd = -1;
static uint64_t iova_base = 1ULL << 32;     /* above the MSI window */
static int failures;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("floor: error: ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct dev {
    const char *path;
    int fd;
    uint32_t devid;
};

static void dev_bind(struct dev *d)
{
    struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };

    d->fd = open(d->path, O_RDWR | O_CLOEXEC);
    if (d->fd < 0)
        die("open %s: %s", d->path, strerror(errno));
    if (ioctl(d->fd, VFIO_DEVICE_BIND_IOMMUFD, &b))
        die("%s: VFIO_DEVICE_BIND_IOMMUFD: %s", d->path, strerror(errno));
    d->devid = b.out_devid;
}

static void dev_attach(struct dev *d, uint32_t pt)
{
    struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = pt };

    if (ioctl(d->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
        die("%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT(%u): %s", d->path, pt, strerror(errno));
    printf("floor: %s (dev_id %u) attached to ioas %u (pt %u)\n", d->path,
           d->devid, pt, at.pt_id);
}

static void dev_detach(struct dev *d)
{
    struct vfio_device_detach_iommufd_pt dt = { .argsz = sizeof(dt) };

    if (ioctl(d->fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt))
        printf("floor: %s: VFIO_DEVICE_DETACH_IOMMUFD_PT: %s\n", d->path, strerror(errno));
}

static uint32_t ioas_alloc(void)
{
    struct iommu_ioas_alloc a = { .size = sizeof(a) };

    if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &a))
        die("IOMMU_IOAS_ALLOC: %s", strerror(errno));
    return a.out_ioas_id;
}

static void destroy(uint32_t id)
{
    struct iommu_destroy d = { .size = sizeof(d), .id = id };

    if (ioctl(iommufd, IOMMU_DESTROY, &d))
        printf("floor: IOMMU_DESTROY(%u): %s\n", id, strerror(errno));
}

static int ioas_map(uint32_t ioas, void *va, uint64_t len, uint64_t iova)
{
    return ioas_map_fixed(iommufd, ioas, va, len, iova);
}

static void ioas_unmap_all(uint32_t ioas)
{
    struct iommu_ioas_unmap u = {
        .size = sizeof(u), .ioas_id = ioas, .iova = 0, .length = UINT64_MAX,
    };

    if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &u) && errno != ENOENT)
        printf("floor: IOMMU_IOAS_UNMAP(all, ioas %u): %s\n", ioas, strerror(errno));
}

/* IOVA range check: [iova_base, iova_base + len) must lie in one range */
static void check_iova(uint32_t ioas, uint64_t len)
{
    struct iommu_iova_range r[16];
    struct iommu_ioas_iova_ranges q = {
        .size = sizeof(q), .ioas_id = ioas, .num_iovas = 16,
        .allowed_iovas = (uintptr_t)r,
    };

    if (ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, &q))
        die("IOMMU_IOAS_IOVA_RANGES: %s", strerror(errno));
    for (unsigned i = 0; i < q.num_iovas && i < 16; i++) {
        printf("floor: ioas %u iova range 0x%llx-0x%llx\n", ioas,
               (unsigned long long)r[i].start, (unsigned long long)r[i].last);
        if (r[i].start <= iova_base && iova_base + len - 1 <= r[i].last)
            return;
    }
    die("iova 0x%" PRIx64 " + %" PRIu64 " bytes is outside the IOAS ranges",
        iova_base, len);
}

/* ---- workers ---- */

enum op { OP_MAP, OP_POP };
struct job {
    enum op op;
    uint32_t ioas;
    char *va;
    uint64_t len, iova;
    int err;
    pthread_t th;
};

static void *worker(void *p)
{
    struct job *j = p;

    if (j->op == OP_MAP)
        j->err = ioas_map(j->ioas, j->va, j->len, j->iova);
    else
        j->err = madvise(j->va, j->len, MADV_POPULATE_WRITE) ? errno : 0;
    return NULL;
}

/* run OP on [va, va+len) split in n page-aligned parts; returns first errno */
static int parallel(enum op op, int n, uint32_t ioas, char *va, uint64_t len)
{
    struct job j[64];
    uint64_t page = 4096, per = (len / n + page - 1) / page * page, off = 0;
    int err = 0;

    for (int i = 0; i < n; i++) {
        uint64_t l = i == n - 1 ? len - off : per;
        j[i] = (struct job){ .op = op, .ioas = ioas, .va = va + off, .len = l,
                             .iova = iova_base + off };
        off += l;
        if (n == 1)
            worker(&j[i]);
        else if (pthread_create(&j[i].th, NULL, worker, &j[i]))
            die("pthread_create");
    }
    for (int i = 0; i < n; i++) {
        if (n > 1)
            pthread_join(j[i].th, NULL);
        if (j[i].err && !err)
            err = j[i].err;
    }
    return err;
}

/* ---- chunked modes (ovlN, ovlN-stop, chunkN) ---- */

#define CHUNK (64ULL << 20)

struct chunked {
    enum op op;                 /* OP_POP: from the end; OP_MAP: in order */
    uint32_t ioas;
    char *va;
    uint64_t len, nr;
    uint64_t next;              /* atomic: chunks taken */
    int stop;                   /* atomic: the map has returned */
    int use_stop;
    int err;                    /* atomic: first errno */
};

static void *chunk_worker(void *p)
{
    struct chunked *c = p;
    uint64_t i;

    while (!(c->use_stop && __atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) &&
           (i = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED)) < c->nr) {
        uint64_t k = c->op == OP_POP ? c->nr - 1 - i : i;
        uint64_t off = k * CHUNK, l = c->len - off < CHUNK ? c->len - off : CHUNK;
        int e;

        if (c->op == OP_POP)
            e = madvise(c->va + off, l, MADV_POPULATE_WRITE) ? errno : 0;
        else
            e = ioas_map(c->ioas, c->va + off, l, iova_base + off);
        if (e) {
            int zero = 0;
            __atomic_compare_exchange_n(&c->err, &zero, e, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

/*
 * ovl (map on the calling thread, n-1 populating from the end) or chunked
 * maps on n threads; *map_s and *join_s get the map's time and the wait
 * for the others after it (ovl only).
 */
static int chunked(enum op op, int n, int use_stop, uint32_t ioas, char *va,
                   uint64_t len, double *map_s, double *join_s)
{
    struct chunked c = { .op = op, .ioas = ioas, .va = va, .len = len,
                         .nr = (len + CHUNK - 1) / CHUNK, .use_stop = use_stop };
    pthread_t th[64];
    int helpers = op == OP_POP ? n - 1 : n, err;
    double t0 = now(), t1;

    for (int i = 0; i < helpers; i++)
        if (pthread_create(&th[i], NULL, chunk_worker, &c))
            die("pthread_create");
    if (op == OP_POP) {
        err = ioas_map(ioas, va, len, iova_base);
        __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    } else {
        err = 0;
    }
    t1 = now();
    for (int i = 0; i < helpers; i++)
        pthread_join(th[i], NULL);
    *map_s = t1 - t0;
    *join_s = now() - t1;
    return err ? err : c.err;
}

static char *fresh(uint64_t len)
{
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap %" PRIu64 ": %s", len, strerror(errno));
    /* as QEMU does for guest RAM; without THP in the kernel it fails */
    madvise(p, len, MADV_HUGEPAGE);
    return p;
}

static void run_mode(const char *mode, int n, uint32_t ioas, double gib, int rep)
{
    uint64_t len = (uint64_t)(gib * GIB);
    char *va = fresh(len);
    double t0 = now(), t1 = 0, t2;
    int err = 0, thr = n;
    char phase[128] = "";

    if (!strcmp(mode, "map1")) {
        thr = 1;
        err = parallel(OP_MAP, 1, ioas, va, len);
    } else if (!strcmp(mode, "mapN")) {
        err = parallel(OP_MAP, n, ioas, va, len);
    } else if (!strcmp(mode, "popN+map") || !strcmp(mode, "pop1+map")) {
        if (mode[3] == '1')
            thr = 1;
        err = parallel(OP_POP, thr, ioas, va, len);
        t1 = now();
        if (!err)
            err = parallel(OP_MAP, 1, ioas, va, len);
    } else if (!strcmp(mode, "popN")) {
        err = parallel(OP_POP, n, ioas, va, len);
    } else if (!strcmp(mode, "ovlN") || !strcmp(mode, "ovlN-stop")) {
        double m, j;

        err = chunked(OP_POP, n, mode[4] == '-', ioas, va, len, &m, &j);
        snprintf(phase, sizeof(phase), " map=%.3f join=%.3f", m, j);
    } else if (!strcmp(mode, "chunkN")) {
        double m, j;

        err = chunked(OP_MAP, n, 0, ioas, va, len, &m, &j);
    } else {
        die("unknown mode %s", mode);
    }
    t2 = now();
    if (t1)
        snprintf(phase, sizeof(phase), " populate=%.3f map=%.3f", t1 - t0, t2 - t1);
    double td = now();
    ioas_unmap_all(ioas);
    munmap(va, len);
    td = now() - td;
    if (err) {
        printf("floor: FAILED size=%g mode=%s: %s\n", gib, mode, strerror(err));
        failures++;
        return;
    }
    printf("FLOOR size=%g mode=%s threads=%d rep=%d secs=%.3f%s teardown=%.3f\n",
           gib, mode, thr, rep, t2 - t0, phase, td);
    fflush(stdout);
}

/* ---- pinned accounting ---- */

static void status_kb(long *pin, long *lck)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");

    *pin = *lck = -1;
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "VmPin: %ld", pin);
        sscanf(line, "VmLck: %ld", lck);
    }
    fclose(f);
}

static void pin_report(const char *acct, const char *step)
{
    long pin, lck;

    status_kb(&pin, &lck);
    printf("PIN mode=%s step=%s VmPin=%ld VmLck=%ld\n", acct, step, pin, lck);
    fflush(stdout);
}

static int drop_ipc_lock(void)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[2];

    if (syscall(SYS_capget, &h, d))
        return errno;
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
    return syscall(SYS_capset, &h, d) ? errno : 0;
}

/* one copy-vs-map experiment on a fresh iommufd; acct: "as-root" or "mm" */
static void pin_test(const char *acct, struct dev *a, struct dev *b, double gib)
{
    uint64_t len = (uint64_t)(gib * GIB);

    iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
    if (iommufd < 0)
        die("open /dev/iommu: %s", strerror(errno));
    if (!strcmp(acct, "mm")) {
        struct iommu_option o = {
            .size = sizeof(o), .option_id = IOMMU_OPTION_RLIMIT_MODE,
            .op = IOMMU_OPTION_OP_SET, .val64 = 1,
        };
        if (ioctl(iommufd, IOMMU_OPTION, &o))
            die("IOMMU_OPTION(RLIMIT_MODE=1): %s", strerror(errno));
    }
    dev_bind(a);
    dev_bind(b);
    uint32_t ia = ioas_alloc(), ib = ioas_alloc();
    dev_attach(a, ia);
    dev_attach(b, ib);

    for (int variant = 0; variant < 2; variant++) {
        const char *how = variant ? "map" : "copy";
        char step[64];
        char *va = fresh(len);
        double t;
        int e;

        snprintf(step, sizeof(step), "%s:before", how);
        pin_report(acct, step);
        t = now();
        if ((e = ioas_map(ia, va, len, iova_base)))
            die("IOMMU_IOAS_MAP into A: %s", strerror(e));
        printf("floor: pin(%s) map %g GiB into ioas A: %.3f s\n", acct, gib, now() - t);
        snprintf(step, sizeof(step), "%s:A-mapped", how);
        pin_report(acct, step);
        t = now();
        if (variant == 0) {
            struct iommu_ioas_copy c = {
                .size = sizeof(c),
                .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                         IOMMU_IOAS_MAP_WRITEABLE,
                .dst_ioas_id = ib, .src_ioas_id = ia, .length = len,
                .dst_iova = iova_base, .src_iova = iova_base,
            };
            if (ioctl(iommufd, IOMMU_IOAS_COPY, &c))
                die("IOMMU_IOAS_COPY A -> B: %s", strerror(errno));
        } else if ((e = ioas_map(ib, va, len, iova_base))) {
            die("IOMMU_IOAS_MAP into B: %s", strerror(e));
        }
        printf("floor: pin(%s) %s %g GiB into ioas B: %.3f s\n", acct,
               variant ? "IOAS_MAP again" : "IOAS_COPY", gib, now() - t);
        snprintf(step, sizeof(step), "%s:A+B", how);
        pin_report(acct, step);
        ioas_unmap_all(ib);
        ioas_unmap_all(ia);
        munmap(va, len);
        snprintf(step, sizeof(step), "%s:after-unmap", how);
        pin_report(acct, step);
    }
    dev_detach(a);
    dev_detach(b);
    destroy(ia);
    destroy(ib);
    close(a->fd);
    close(b->fd);
    close(iommufd);
    iommufd = -1;
}

int main(int argc, char **argv)
{
    struct dev a = { .path = "/dev/vfio/devices/vfio0" };
    struct dev b = { .path = "/dev/vfio/devices/vfio1" };
    char sizes[256] = "1,2,4", modes[256] = "map1,mapN,popN+map,popN,pop1+map";
    int reps = 1, n = 2, opt;
    double copy_gib = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt(argc, argv, "d:D:s:r:t:m:c:i:")) != -1) {
        switch (opt) {
        case 'd': a.path = optarg; break;
        case 'D': b.path = optarg; break;
        case 's': snprintf(sizes, sizeof(sizes), "%s", optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 't': n = atoi(optarg); break;
        case 'm': snprintf(modes, sizeof(modes), "%s", optarg); break;
        case 'c': copy_gib = atof(optarg); break;
        case 'i': iova_base = strtoull(optarg, NULL, 0); break;
        default:
            fprintf(stderr, "usage: floor [-d CDEV_A] [-D CDEV_B] [-s GIB,...] "
                    "[-r REPS] [-t THREADS] [-m MODE,...] [-c GIB] [-i IOVA]\n");
            return 2;
        }
    }
    if (n < 1 || n > 64)
        die("threads must be 1..64");

    /* no RLIMIT_MEMLOCK surprises when CAP_IPC_LOCK is dropped */
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
    if (setrlimit(RLIMIT_MEMLOCK, &rl))
        printf("floor: setrlimit(MEMLOCK, inf): %s\n", strerror(errno));

    double maxgib = 0;
    {
        char tmp[256], *s, *save;
        snprintf(tmp, sizeof(tmp), "%s", sizes);
        for (s = strtok_r(tmp, ",", &save); s; s = strtok_r(NULL, ",", &save))
            if (atof(s) > maxgib)
                maxgib = atof(s);
    }

    if (maxgib > 0 && strcmp(modes, "none")) {
        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (iommufd < 0)
            die("open /dev/iommu: %s", strerror(errno));
        dev_bind(&a);
        uint32_t ioas = ioas_alloc();
        dev_attach(&a, ioas);
        check_iova(ioas, (uint64_t)(maxgib * GIB));
        printf("floor: threads N=%d, sizes %s GiB, %d repetition(s), iova base 0x%" PRIx64 "\n",
               n, sizes, reps, iova_base);
        for (int r = 1; r <= reps; r++) {
            char tmp[256], *s, *save;
            snprintf(tmp, sizeof(tmp), "%s", sizes);
            for (s = strtok_r(tmp, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
                char mt[256], *m, *save2;
                snprintf(mt, sizeof(mt), "%s", modes);
                for (m = strtok_r(mt, ",", &save2); m; m = strtok_r(NULL, ",", &save2))
                    run_mode(m, n, ioas, atof(s), r);
            }
        }
        dev_detach(&a);
        destroy(ioas);
        close(a.fd);
        close(iommufd);
        iommufd = -1;
    }

    if (copy_gib > 0) {
        pin_test("as-root", &a, &b, copy_gib);
        int e = drop_ipc_lock();
        if (e)
            printf("floor: cannot drop CAP_IPC_LOCK: %s (skipping mm accounting)\n",
                   strerror(e));
        else
            pin_test("mm", &a, &b, copy_gib);
    }
    printf("floor: done, %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
