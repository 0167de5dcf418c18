/*
 * vfio-model: internal declarations shared by the model's source files.
 * Userspace model of the Linux VFIO + iommufd uAPI, loaded with LD_PRELOAD.
 */
#ifndef VFIO_MODEL_H
#define VFIO_MODEL_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/vfio.h>
#include <linux/iommufd.h>

#define PG 4096ULL
#define MAX_DEVS 16
#define MAX_RANGES 64
#define MAX_DEV_RESV 16

enum fkind { FK_IOMMU = 1, FK_CONTAINER, FK_GROUP, FK_CDEV, FK_DEVICE, FK_MIGDATA, FK_NKINDS };

struct ioctx;
struct container;
struct group;
struct mdev;
struct migsess;

/* A model "open file description": one per memfd inode. */
struct mfile {
    enum fkind kind;
    ino_t ino;
    int nfds;                 /* fd numbers in the fd map pointing here */
    int extra_refs;           /* kernel-style references (e.g. bound device) */
    bool released;
    union {
        struct ioctx *ictx;
        struct container *ctr;
        struct group *grp;
        struct devfile *df;
        struct migsess *ms;       /* FK_MIGDATA: a migration data transfer session */
    };
    struct mfile *next;
};

struct range { uint64_t start, last; };

/* iommufd */
struct pages {              /* like iopt_pages: a pinned user VA range */
    uint64_t uva, len;
    int refs;               /* areas using it */
    int pin_users;          /* areas using it that sit in an IOAS with a domain */
    uint64_t npinned;       /* pages counted in pinned_pages while pinned */
};

struct area {
    uint64_t iova, len;     /* len bytes at iova */
    uint64_t off;           /* offset into pages */
    unsigned prot;          /* IOMMU_IOAS_MAP_READABLE|WRITEABLE */
    struct pages *pages;
    bool pinned;
    struct area *next;
};

enum objtype { OBJ_IOAS = 1, OBJ_HWPT, OBJ_DEVICE };

struct obj {
    enum objtype type;
    uint32_t id;
    int users;              /* references from other objects */
};

struct ioas {
    struct obj o;
    struct area *areas;
    int nallowed;           /* -1: no allowed list */
    struct range allowed[MAX_RANGES];
    int nhwpt;              /* domains on this IOAS */
    int ndev_attached;      /* devices attached via hwpts of this IOAS */
    uint64_t huge_pages;
};

/* Dirty pages of an IOVA space (a domain's dirty bits, a type1 dirty log):
 * one bitmap per 128 MiB of IOVA that has ever been marked, kept sorted by
 * IOVA (dirty.c). */
#define DCHUNK_PAGE_BITS 15                         /* 32768 pages per chunk */
#define DCHUNK_WORDS ((1u << DCHUNK_PAGE_BITS) / 64)
struct dchunk { uint64_t idx; uint64_t ndirty; uint64_t w[DCHUNK_WORDS]; };
struct dirtyset { struct dchunk **c; size_t n, cap, hint; };

struct hwpt {
    struct obj o;
    struct ioas *ioas;
    uint32_t flags;
    bool auto_domain;
    int iommu;              /* IOMMU instance whose domain this is */
    bool dirty_on;
    int ndev;
    struct dirtyset dirty;
};

struct idev {               /* bound device object */
    struct obj o;
    struct devfile *df;
};

#define MAX_OBJS 256
struct ioctx {
    struct mfile *file;
    int refs;               /* file + bound devices */
    struct obj *objs[MAX_OBJS]; /* index = id */
    uint64_t rlimit_mode;
};

/* legacy container */
struct dma {
    uint64_t iova, size, vaddr;
    uint64_t npinned;       /* pages counted in type1_pinned_pages (not BAR pages) */
    unsigned prot;          /* VFIO_DMA_MAP_FLAG_READ|WRITE */
    struct dma *next;
};

struct spapr_win { bool used; uint64_t start, size; unsigned shift; };
struct spapr_mem { uint64_t vaddr, size; struct spapr_mem *next; };

struct container {
    struct mfile *file;
    int refs;
    int iommu_type;         /* 0 until VFIO_SET_IOMMU */
    int ngroups;
    struct dma *dmas;
    int ndma;
    bool dirty_on;
    struct dirtyset dirty;
    struct spapr_win win[2];
    struct spapr_mem *mem;
    bool spapr_enabled;
};

struct group {
    int num;
    struct mfile *file;     /* NULL when not open */
    struct container *ctr;
    int ndevfds;            /* device fds obtained from this group */
};

struct irqvec { int fd; };   /* dup'd eventfd or -1 */

/* The model device (edu-like) */
struct mdev {
    int idx;                /* vfio<idx> */
    char bdf[32];
    int group;
    uint8_t cfg[256];
    /* edu */
    uint32_t addr4, fact, status, irq_status;
    uint64_t dma_src, dma_dst, dma_cnt, dma_cmd;
    uint8_t buf[4096];
    int bar2_fd;            /* memfd backing BAR2 (created at first use), or -1 */
    dev_t bar2_dev;         /* its st_dev/st_ino, to find its mmaps in /proc/self/maps */
    ino_t bar2_ino;
    /* irqs */
    int irq_type;           /* -1 none, VFIO_PCI_INTX_IRQ_INDEX, MSI */
    struct irqvec intx, msi, err, req;
    bool intx_masked, intx_pending;
    /* ownership */
    struct devfile *owner;  /* the devfile through which it is used */
    int group_opens;
    /* migration (VFIO_MODEL_MIGRATION) */
    uint32_t mig_state;     /* enum vfio_device_mig_state */
    struct migsess *mig;    /* the data transfer session of a saving/resuming state */
};

struct devfile {
    struct mfile *file;
    struct mdev *dev;
    bool cdev;
    bool opened;            /* group device fd, or cdev after bind */
    struct ioctx *ictx;     /* cdev: bound ctx */
    struct idev *idev;
    struct hwpt *hwpt;      /* cdev: attached */
    struct group *grp;      /* group device fd */
};

/* configuration */
struct config {
    int ndev;
    struct { char bdf[32]; int group; } dev[MAX_DEVS];
    char sysfs[512];
    bool dirty_supported;
    uint64_t pin_limit;     /* pages, 0 = unlimited */
    int nholes;
    struct range holes[8];
    uint64_t aperture_last;
    bool spapr;
    int cdev_major;
    bool strict_exit;
    int trace;
    unsigned dma_avail;
    uint64_t isolated_groups;  /* bit g: group g shares no container */
    uint64_t second_iommu;     /* bit i: vfio<i> sits behind another IOMMU */
    uint64_t reset_bus;        /* bit i: vfio<i> is on the one resettable bus (dev_set) */
    uint64_t no_flr;           /* bit i: vfio<i> has no function reset (no FLAGS_RESET) */
    bool bar2;                 /* devices have the mmap-able memory BAR2 */
    bool iommufd_p2p;          /* IOMMU_IOAS_MAP accepts a BAR mmap (not Linux 6.12) */
    int nresv;                 /* VFIO_MODEL_DEVICE_RESV: per-device reserved IOVA ranges */
    struct { int dev; struct range r; } resv[MAX_DEV_RESV];
    uint64_t mig_flags;        /* VFIO_MODEL_MIGRATION: VFIO_MIGRATION_* (0: no migration) */
    bool drop_dirty;           /* VFIO_MODEL_DROP_DIRTY: device writes mark nothing dirty */
};

extern struct config cfg;

#endif
