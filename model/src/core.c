/*
 * vfio-model core: interposition of libc calls, fd table, configuration,
 * counters, fault injection, control socket and exit report.
 */
#include "model.h"
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <dirent.h>

struct config cfg;
pthread_mutex_t model_lock = PTHREAD_MUTEX_INITIALIZER;
struct counters cnt;
struct mdev devs[MAX_DEVS];
struct group groups[MAX_DEVS];
int ngroups;

/* ---------------------------------------------------------------- raw I/O */

long sys_write(int fd, const void *b, size_t n) { return syscall(SYS_write, fd, b, n); }
long sys_read(int fd, void *b, size_t n) { return syscall(SYS_read, fd, b, n); }
int sys_close(int fd) { return (int)syscall(SYS_close, fd); }
static int sys_fstat(int fd, struct stat *st) { return (int)syscall(SYS_fstat, fd, st); }

/* ------------------------------------------------------- real functions */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
static open_fn real_open, real_open64;
static openat_fn real_openat, real_openat64;
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pread64)(int, void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_madvise)(void *, size_t, int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fstat)(int, struct stat *);
static int (*real_fstat64)(int, struct stat64 *);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static int (*real_fstatat64)(int, const char *, struct stat64 *, int);
static int (*real_stat)(const char *, struct stat *);
static int (*real_stat64)(const char *, struct stat64 *);
static int (*real_lstat)(const char *, struct stat *);
static int (*real_lstat64)(const char *, struct stat64 *);
static int (*real_access)(const char *, int);

#define RESOLVE(v, n) do { if (!(v)) *(void **)&(v) = dlsym(RTLD_NEXT, n); } while (0)

static void resolve_all(void)
{
    RESOLVE(real_open, "open"); RESOLVE(real_open64, "open64");
    RESOLVE(real_openat, "openat"); RESOLVE(real_openat64, "openat64");
    RESOLVE(real_close, "close"); RESOLVE(real_ioctl, "ioctl");
    RESOLVE(real_read, "read"); RESOLVE(real_write, "write");
    RESOLVE(real_pread, "pread"); RESOLVE(real_pwrite, "pwrite");
    RESOLVE(real_pread64, "pread64"); RESOLVE(real_pwrite64, "pwrite64");
    RESOLVE(real_mmap, "mmap"); RESOLVE(real_mmap64, "mmap64");
    RESOLVE(real_dup, "dup"); RESOLVE(real_dup2, "dup2"); RESOLVE(real_dup3, "dup3");
    RESOLVE(real_fstat, "fstat"); RESOLVE(real_fstat64, "fstat64");
    RESOLVE(real_fstatat, "fstatat"); RESOLVE(real_fstatat64, "fstatat64");
    RESOLVE(real_stat, "stat"); RESOLVE(real_stat64, "stat64");
    RESOLVE(real_lstat, "lstat"); RESOLVE(real_lstat64, "lstat64");
    RESOLVE(real_access, "access");
}

/* ------------------------------------------------------------- fd table */

#define FDMAX 65536
static struct mfile *fdmap[FDMAX];
static struct mfile *files;
static bool model_used;     /* this process opened or adopted a model fd */

static const char *kind_name[FK_NKINDS] = {
    [FK_IOMMU] = "iommu", [FK_CONTAINER] = "container", [FK_GROUP] = "group",
    [FK_CDEV] = "cdev", [FK_DEVICE] = "device", [FK_MIGDATA] = "migdata",
};

static void fd_set_file(int fd, struct mfile *f)
{
    if (fd < 0 || fd >= FDMAX)
        return;
    if (fdmap[fd]) {
        fdmap[fd]->nfds--;
        cnt.fds[fdmap[fd]->kind]--;
    }
    fdmap[fd] = f;
    if (f) {
        f->nfds++;
        cnt.fds[f->kind]++;
    }
}

static ino_t fd_ino(int fd)
{
    struct stat st;
    if (sys_fstat(fd, &st) < 0)
        return 0;
    return st.st_ino;
}

static struct mfile *file_by_ino(ino_t ino)
{
    for (struct mfile *f = files; f; f = f->next)
        if (f->ino == ino && !f->released)
            return f;
    return NULL;
}

/* Create a memfd-backed model file. Called with the lock held. */
struct mfile *file_new(enum fkind kind, const char *tag, int cloexec, int *fdout)
{
    char name[96];
    snprintf(name, sizeof(name), "vfio-model:%s", tag);
    int fd = (int)syscall(SYS_memfd_create, name, cloexec ? MFD_CLOEXEC : 0);
    if (fd < 0)
        return NULL;
    if (fd >= FDMAX) {
        sys_close(fd);
        errno = EMFILE;
        return NULL;
    }
    struct mfile *f = calloc(1, sizeof(*f));
    if (!f) {
        sys_close(fd);
        errno = ENOMEM;
        return NULL;
    }
    model_used = true;
    f->kind = kind;
    f->ino = fd_ino(fd);
    f->next = files;
    files = f;
    fd_set_file(fd, f);
    *fdout = fd;
    return f;
}

static void file_unlink(struct mfile *f)
{
    for (struct mfile **p = &files; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    free(f);
}

/* Drop a file once no fd refers to it: the kernel's ->release(). */
static void file_release(struct mfile *f)
{
    f->released = true;
    switch (f->kind) {
    case FK_IOMMU: iommufd_release(f->ictx); break;
    case FK_CONTAINER: container_release(f->ctr); break;
    case FK_GROUP: group_release(f->grp); break;
    case FK_CDEV:
    case FK_DEVICE: devfile_release(f->df); break;
    case FK_MIGDATA: migdata_release(f->ms); break;
    default: break;
    }
    file_unlink(f);
}

/* Is there another fd in this process on the same inode (an unseen dup)? */
static int find_other_fd(ino_t ino, int except)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    int found = -1;
    int dfd = dirfd(d);
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == except || fd == dfd)
            continue;
        if (fd < FDMAX && fdmap[fd])
            continue;
        struct stat st;
        if (sys_fstat(fd, &st) == 0 && st.st_ino == ino && S_ISREG(st.st_mode)) {
            char p[64], l[128];
            snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
            ssize_t n = readlink(p, l, sizeof(l) - 1);
            if (n > 0) {
                l[n] = 0;
                if (strstr(l, "memfd:vfio-model:")) {
                    found = fd;
                    break;
                }
            }
        }
    }
    closedir(d);
    return found;
}

void file_put_check(struct mfile *f)
{
    if (f->nfds > 0 || f->released)
        return;
    int other = find_other_fd(f->ino, -1);
    if (other >= 0) {
        fd_set_file(other, f);
        return;
    }
    file_release(f);
}

/* Adopt an fd this process did not open through us (inherited, passed with
 * SCM_RIGHTS, dup'ed): recognised by its memfd name. */
static struct mfile *adopt(int fd)
{
    char p[64], l[256];
    snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, l, sizeof(l) - 1);
    if (n <= 0)
        return NULL;
    l[n] = 0;
    const char *m = strstr(l, "memfd:vfio-model:");
    if (!m)
        return NULL;
    m += strlen("memfd:vfio-model:");
    char tag[128];
    snprintf(tag, sizeof(tag), "%s", m);
    char *sp = strstr(tag, " (deleted)");
    if (sp)
        *sp = 0;
    ino_t ino = fd_ino(fd);
    struct mfile *f = file_by_ino(ino);
    if (f) {                        /* a dup of a file we know */
        fd_set_file(fd, f);
        return f;
    }
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->ino = ino;
    int ok = 0;
    if (!strcmp(tag, "iommu")) {
        f->kind = FK_IOMMU;
        ok = iommufd_open(f) == 0;
    } else if (!strcmp(tag, "container")) {
        f->kind = FK_CONTAINER;
        ok = container_open(f) == 0;
    } else if (!strncmp(tag, "group:", 6)) {
        f->kind = FK_GROUP;
        ok = group_open(f, atoi(tag + 6)) == 0;
    } else if (!strncmp(tag, "cdev:vfio", 9)) {
        f->kind = FK_CDEV;
        ok = cdev_open(f, atoi(tag + 9)) == 0;
    }
    /* "device:<bdf>" and "migdata:vfio<i>" fds belong to another
     * process's device state and cannot be adopted. */
    if (!ok) {
        free(f);
        return NULL;
    }
    f->next = files;
    files = f;
    fd_set_file(fd, f);
    cnt.adopted++;
    model_used = true;
    return f;
}

/* Look up a model fd; verify the inode so a recycled fd number is not
 * mistaken for a model file. */
static struct mfile *lookup(int fd, bool try_adopt)
{
    if (fd < 0 || fd >= FDMAX)
        return NULL;
    struct mfile *f = fdmap[fd];
    if (f) {
        if (fd_ino(fd) == f->ino)
            return f;
        fd_set_file(fd, NULL);
        file_put_check(f);
    }
    return try_adopt ? adopt(fd) : NULL;
}

struct mfile *lookup_fd_locked(int fd)
{
    return lookup(fd, true);
}

/* The model file of @kind behind a user-supplied fd, checked like the
 * kernel's fdget() plus a file type test: -EBADF when @fd is not an open
 * fd, -@wrong when it is one but not a model file of that kind. */
long model_fd_get(int fd, enum fkind kind, int wrong, struct mfile **out)
{
    struct mfile *f = fd < 0 ? NULL : lookup(fd, true);
    if (!f)
        return fd < 0 || fcntl(fd, F_GETFD) < 0 ? -EBADF : -wrong;
    if (f->kind != kind)
        return -wrong;
    *out = f;
    return 0;
}

/* Remove the ranges cut[] from the n ranges in out[] (MAX_RANGES
 * entries); returns the new count. */
int ranges_minus(struct range *out, int n, const struct range *cut, int ncut)
{
    for (int h = 0; h < ncut; h++) {
        struct range hole = cut[h];
        struct range tmp[MAX_RANGES];
        int m = 0;
        for (int i = 0; i < n && m < MAX_RANGES - 1; i++) {
            struct range r = out[i];
            if (hole.last < r.start || hole.start > r.last) {
                tmp[m++] = r;
                continue;
            }
            if (hole.start > r.start)
                tmp[m++] = (struct range){ r.start, hole.start - 1 };
            if (hole.last < r.last)
                tmp[m++] = (struct range){ hole.last + 1, r.last };
        }
        memcpy(out, tmp, sizeof(tmp[0]) * (size_t)m);
        n = m;
    }
    return n;
}

/* The configured reserved holes (VFIO_MODEL_IOVA_HOLES) */
int ranges_minus_holes(struct range *out, int n)
{
    return ranges_minus(out, n, cfg.holes, cfg.nholes);
}

/* The extra reserved ranges of device vfio<idx> (VFIO_MODEL_DEVICE_RESV)
 * into out[] (MAX_DEV_RESV entries); returns their number. */
int dev_resv(int idx, struct range *out)
{
    int n = 0;
    for (int i = 0; i < cfg.nresv; i++)
        if (cfg.resv[i].dev == idx)
            out[n++] = cfg.resv[i].r;
    return n;
}

/* Does [start, last] intersect one of the n ranges? */
bool ranges_overlap(const struct range *rs, int n, uint64_t start, uint64_t last)
{
    for (int i = 0; i < n; i++)
        if (!(last < rs[i].start || start > rs[i].last))
            return true;
    return false;
}

/* ------------------------------------------------------- configuration */

static uint64_t env_u64(const char *n, uint64_t def)
{
    const char *v = getenv(n);
    return v && *v ? strtoull(v, NULL, 0) : def;
}

/* "i,j,...": a set of small numbers (0..63) as a bit mask */
static uint64_t env_bits(const char *n)
{
    const char *v = getenv(n);
    uint64_t bits = 0;
    if (!v || !*v)
        return 0;
    char *t = strdup(v), *sv = NULL;
    for (char *g = strtok_r(t, ",", &sv); g; g = strtok_r(NULL, ",", &sv))
        if (atoi(g) >= 0 && atoi(g) < 64)
            bits |= 1ULL << atoi(g);
    free(t);
    return bits;
}

/* VFIO_MODEL_DEVICE_RESV="i:start-last,...": reserved IOVA ranges of the
 * IOMMU behind device vfio<i>, in addition to the global holes. */
static void parse_device_resv(void)
{
    const char *v = getenv("VFIO_MODEL_DEVICE_RESV");
    if (!v || !*v)
        return;
    char *s = strdup(v), *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *e1, *e2, *e3;
        long dev = strtol(t, &e1, 10);
        uint64_t start = 0, last = 0;
        bool ok = e1 != t && *e1 == ':' && dev >= 0 && dev < MAX_DEVS;
        if (ok) {
            start = strtoull(e1 + 1, &e2, 0);
            ok = e2 != e1 + 1 && *e2 == '-';
        }
        if (ok) {
            last = strtoull(e2 + 1, &e3, 0);
            ok = e3 != e2 + 1 && !*e3 && start <= last;
        }
        if (!ok || cfg.nresv == MAX_DEV_RESV) {
            fprintf(stderr, "vfio-model: VFIO_MODEL_DEVICE_RESV: ignoring '%s'\n", t);
            continue;
        }
        cfg.resv[cfg.nresv].dev = (int)dev;
        cfg.resv[cfg.nresv].r = (struct range){ start, last };
        cfg.nresv++;
    }
    free(s);
}

/* VFIO_MODEL_MIGRATION="stop_copy,p2p,pre_copy" (any of them; p2p and
 * pre_copy imply stop_copy); unset, "0" or "none": no migration support */
static void parse_migration(void)
{
    const char *v = getenv("VFIO_MODEL_MIGRATION");
    cfg.mig_flags = 0;
    if (!v || !*v)
        return;
    char *s = strdup(v), *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "stop_copy"))
            cfg.mig_flags |= VFIO_MIGRATION_STOP_COPY;
        else if (!strcmp(t, "p2p"))
            cfg.mig_flags |= VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
        else if (!strcmp(t, "pre_copy"))
            cfg.mig_flags |= VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
        else if (strcmp(t, "0") && strcmp(t, "none"))
            fprintf(stderr, "vfio-model: VFIO_MODEL_MIGRATION: ignoring '%s'\n", t);
    }
    free(s);
}

static void parse_config(void)
{
    const char *d = getenv("VFIO_MODEL_DEVICES");
    if (!d || !*d)
        d = "0000:00:03.0@3,0000:00:04.0@4";
    char *s = strdup(d), *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t && cfg.ndev < MAX_DEVS;
         t = strtok_r(NULL, ",", &save)) {
        char *at = strchr(t, '@');
        int grp = 100 + cfg.ndev;
        if (at) {
            *at = 0;
            grp = atoi(at + 1);
        }
        snprintf(cfg.dev[cfg.ndev].bdf, sizeof(cfg.dev[0].bdf), "%s", t);
        cfg.dev[cfg.ndev].group = grp;
        cfg.ndev++;
    }
    free(s);
    const char *sy = getenv("VFIO_MODEL_SYSFS");
    snprintf(cfg.sysfs, sizeof(cfg.sysfs), "%s", sy ? sy : "");
    cfg.dirty_supported = env_u64("VFIO_MODEL_DIRTY", 1) != 0;
    cfg.pin_limit = env_u64("VFIO_MODEL_PIN_LIMIT", 0);
    cfg.aperture_last = (1ULL << env_u64("VFIO_MODEL_APERTURE_BITS", 48)) - 1;
    cfg.spapr = env_u64("VFIO_MODEL_SPAPR", 0) != 0;
    cfg.second_iommu = env_bits("VFIO_MODEL_SECOND_IOMMU");
    cfg.isolated_groups = env_bits("VFIO_MODEL_ISOLATED_GROUPS");
    cfg.reset_bus = env_bits("VFIO_MODEL_RESET_BUS");
    cfg.no_flr = env_bits("VFIO_MODEL_NO_FLR");
    cfg.cdev_major = (int)env_u64("VFIO_MODEL_CDEV_MAJOR", 511);
    cfg.strict_exit = env_u64("VFIO_MODEL_STRICT_EXIT", 0) != 0;
    cfg.trace = (int)env_u64("VFIO_MODEL_TRACE", 0);
    cfg.dma_avail = (unsigned)env_u64("VFIO_MODEL_DMA_ENTRY_LIMIT", 65535);
    cfg.bar2 = env_u64("VFIO_MODEL_BAR2", 1) != 0;
    cfg.iommufd_p2p = env_u64("VFIO_MODEL_IOMMUFD_P2P", 0) != 0;
    cfg.drop_dirty = env_u64("VFIO_MODEL_DROP_DIRTY", 0) != 0;
    parse_migration();
    parse_device_resv();
    const char *h = getenv("VFIO_MODEL_IOVA_HOLES");
    if (!h)
        h = "0xfee00000-0xfeefffff";
    s = strdup(h);
    for (char *t = strtok_r(s, ",", &save); t && cfg.nholes < 8;
         t = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(t, '-');
        if (!dash)
            continue;
        cfg.holes[cfg.nholes].start = strtoull(t, NULL, 0);
        cfg.holes[cfg.nholes].last = strtoull(dash + 1, NULL, 0);
        cfg.nholes++;
    }
    free(s);

    for (int i = 0; i < cfg.ndev; i++) {
        struct mdev *m = &devs[i];
        m->idx = i;
        snprintf(m->bdf, sizeof(m->bdf), "%s", cfg.dev[i].bdf);
        m->group = cfg.dev[i].group;
        mdev_init(m);
        int g;
        for (g = 0; g < ngroups; g++)
            if (groups[g].num == m->group)
                break;
        if (g == ngroups) {
            groups[ngroups].num = m->group;
            ngroups++;
        }
    }
}

/* Idempotent: several processes (a wrapper script, QEMU, a test) may lay
 * out the same tree concurrently, so existing correct entries are kept. */
static void wr(const char *path, const char *content)
{
    char cur[128];
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(cur, 1, sizeof(cur) - 1, f);
        cur[n] = 0;
        fclose(f);
        if (!strcmp(cur, content))
            return;
    }
    f = fopen(path, "w");
    if (f) {
        fputs(content, f);
        fclose(f);
    }
}

static void link_to(const char *target, const char *path)
{
    char cur[1024];
    ssize_t n = readlink(path, cur, sizeof(cur) - 1);
    if (n > 0) {
        cur[n] = 0;
        if (!strcmp(cur, target))
            return;
    }
    unlink(path);
    if (symlink(target, path) < 0 && errno != EEXIST)
        perror("vfio-model: symlink");
}

static void mkdirs(const char *p)
{
    char b[1024];
    snprintf(b, sizeof(b), "%s", p);
    for (char *q = b + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            mkdir(b, 0755);
            *q = '/';
        }
    mkdir(b, 0755);
}

/* Lay out the sysfs-like tree QEMU is pointed at (see README). */
static void make_sysfs(void)
{
    if (!cfg.sysfs[0])
        return;
    char p[1024], q[1024], v[64];
    snprintf(p, sizeof(p), "%s/bus/pci", cfg.sysfs);
    mkdirs(p);
    for (int i = 0; i < cfg.ndev; i++) {
        struct mdev *m = &devs[i];
        snprintf(p, sizeof(p), "%s/kernel/iommu_groups/%d/devices", cfg.sysfs, m->group);
        mkdirs(p);
        snprintf(p, sizeof(p), "%s/devices/%s/vfio-dev/vfio%d", cfg.sysfs, m->bdf, i);
        mkdirs(p);
        snprintf(p, sizeof(p), "%s/devices/%s/vfio-dev/vfio%d/dev", cfg.sysfs, m->bdf, i);
        snprintf(v, sizeof(v), "%d:%d\n", cfg.cdev_major, i);
        wr(p, v);
        struct { const char *n; unsigned v; } attrs[] = {
            { "vendor", 0x1234 }, { "device", 0x11e8 },
            { "subsystem_vendor", 0x1af4 }, { "subsystem_device", 0x1100 },
            { "class", 0x00ff00 },
        };
        for (size_t a = 0; a < sizeof(attrs) / sizeof(attrs[0]); a++) {
            snprintf(p, sizeof(p), "%s/devices/%s/%s", cfg.sysfs, m->bdf, attrs[a].n);
            snprintf(v, sizeof(v), a == 4 ? "0x%06x\n" : "0x%04x\n", attrs[a].v);
            wr(p, v);
        }
        snprintf(p, sizeof(p), "%s/devices/%s/iommu_group", cfg.sysfs, m->bdf);
        snprintf(q, sizeof(q), "../../kernel/iommu_groups/%d", m->group);
        link_to(q, p);
        snprintf(p, sizeof(p), "%s/devices/%s/subsystem", cfg.sysfs, m->bdf);
        link_to("../../bus/pci", p);
        snprintf(p, sizeof(p), "%s/kernel/iommu_groups/%d/devices/%s", cfg.sysfs,
                 m->group, m->bdf);
        snprintf(q, sizeof(q), "../../../../devices/%s", m->bdf);
        link_to(q, p);
    }
}

/* ---------------------------------------------------------- fault injection */

struct inject { int idx; long nth; int err; int named; bool any, alloc, madv, armed; };

/* names of calls that are not ioctls of their own (inject_check_named) */
static const char *const named_calls[INJ_NAMED_MAX] = {
    [INJ_FEAT_MIGRATION] = "VFIO_DEVICE_FEATURE_MIGRATION",
    [INJ_FEAT_MIG_STATE] = "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE",
    [INJ_FEAT_MIG_DATA_SIZE] = "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE",
    [INJ_MIG_READ] = "MIG_DATA_READ",
    [INJ_MIG_WRITE] = "MIG_DATA_WRITE",
};
static struct inject inj[16];
static int ninj;

const struct ioname ionames[] = {
#define N(x) { #x, x }
    N(IOMMU_DESTROY), N(IOMMU_IOAS_ALLOC), N(IOMMU_IOAS_ALLOW_IOVAS),
    N(IOMMU_IOAS_COPY), N(IOMMU_IOAS_IOVA_RANGES), N(IOMMU_IOAS_MAP),
    N(IOMMU_IOAS_UNMAP), N(IOMMU_OPTION), N(IOMMU_VFIO_IOAS), N(IOMMU_HWPT_ALLOC),
    N(IOMMU_GET_HW_INFO), N(IOMMU_HWPT_SET_DIRTY_TRACKING),
    N(IOMMU_HWPT_GET_DIRTY_BITMAP), N(IOMMU_HWPT_INVALIDATE),
    N(IOMMU_FAULT_QUEUE_ALLOC),
    N(VFIO_GET_API_VERSION), N(VFIO_CHECK_EXTENSION), N(VFIO_SET_IOMMU),
    N(VFIO_GROUP_GET_STATUS), N(VFIO_GROUP_SET_CONTAINER),
    N(VFIO_GROUP_UNSET_CONTAINER), N(VFIO_GROUP_GET_DEVICE_FD),
    N(VFIO_DEVICE_GET_INFO), N(VFIO_DEVICE_GET_REGION_INFO),
    N(VFIO_DEVICE_GET_IRQ_INFO), N(VFIO_DEVICE_SET_IRQS), N(VFIO_DEVICE_RESET),
    N(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO), N(VFIO_DEVICE_PCI_HOT_RESET),
    N(VFIO_DEVICE_FEATURE), N(VFIO_DEVICE_BIND_IOMMUFD),
    N(VFIO_DEVICE_ATTACH_IOMMUFD_PT), N(VFIO_DEVICE_DETACH_IOMMUFD_PT),
    N(VFIO_DEVICE_IOEVENTFD),
    N(VFIO_IOMMU_GET_INFO), N(VFIO_IOMMU_MAP_DMA), N(VFIO_IOMMU_UNMAP_DMA),
    N(VFIO_IOMMU_ENABLE), N(VFIO_IOMMU_DISABLE), N(VFIO_IOMMU_DIRTY_PAGES),
    N(VFIO_IOMMU_SPAPR_REGISTER_MEMORY), N(VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY),
    N(VFIO_IOMMU_SPAPR_TCE_CREATE), N(VFIO_IOMMU_SPAPR_TCE_REMOVE),
    N(VFIO_EEH_PE_OP), N(VFIO_MIG_GET_PRECOPY_INFO),
#undef N
    { NULL, 0 }
};

/* VFIO_IOMMU_GET_INFO == VFIO_IOMMU_SPAPR_TCE_GET_INFO and
 * VFIO_IOMMU_DIRTY_PAGES == VFIO_DEVICE_FEATURE == SPAPR_REGISTER_MEMORY
 * share numbers: names are per file kind in the counters. */
static int cur_kind;

static bool name_fits_kind(const char *n, int kind)
{
    switch (kind) {
    case FK_IOMMU: return !strncmp(n, "IOMMU_", 6);
    case FK_CONTAINER:
        return !strncmp(n, "VFIO_IOMMU_", 11) || !strcmp(n, "VFIO_GET_API_VERSION") ||
               !strcmp(n, "VFIO_CHECK_EXTENSION") || !strcmp(n, "VFIO_SET_IOMMU") ||
               !strcmp(n, "VFIO_EEH_PE_OP");
    case FK_GROUP: return !strncmp(n, "VFIO_GROUP_", 11);
    case FK_CDEV:
    case FK_DEVICE: return !strncmp(n, "VFIO_DEVICE_", 12);
    case FK_MIGDATA: return !strncmp(n, "VFIO_MIG_", 9);
    }
    return true;
}

int ioname_idx(unsigned long cmd)
{
    int any = -1;
    for (int i = 0; ionames[i].name; i++)
        if (ionames[i].cmd == cmd) {
            if (!cur_kind || name_fits_kind(ionames[i].name, cur_kind))
                return i;
            if (any < 0)
                any = i;
        }
    return any;
}

static int ioname_lookup(const char *n, unsigned long *cmd)
{
    for (int i = 0; ionames[i].name; i++)
        if (!strcmp(ionames[i].name, n)) {
            *cmd = ionames[i].cmd;
            return 0;
        }
    return -1;
}

static int errno_lookup(const char *e)
{
    static const struct { const char *n; int v; } t[] = {
        { "ENOMEM", ENOMEM }, { "EIO", EIO }, { "EINVAL", EINVAL },
        { "EBUSY", EBUSY }, { "EFAULT", EFAULT }, { "ENOSPC", ENOSPC },
        { "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EOPNOTSUPP", EOPNOTSUPP },
        { "ENODEV", ENODEV }, { "EAGAIN", EAGAIN }, { "E2BIG", E2BIG },
        { "EBADF", EBADF }, { "ENOTTY", ENOTTY }, { "ENOMSG", ENOMSG },
        { "EINTR", EINTR }, { "ENXIO", ENXIO }, { "EEXIST", EEXIST },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcmp(t[i].n, e))
            return t[i].v;
    return atoi(e);
}

/* "NAME N ERRNO": fail the Nth (1-based, counted from arming) call. */
static int inject_arm(const char *spec)
{
    char name[64], e[32];
    long nth;
    if (sscanf(spec, "%63s %ld %31s", name, &nth, e) != 3 || nth < 1)
        return -1;
    int slot = 0;
    while (slot < ninj && inj[slot].armed)     /* reuse a spent entry */
        slot++;
    if (slot >= 16)
        return -1;
    struct inject *j = &inj[slot];
    memset(j, 0, sizeof(*j));
    if (!strcmp(name, "any"))
        j->any = true;
    else if (!strcmp(name, "alloc"))
        j->alloc = true;
    else if (!strcmp(name, "MADV_POPULATE_WRITE"))
        j->madv = true;
    for (int k = 1; k < INJ_NAMED_MAX; k++)
        if (!strcmp(name, named_calls[k]))
            j->named = k;
    if (!j->any && !j->alloc && !j->madv && !j->named) {
        unsigned long cmd;
        if (ioname_lookup(name, &cmd))
            return -1;
        for (j->idx = 0; strcmp(ionames[j->idx].name, name); j->idx++)
            ;
    }
    j->nth = nth;
    j->err = errno_lookup(e);
    j->armed = true;
    if (slot == ninj)
        ninj++;
    return 0;
}

int inject_check_ioctl(unsigned long cmd)
{
    for (int i = 0; i < ninj; i++) {
        struct inject *j = &inj[i];
        if (!j->armed || j->alloc || j->madv || j->named ||
            (!j->any && ioname_idx(cmd) != j->idx))
            continue;
        if (--j->nth == 0) {
            j->armed = false;
            cnt.faults_injected++;
            return j->err;
        }
    }
    return 0;
}

/* Called for each call of a named kind (a feature of VFIO_DEVICE_FEATURE,
 * a read()/write() on a migration data fd): 0 or the errno to fail with. */
int inject_check_named(int which)
{
    for (int i = 0; i < ninj; i++) {
        struct inject *j = &inj[i];
        if (j->armed && j->named == which && --j->nth == 0) {
            j->armed = false;
            cnt.faults_injected++;
            return j->err;
        }
    }
    return 0;
}

/* Called for each madvise(MADV_POPULATE_WRITE): 0 or the errno to fail with. */
static int inject_check_madv(void)
{
    for (int i = 0; i < ninj; i++) {
        struct inject *j = &inj[i];
        if (j->armed && j->madv && --j->nth == 0) {
            j->armed = false;
            cnt.faults_injected++;
            return j->err;
        }
    }
    return 0;
}

/* Called at each internal allocation point of the model. */
bool inject_alloc_fail(void)
{
    for (int i = 0; i < ninj; i++) {
        struct inject *j = &inj[i];
        if (j->armed && j->alloc && --j->nth == 0) {
            j->armed = false;
            cnt.faults_injected++;
            return true;
        }
    }
    return false;
}

void *mz(size_t n)
{
    if (inject_alloc_fail())
        return NULL;
    return calloc(1, n);
}

/* ------------------------------------------------------------ counters */

static size_t ioctl_calls[128];
static size_t ioctl_unknown;
static unsigned long last_unknown;

/* Emit "key=value" lines into buf. Lock held. */
static size_t emit_counters(char *buf, size_t sz)
{
    size_t o = 0;
#define P(...) do { if (o < sz) o += snprintf(buf + o, sz - o, __VA_ARGS__); } while (0)
    for (int k = 1; k < FK_NKINDS; k++)
        P("fds_%s=%ld\n", kind_name[k], cnt.fds[k]);
    long nf = 0;
    for (struct mfile *f = files; f; f = f->next)
        nf++;
    P("files=%ld\n", nf);
    P("iommufd_ctx=%ld\n", cnt.ictx);
    P("ioas=%ld\n", cnt.ioas);
    P("hwpt=%ld\n", cnt.hwpt);
    P("hwpt_auto=%ld\n", cnt.hwpt_auto);
    P("hwpt_dirty_tracking=%ld\n", cnt.hwpt_dirty);
    P("devices_bound=%ld\n", cnt.bound);
    P("devices_attached=%ld\n", cnt.attached);
    P("devices_open_group=%ld\n", cnt.dev_group_open);
    P("ioas_mappings=%ld\n", cnt.areas);
    P("ioas_mapped_bytes=%ld\n", cnt.area_bytes);
    P("pinned_pages=%ld\n", cnt.pinned);
    P("type1_pinned_pages=%ld\n", cnt.t1_pinned);
    P("pinned_pages_total=%ld\n", cnt.pinned + cnt.t1_pinned);
    P("pin_limit=%llu\n", (unsigned long long)cfg.pin_limit);
    P("containers=%ld\n", cnt.containers);
    P("containers_iommu_set=%ld\n", cnt.containers_set);
    P("groups_open=%ld\n", cnt.groups_open);
    P("groups_in_container=%ld\n", cnt.groups_attached);
    P("type1_mappings=%ld\n", cnt.dmas);
    P("type1_mapped_bytes=%ld\n", cnt.dma_bytes_mapped);
    P("spapr_windows=%ld\n", cnt.spapr_windows);
    P("spapr_registered=%ld\n", cnt.spapr_mem);
    P("dirty_bitmap_queries=%ld\n", cnt.dirty_queries);
    P("dirty_pages_marked=%ld\n", cnt.dirty_marked);
    P("dirty_bitmap_bytes=%ld\n", cnt.dirty_bitmap_bytes);
    P("dma_ops=%ld\n", cnt.dma_ops);
    P("dma_bytes=%ld\n", cnt.dma_bytes);
    P("dma_faults=%ld\n", cnt.dma_faults);
    P("irqs_signalled=%ld\n", cnt.irqs);
    P("irq_eventfds=%ld\n", cnt.irq_fds);
    P("device_resets=%ld\n", cnt.resets);
    P("bus_resets=%ld\n", cnt.bus_resets);
    P("region_reads=%ld\n", cnt.region_reads);
    P("region_writes=%ld\n", cnt.region_writes);
    P("region_mmaps=%ld\n", cnt.region_mmaps);
    P("adopted_fds=%ld\n", cnt.adopted);
    P("faults_injected=%ld\n", cnt.faults_injected);
    P("populate_calls=%ld\n", cnt.populate_calls);
    P("populate_bytes=%ld\n", cnt.populate_bytes);
    P("dirty_pages_dropped=%ld\n", cnt.dirty_dropped);
    P("drop_dirty=%d\n", cfg.drop_dirty);
    P("migration_flags=%llu\n", (unsigned long long)cfg.mig_flags);
    P("mig_sessions=%ld\n", cnt.mig_sessions);
    P("mig_state_sets=%ld\n", cnt.mig_state_sets);
    for (int i = 0; i < cfg.ndev; i++)
        P("mig_state_vfio%d=%s\n", i, mig_state_name(devs[i].mig_state));
    P("mig_bytes_saved=%ld\n", cnt.mig_bytes_saved);
    P("mig_bytes_loaded=%ld\n", cnt.mig_bytes_loaded);
    P("mig_loads=%ld\n", cnt.mig_loads);
    P("mig_load_errors=%ld\n", cnt.mig_load_errors);
    P("dma_while_stopped=%ld\n", cnt.dma_while_stopped);
    P("ioctls=%ld\n", cnt.ioctls);
    P("ioctls_unknown=%zu\n", ioctl_unknown);
    if (ioctl_unknown)
        P("ioctl_last_unknown=0x%lx\n", last_unknown);
    for (int i = 0; ionames[i].name; i++)
        if (ioctl_calls[i])
            P("ioctl.%s=%zu\n", ionames[i].name, ioctl_calls[i]);
    int armed = 0;
    for (int i = 0; i < ninj; i++)
        armed += inj[i].armed;
    P("faults_armed=%d\n", armed);
#undef P
    return o;
}

void count_ioctl(unsigned long cmd, bool known)
{
    cnt.ioctls++;
    int i = ioname_idx(cmd);
    if (i >= 0 && known)
        ioctl_calls[i]++;
    if (!known) {
        ioctl_unknown++;
        last_unknown = cmd;
    }
}

/* --------------------------------------------------------- control socket */

static int ctl_fd = -1;
static char ctl_path[108];

static void ctl_reply(int c, const char *s, size_t n)
{
    while (n) {
        long w = sys_write(c, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void ctl_handle(int c, char *line)
{
    static char out[65536];
    size_t n = 0;
    pthread_mutex_lock(&model_lock);
    if (!strcmp(line, "counters")) {
        n = emit_counters(out, sizeof(out) - 8);
        n += (size_t)snprintf(out + n, sizeof(out) - n, "end\n");
    } else if (!strncmp(line, "get ", 4)) {
        char tmp[65536];
        emit_counters(tmp, sizeof(tmp));
        size_t kl = strlen(line + 4);
        char *p = tmp;
        n = (size_t)snprintf(out, sizeof(out), "error unknown counter\n");
        while (p && *p) {
            if (!strncmp(p, line + 4, kl) && p[kl] == '=') {
                char *e = strchr(p, '\n');
                n = (size_t)(e - p) + 1;
                memcpy(out, p, n);
                break;
            }
            p = strchr(p, '\n');
            if (p)
                p++;
        }
    } else if (!strncmp(line, "fail ", 5)) {
        n = (size_t)snprintf(out, sizeof(out), inject_arm(line + 5) ? "error bad fail spec\n" : "ok\n");
    } else if (!strncmp(line, "set ", 4)) {
        char k[64];
        unsigned long long v;
        if (sscanf(line + 4, "%63s %llu", k, &v) == 2 && !strcmp(k, "pin_limit")) {
            cfg.pin_limit = v;
            n = (size_t)snprintf(out, sizeof(out), "ok\n");
        } else if (sscanf(line + 4, "%63s %llu", k, &v) == 2 && !strcmp(k, "dirty_tracking")) {
            cfg.dirty_supported = v != 0;
            n = (size_t)snprintf(out, sizeof(out), "ok\n");
        } else if (sscanf(line + 4, "%63s %llu", k, &v) == 2 && !strcmp(k, "drop_dirty")) {
            cfg.drop_dirty = v != 0;
            n = (size_t)snprintf(out, sizeof(out), "ok\n");
        } else {
            n = (size_t)snprintf(out, sizeof(out), "error bad set\n");
        }
    } else if (!strcmp(line, "fail-clear")) {
        ninj = 0;
        n = (size_t)snprintf(out, sizeof(out), "ok\n");
    } else if (!strcmp(line, "fail-pending")) {
        int armed = 0;
        for (int i = 0; i < ninj; i++)
            armed += inj[i].armed;
        n = (size_t)snprintf(out, sizeof(out), "faults_armed=%d\n", armed);
    } else if (!strcmp(line, "objects")) {
        n = emit_objects(out, sizeof(out) - 8);
        n += (size_t)snprintf(out + n, sizeof(out) - n, "end\n");
    } else if (!strncmp(line, "mark-dirty ", 11)) {
        /* mark-dirty I IOVA LEN STRIDE */
        unsigned long long v[4];
        const char *err = "bad arguments (mark-dirty I IOVA LEN STRIDE)";
        char *p = line + 11, *e;
        int k;
        long r = -1;
        for (k = 0; k < 4; k++, p = e) {
            while (*p == ' ')
                p++;
            if (*p == '-')
                break;
            errno = 0;
            v[k] = strtoull(p, &e, 0);
            if (e == p || errno || (*e && *e != ' '))
                break;
        }
        while (k == 4 && *p == ' ')
            p++;
        if (k == 4 && !*p && v[0] < MAX_DEVS)
            r = device_mark_dirty((int)v[0], v[1], v[2], v[3], &err);
        n = (size_t)(r < 0 ? snprintf(out, sizeof(out), "error %s\n", err)
                           : snprintf(out, sizeof(out), "ok %ld\n", r));
    } else if (!strncmp(line, "device-state ", 13)) {
        char *e;
        long idx = strtol(line + 13, &e, 10);
        if (e == line + 13 || *e || idx < 0 || idx >= cfg.ndev)
            n = (size_t)snprintf(out, sizeof(out), "error no such device\n");
        else
            n = mdev_describe(&devs[idx], out, sizeof(out));
    } else if (!strcmp(line, "ping")) {
        n = (size_t)snprintf(out, sizeof(out), "pong\n");
    } else {
        n = (size_t)snprintf(out, sizeof(out), "error unknown command\n");
    }
    pthread_mutex_unlock(&model_lock);
    ctl_reply(c, out, n);
}

static void *ctl_conn(void *arg)
{
    int c = (int)(intptr_t)arg;
    char line[512];
    size_t l = 0;
    for (;;) {
        char ch;
        long r = sys_read(c, &ch, 1);
        if (r <= 0)
            break;
        if (ch == '\n') {
            line[l] = 0;
            if (l && line[l - 1] == '\r')
                line[l - 1] = 0;
            ctl_handle(c, line);
            l = 0;
        } else if (l < sizeof(line) - 1) {
            line[l++] = ch;
        }
    }
    sys_close(c);
    return NULL;
}

static void *ctl_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept4(ctl_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, ctl_conn, (void *)(intptr_t)c))
            sys_close(c);
        pthread_attr_destroy(&a);
    }
}

static void ctl_start(void)
{
    const char *p = getenv("VFIO_MODEL_CONTROL");
    if (!p || !*p)
        return;
    snprintf(ctl_path, sizeof(ctl_path), "%s", p);
    ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ctl_fd < 0)
        return;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
    unlink(p);
    if (bind(ctl_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ctl_fd, 8) < 0) {
        perror("vfio-model: control socket");
        sys_close(ctl_fd);
        ctl_fd = -1;
        return;
    }
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &at, ctl_loop, NULL);
    pthread_attr_destroy(&at);
}

/* ---------------------------------------------------------- ctor / dtor */

static pid_t model_pid;

__attribute__((constructor)) static void model_init(void)
{
    resolve_all();
    model_pid = getpid();
    parse_config();
    make_sysfs();
    const char *f = getenv("VFIO_MODEL_FAIL");
    if (f && *f) {
        char *s = strdup(f), *save = NULL;
        for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            for (char *q = t; *q; q++)
                if (*q == ':')
                    *q = ' ';
            if (inject_arm(t))
                fprintf(stderr, "vfio-model: bad VFIO_MODEL_FAIL entry\n");
        }
        free(s);
    }
    ctl_start();
}

__attribute__((destructor)) static void model_fini(void)
{
    if (getpid() != model_pid)
        return;
    pthread_mutex_lock(&model_lock);
    /* A process that never touched a model fd (a wrapper, timeout(1), a
     * shell) leaves the report and the control socket to the one that did. */
    if (!model_used) {
        pthread_mutex_unlock(&model_lock);
        return;
    }
    static char before[65536], objs[65536];
    emit_counters(before, sizeof(before));
    size_t no = emit_objects(objs, sizeof(objs));
    long open_files = 0;
    for (struct mfile *f = files; f; f = f->next)
        open_files++;
    /* Process exit: the kernel closes every fd; release what is left. */
    while (files) {
        struct mfile *f = files;
        for (int fd = 0; fd < FDMAX; fd++)
            if (fdmap[fd] == f)
                fd_set_file(fd, NULL);
        file_release(f);
    }
    long leaks = residual_objects();
    if (cfg.strict_exit)
        leaks += open_files;
    const char *rp = getenv("VFIO_MODEL_REPORT");
    if (rp && *rp) {
        FILE *o = fopen(rp, "w");
        if (o) {
            fputs(before, o);
            fprintf(o, "open_files_at_exit=%ld\n", open_files);
            fprintf(o, "leaks=%ld\n", leaks);
            if (cfg.strict_exit && no)
                fwrite(objs, 1, no, o);
            fprint_residual(o);
            fprintf(o, "end\n");
            fclose(o);
        }
    }
    if (leaks) {
        fprintf(stderr, "vfio-model: %ld leaked object(s)\n", leaks);
        if (cfg.strict_exit && no)
            fwrite(objs, 1, no, stderr);
        fprint_residual(stderr);
    }
    if (ctl_fd >= 0 && ctl_path[0])
        unlink(ctl_path);
    pthread_mutex_unlock(&model_lock);
}

/* ----------------------------------------------------------- path opens */

static const char *devpath_strip(const char *p)
{
    const char *root = getenv("VFIO_MODEL_DEVROOT");
    if (root && *root) {
        size_t l = strlen(root);
        if (!strncmp(p, root, l))
            return p + l;
    }
    return p;
}

/* Returns -2 if the path is not a model path. */
static int model_open(const char *path, int flags)
{
    if (!path)
        return -2;
    path = devpath_strip(path);
    if (strncmp(path, "/dev/", 5))
        return -2;
    int cloexec = (flags & O_CLOEXEC) != 0;
    int fd = -1;
    struct mfile *f = NULL;
    const char *p = path + 5;
    int ret = -2;
    pthread_mutex_lock(&model_lock);
    if (!strcmp(p, "iommu")) {
        f = file_new(FK_IOMMU, "iommu", cloexec, &fd);
        ret = f ? (iommufd_open(f) ? -1 : fd) : -1;
    } else if (!strcmp(p, "vfio/vfio")) {
        f = file_new(FK_CONTAINER, "container", cloexec, &fd);
        ret = f ? (container_open(f) ? -1 : fd) : -1;
    } else if (!strncmp(p, "vfio/devices/vfio", 17) || !strncmp(p, "char/", 5)) {
        int idx = -1;
        if (p[0] == 'v') {
            char *end;
            long v = strtol(p + 17, &end, 10);
            if (*end == 0 && end != p + 17)
                idx = (int)v;
        } else {
            int maj, min;
            char tail;
            if (sscanf(p + 5, "%d:%d%c", &maj, &min, &tail) == 2 && maj == cfg.cdev_major)
                idx = min;
            else
                goto out;
        }
        if (idx < 0 || idx >= cfg.ndev) {
            errno = ENOENT;
            ret = -1;
            goto out;
        }
        char tag[32];
        snprintf(tag, sizeof(tag), "cdev:vfio%d", idx);
        f = file_new(FK_CDEV, tag, cloexec, &fd);
        ret = f ? (cdev_open(f, idx) ? -1 : fd) : -1;
    } else if (!strncmp(p, "vfio/", 5) && p[5] >= '0' && p[5] <= '9') {
        char *end;
        long g = strtol(p + 5, &end, 10);
        if (*end) {
            goto out;
        }
        int gi;
        for (gi = 0; gi < ngroups; gi++)
            if (groups[gi].num == g)
                break;
        if (gi == ngroups) {
            errno = ENOENT;
            ret = -1;
            goto out;
        }
        if (groups[gi].file) {
            errno = EBUSY;
            ret = -1;
            goto out;
        }
        char tag[32];
        snprintf(tag, sizeof(tag), "group:%ld", g);
        f = file_new(FK_GROUP, tag, cloexec, &fd);
        ret = f ? (group_open(f, (int)g) ? -1 : fd) : -1;
    }
    if (ret == -1 && f) {
        int e = errno;
        fd_set_file(fd, NULL);
        file_unlink(f);
        sys_close(fd);
        errno = e;
    }
out:
    pthread_mutex_unlock(&model_lock);
    if (cfg.trace && ret != -2)
        fprintf(stderr, "vfio-model: open(%s) = %d\n", path, ret);
    return ret;
}

static int model_path_kind(const char *path)
{
    if (!path)
        return 0;
    path = devpath_strip(path);
    if (!strcmp(path, "/dev/iommu") || !strcmp(path, "/dev/vfio/vfio"))
        return 1;
    if (!strncmp(path, "/dev/vfio/devices/vfio", 22)) {
        int i = atoi(path + 22);
        return i >= 0 && i < cfg.ndev ? 2 : 0;
    }
    if (!strcmp(path, "/dev/vfio/devices") || !strcmp(path, "/dev/vfio"))
        return 3;
    if (!strncmp(path, "/dev/vfio/", 10) && path[10] >= '0' && path[10] <= '9') {
        for (int g = 0; g < ngroups; g++)
            if (groups[g].num == atoi(path + 10))
                return 1;
    }
    return 0;
}

#define OPEN_BODY(realfn, path, flags)                                    \
    mode_t mode = 0;                                                      \
    if (flags & (O_CREAT | __O_TMPFILE)) {                                \
        va_list ap;                                                       \
        va_start(ap, flags);                                              \
        mode = va_arg(ap, mode_t);                                        \
        va_end(ap);                                                       \
    }                                                                     \
    int r = model_open(path, flags);                                      \
    if (r != -2)                                                          \
        return r;

int open(const char *path, int flags, ...)
{
    OPEN_BODY(real_open, path, flags);
    RESOLVE(real_open, "open");
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    OPEN_BODY(real_open64, path, flags);
    RESOLVE(real_open64, "open64");
    return real_open64(path, flags, mode);
}

/* open/openat family: a model path is served by the model, the rest by libc */
static int openat_common(int dirfd, const char *path, int flags, mode_t mode,
                         openat_fn real)
{
    if (path && path[0] == '/') {
        int r = model_open(path, flags);
        if (r != -2)
            return r;
    }
    return real(dirfd, path, flags, mode);
}

#define OPEN_MODE(flags, mode)                          \
    do {                                                \
        if ((flags) & (O_CREAT | __O_TMPFILE)) {        \
            va_list ap;                                 \
            va_start(ap, flags);                        \
            mode = va_arg(ap, mode_t);                  \
            va_end(ap);                                 \
        }                                               \
    } while (0)

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    RESOLVE(real_openat, "openat");
    return openat_common(dirfd, path, flags, mode, real_openat);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    RESOLVE(real_openat64, "openat64");
    return openat_common(dirfd, path, flags, mode, real_openat64);
}

int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int d, const char *path, int flags) { return openat(d, path, flags); }
int __openat64_2(int d, const char *path, int flags) { return openat64(d, path, flags); }

/* ----------------------------------------------------------------- close */

static void forget_fd(int fd)
{
    if (fd < 0 || fd >= FDMAX)
        return;
    pthread_mutex_lock(&model_lock);
    struct mfile *f = fdmap[fd];
    if (f) {
        fd_set_file(fd, NULL);
        file_put_check(f);
    }
    pthread_mutex_unlock(&model_lock);
}

int close(int fd)
{
    RESOLVE(real_close, "close");
    if (fd >= 0 && fd < FDMAX && fdmap[fd]) {
        /* close first so the release sees no fd for this inode */
        pthread_mutex_lock(&model_lock);
        struct mfile *f = fdmap[fd];
        int r = real_close(fd);
        int e = errno;
        if (f && r == 0) {
            fd_set_file(fd, NULL);
            file_put_check(f);
        }
        pthread_mutex_unlock(&model_lock);
        errno = e;
        return r;
    }
    return real_close(fd);
}

/* @newfd is now a dup of @oldfd: if that is a model fd, so is @newfd
 * (read()/write() on a dup must reach the model without an ioctl first) */
static void dup_track(int oldfd, int newfd)
{
    if (oldfd < 0 || oldfd >= FDMAX || newfd < 0 || newfd >= FDMAX || !fdmap[oldfd])
        return;
    pthread_mutex_lock(&model_lock);
    struct mfile *f = lookup(oldfd, false);
    if (f && fdmap[newfd] != f) {
        struct mfile *old = fdmap[newfd];
        if (old) {
            fd_set_file(newfd, NULL);
            file_put_check(old);
        }
        fd_set_file(newfd, f);
    }
    pthread_mutex_unlock(&model_lock);
}

int dup(int oldfd)
{
    RESOLVE(real_dup, "dup");
    int r = real_dup(oldfd);
    if (r >= 0)
        dup_track(oldfd, r);
    return r;
}

int dup2(int oldfd, int newfd)
{
    RESOLVE(real_dup2, "dup2");
    int r = real_dup2(oldfd, newfd);
    if (r >= 0 && oldfd != newfd && newfd < FDMAX && fdmap[newfd])
        forget_fd(newfd);
    if (r >= 0 && oldfd != newfd)
        dup_track(oldfd, newfd);
    return r;
}

int dup3(int oldfd, int newfd, int flags)
{
    RESOLVE(real_dup3, "dup3");
    int r = real_dup3(oldfd, newfd, flags);
    if (r >= 0 && newfd < FDMAX && fdmap[newfd])
        forget_fd(newfd);
    if (r >= 0)
        dup_track(oldfd, newfd);
    return r;
}

/* ----------------------------------------------------------------- ioctl */

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    RESOLVE(real_ioctl, "ioctl");
    if (_IOC_TYPE(req) != VFIO_TYPE && !(fd >= 0 && fd < FDMAX && fdmap[fd]))
        return real_ioctl(fd, req, arg);
    pthread_mutex_lock(&model_lock);
    struct mfile *f = lookup(fd, _IOC_TYPE(req) == VFIO_TYPE);
    if (!f) {
        pthread_mutex_unlock(&model_lock);
        return real_ioctl(fd, req, arg);
    }
    long r;
    cur_kind = f->kind;
    int e = inject_check_ioctl(req);
    if (e) {
        count_ioctl(req, true);
        r = -e;
    } else {
        switch (f->kind) {
        case FK_IOMMU: r = iommufd_ioctl(f->ictx, req, arg); break;
        case FK_CONTAINER: r = container_ioctl(f->ctr, req, arg); break;
        case FK_GROUP: r = group_ioctl(f->grp, req, arg); break;
        case FK_MIGDATA: r = migdata_ioctl(f->ms, req, arg); break;
        default: r = device_ioctl(f->df, req, arg); break;
        }
    }
    int ni = ioname_idx(req);
    enum fkind fk = f->kind;
    pthread_mutex_unlock(&model_lock);
    if (cfg.trace)
        fprintf(stderr, "vfio-model: ioctl(%d[%s], %s/0x%lx) = %ld\n", fd, kind_name[fk],
                ni >= 0 ? ionames[ni].name : "?", req, r);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return (int)r;
}

/* ------------------------------------------------------ read/write/mmap */

static long model_rw(int fd, void *buf, size_t n, off_t off, bool write, bool use_pos,
                     bool *handled)
{
    *handled = false;
    if (fd < 0 || fd >= FDMAX || !fdmap[fd])
        return 0;
    pthread_mutex_lock(&model_lock);
    struct mfile *f = lookup(fd, false);
    if (!f) {
        pthread_mutex_unlock(&model_lock);
        return 0;
    }
    *handled = true;
    long r;
    if (f->kind == FK_MIGDATA) {
        /* a stream (stream_open): read()/write() only, no position */
        r = use_pos ? migdata_rw(f->ms, buf, n, write) : -ESPIPE;
        pthread_mutex_unlock(&model_lock);
        if (cfg.trace > 1)
            fprintf(stderr, "vfio-model: %s(%d, %zu) = %ld\n", write ? "write" : "read", fd, n, r);
        return r;
    }
    if (use_pos)
        off = lseek(fd, 0, SEEK_CUR);
    if (f->kind == FK_CDEV || f->kind == FK_DEVICE)
        r = device_rw(f->df, buf, n, (uint64_t)off, write);
    else
        r = -EINVAL;
    if (use_pos && r > 0)
        lseek(fd, off + r, SEEK_SET);
    pthread_mutex_unlock(&model_lock);
    if (cfg.trace > 1)
        fprintf(stderr, "vfio-model: %s(%d, %zu, 0x%llx) = %ld\n", write ? "pwrite" : "pread", fd,
                n, (unsigned long long)off, r);
    return r;
}

#define RW_WRAP(ret)                 \
    if (handled) {                   \
        if (ret < 0) {               \
            errno = (int)-ret;       \
            return -1;               \
        }                            \
        return ret;                  \
    }

ssize_t pread(int fd, void *b, size_t n, off_t off)
{
    bool handled;
    long r = model_rw(fd, b, n, off, false, false, &handled);
    RW_WRAP(r);
    RESOLVE(real_pread, "pread");
    return real_pread(fd, b, n, off);
}

ssize_t pread64(int fd, void *b, size_t n, off_t off)
{
    bool handled;
    long r = model_rw(fd, b, n, off, false, false, &handled);
    RW_WRAP(r);
    RESOLVE(real_pread64, "pread64");
    return real_pread64(fd, b, n, off);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    bool handled;
    long r = model_rw(fd, (void *)b, n, off, true, false, &handled);
    RW_WRAP(r);
    RESOLVE(real_pwrite, "pwrite");
    return real_pwrite(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off)
{
    bool handled;
    long r = model_rw(fd, (void *)b, n, off, true, false, &handled);
    RW_WRAP(r);
    RESOLVE(real_pwrite64, "pwrite64");
    return real_pwrite64(fd, b, n, off);
}

ssize_t read(int fd, void *b, size_t n)
{
    bool handled;
    long r = model_rw(fd, b, n, 0, false, true, &handled);
    RW_WRAP(r);
    RESOLVE(real_read, "read");
    return real_read(fd, b, n);
}

ssize_t write(int fd, const void *b, size_t n)
{
    bool handled;
    long r = model_rw(fd, (void *)b, n, 0, true, true, &handled);
    RW_WRAP(r);
    RESOLVE(real_write, "write");
    return real_write(fd, b, n);
}

/* mmap of a model fd: a device fd maps its mmap-able region (BAR2) with
 * vfio-pci's rules (device.c); any other offset, size or fd kind: EINVAL
 * as for a region without VFIO_REGION_INFO_FLAG_MMAP. *handled is false
 * when the fd is not a model fd. */
static void *model_mmap(void *a, size_t l, int p, int fl, int fd, off_t o, bool *handled)
{
    *handled = false;
    if ((fl & MAP_ANONYMOUS) || fd < 0 || fd >= FDMAX || !fdmap[fd])
        return MAP_FAILED;
    pthread_mutex_lock(&model_lock);
    struct mfile *f = lookup(fd, false);
    if (!f) {
        pthread_mutex_unlock(&model_lock);
        return MAP_FAILED;
    }
    *handled = true;
    void *r = MAP_FAILED;
    int e = EINVAL, bfd;
    uint64_t pos;
    if (f->kind == FK_CDEV || f->kind == FK_DEVICE) {
        long x = device_mmap(f->df, (uint64_t)o, l, fl, &bfd, &pos);
        if (x == 0) {
            RESOLVE(real_mmap, "mmap");
            r = real_mmap(a, l, p, fl, bfd, (off_t)pos);
            e = errno;
            if (r != MAP_FAILED)
                cnt.region_mmaps++;
        } else {
            e = (int)-x;
        }
    }
    pthread_mutex_unlock(&model_lock);
    if (cfg.trace > 1)
        fprintf(stderr, "vfio-model: mmap(%d, 0x%zx, 0x%llx) = %p\n", fd, l,
                (unsigned long long)o, r);
    if (r == MAP_FAILED)
        errno = e;
    return r;
}

void *mmap(void *a, size_t l, int p, int fl, int fd, off_t o)
{
    bool handled;
    void *r = model_mmap(a, l, p, fl, fd, o, &handled);
    if (handled)
        return r;
    RESOLVE(real_mmap, "mmap");
    return real_mmap(a, l, p, fl, fd, o);
}

void *mmap64(void *a, size_t l, int p, int fl, int fd, off_t o)
{
    bool handled;
    void *r = model_mmap(a, l, p, fl, fd, o, &handled);
    if (handled)
        return r;
    RESOLVE(real_mmap64, "mmap64");
    return real_mmap64(a, l, p, fl, fd, o);
}

/*
 * madvise(MADV_POPULATE_WRITE) is how a VMM faults memory in before it is
 * pinned: counted, and a fault can be injected ("MADV_POPULATE_WRITE" in
 * VFIO_MODEL_FAIL / the control socket's fail).  The real call runs outside
 * the model's lock, so concurrent callers stay concurrent.
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
int madvise(void *a, size_t l, int advice)
{
    RESOLVE(real_madvise, "madvise");
    if (advice == MADV_POPULATE_WRITE) {
        pthread_mutex_lock(&model_lock);
        int e = inject_check_madv();
        cnt.populate_calls++;
        if (!e)
            cnt.populate_bytes += (long)l;
        pthread_mutex_unlock(&model_lock);
        if (e) {
            errno = e;
            return -1;
        }
    }
    return real_madvise(a, l, advice);
}

/* ------------------------------------------------------------------ stat */

static void fake_stat(struct mfile *f, struct stat *st)
{
    struct stat real;
    memset(&real, 0, sizeof(real));
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFCHR | 0600;
    st->st_ino = f->ino;
    st->st_nlink = 1;
    st->st_blksize = 4096;
    switch (f->kind) {
    case FK_IOMMU: st->st_rdev = makedev(10, 123); break;
    case FK_CONTAINER: st->st_rdev = makedev(10, 196); break;
    case FK_GROUP: st->st_rdev = makedev(cfg.cdev_major - 1, (unsigned)f->grp->num); break;
    case FK_CDEV: st->st_rdev = makedev(cfg.cdev_major, (unsigned)f->df->dev->idx); break;
    default: st->st_mode = S_IFREG | 0600; break; /* anon inode */
    }
}

static int stat_fd(int fd, struct stat *st)
{
    if (fd < 0 || fd >= FDMAX)
        return -2;
    pthread_mutex_lock(&model_lock);
    struct mfile *f = fdmap[fd] ? lookup(fd, false) : NULL;
    struct stat rs;
    if (!f && sys_fstat(fd, &rs) == 0 && S_ISREG(rs.st_mode) && rs.st_nlink == 0) {
        /* an fd we have not seen yet, e.g. passed in by the management
         * layer and fstat'ed before its first ioctl (memfds are unlinked
         * regular files) */
        char p[64], l[128];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(p, l, sizeof(l) - 1);
        if (n > 0) {
            l[n] = 0;
            if (strstr(l, "memfd:vfio-model:"))
                f = adopt(fd);
        }
    }
    if (f)
        fake_stat(f, st);
    pthread_mutex_unlock(&model_lock);
    return f ? 0 : -2;
}

/* Device nodes that exist only in the model: stat() of them reports a
 * character device. */
static int stat_path(const char *path, struct stat *st)
{
    int k = model_path_kind(path);
    if (!k)
        return -2;
    memset(st, 0, sizeof(*st));
    st->st_mode = (k == 3 ? S_IFDIR | 0755 : S_IFCHR | 0600);
    st->st_nlink = 1;
    if (k == 2)
        st->st_rdev = makedev(cfg.cdev_major, atoi(devpath_strip(path) + 22));
    return 0;
}

int fstat(int fd, struct stat *st)
{
    if (fd >= 0 && fd < FDMAX && stat_fd(fd, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_fstat, "fstat");
    return real_fstat(fd, st);
}

int fstat64(int fd, struct stat64 *st)
{
    if (fd >= 0 && fd < FDMAX && stat_fd(fd, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_fstat64, "fstat64");
    return real_fstat64(fd, st);
}

int fstatat(int d, const char *path, struct stat *st, int fl)
{
    if ((fl & AT_EMPTY_PATH) && path && !*path && stat_fd(d, (struct stat *)st) == 0)
        return 0;
    if (path && path[0] == '/' && stat_path(path, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_fstatat, "fstatat");
    return real_fstatat(d, path, st, fl);
}

int fstatat64(int d, const char *path, struct stat64 *st, int fl)
{
    if ((fl & AT_EMPTY_PATH) && path && !*path && stat_fd(d, (struct stat *)st) == 0)
        return 0;
    if (path && path[0] == '/' && stat_path(path, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_fstatat64, "fstatat64");
    return real_fstatat64(d, path, st, fl);
}

int stat(const char *path, struct stat *st)
{
    if (stat_path(path, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_stat, "stat");
    return real_stat(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
    if (stat_path(path, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_stat64, "stat64");
    return real_stat64(path, st);
}

int lstat(const char *path, struct stat *st)
{
    if (stat_path(path, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_lstat, "lstat");
    return real_lstat(path, st);
}

int lstat64(const char *path, struct stat64 *st)
{
    if (stat_path(path, (struct stat *)st) == 0)
        return 0;
    RESOLVE(real_lstat64, "lstat64");
    return real_lstat64(path, st);
}

int access(const char *path, int mode)
{
    if (model_path_kind(path))
        return 0;
    RESOLVE(real_access, "access");
    return real_access(path, mode);
}

/* _FORTIFY_SOURCE entry points used by QEMU when the buffer size is known */
ssize_t __pread_chk(int fd, void *b, size_t n, off_t off, size_t bl)
{
    (void)bl;
    return pread(fd, b, n, off);
}

ssize_t __pread64_chk(int fd, void *b, size_t n, off_t off, size_t bl)
{
    (void)bl;
    return pread64(fd, b, n, off);
}

ssize_t __read_chk(int fd, void *b, size_t n, size_t bl)
{
    (void)bl;
    return read(fd, b, n);
}
