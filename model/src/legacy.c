/*
 * vfio-model: legacy VFIO container (/dev/vfio/vfio, type1v2 and sPAPR TCE
 * v2) and groups (/dev/vfio/<N>). Semantics from include/uapi/linux/vfio.h
 * and Documentation/driver-api/vfio.rst of Linux 6.12.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ULMAX ((uint64_t)~0UL)

static bool is_type1(int t) { return t == VFIO_TYPE1_IOMMU || t == VFIO_TYPE1v2_IOMMU; }

int container_open(struct mfile *f)
{
    struct container *c = mz(sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return -1;
    }
    c->file = f;
    c->refs = 1;
    f->ctr = c;
    cnt.containers++;
    return 0;
}

static void dma_free(struct container *c, struct dma *d)
{
    cnt.dmas--;
    cnt.dma_bytes_mapped -= (long)d->size;
    cnt.t1_pinned -= (long)d->npinned;
    c->ndma--;
    free(d);
}

static void container_unmap_all(struct container *c)
{
    while (c->dmas) {
        struct dma *d = c->dmas;
        c->dmas = d->next;
        dma_free(c, d);
    }
}

static void spapr_reset(struct container *c)
{
    while (c->mem) {
        struct spapr_mem *m = c->mem;
        c->mem = m->next;
        cnt.t1_pinned -= (long)(m->size / PG);
        cnt.spapr_mem--;
        free(m);
    }
    for (int i = 0; i < 2; i++)
        if (c->win[i].used) {
            c->win[i].used = false;
            cnt.spapr_windows--;
        }
}

/* The container loses its IOMMU model once its last group leaves. */
static void container_drop_iommu(struct container *c)
{
    container_unmap_all(c);
    spapr_reset(c);
    if (c->iommu_type)
        cnt.containers_set--;
    c->iommu_type = 0;
    c->dirty_on = false;
    dirty_free(&c->dirty);
}

static void container_put(struct container *c)
{
    if (--c->refs > 0)
        return;
    container_drop_iommu(c);
    cnt.containers--;
    free(c);
}

void container_release(struct container *c)
{
    c->file = NULL;
    container_put(c);
}

/* ----------------------------------------------------------- type1 */

/* The extra reserved ranges (VFIO_MODEL_DEVICE_RESV) of group @g: those
 * of every device in it, as iommu_get_group_resv_regions() collects them.
 * Returns their number (MAX_DEV_RESV entries in out[] at most). */
static int group_resv(const struct group *g, struct range *out)
{
    int n = 0;
    for (int i = 0; i < cfg.ndev && cfg.nresv; i++)
        if (devs[i].group == g->num) {
            struct range rv[MAX_DEV_RESV];
            int k = dev_resv(i, rv);
            for (int j = 0; j < k && n < MAX_DEV_RESV; j++)
                out[n++] = rv[j];
        }
    return n;
}

static void iova_ranges(struct container *c, struct range *out, int *n)
{
    /* type1 with an IOMMU group attached: the device's MSI window is a
     * reserved region, and so are the reserved regions of every group in
     * the container */
    out[0] = (struct range){ 0, cfg.aperture_last };
    *n = ranges_minus_holes(out, 1);
    for (int i = 0; i < ngroups; i++)
        if (groups[i].ctr == c) {
            struct range rv[MAX_DEV_RESV];
            *n = ranges_minus(out, *n, rv, group_resv(&groups[i], rv));
        }
}

static long type1_get_info(struct container *c, void *arg)
{
    struct vfio_iommu_type1_info *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + 8;
    if (u->argsz < minsz)
        return -EINVAL;
    struct vfio_iommu_type1_info info;
    memset(&info, 0, sizeof(info));
    info.argsz = u->argsz;
    info.flags = VFIO_IOMMU_INFO_PGSIZES;
    info.iova_pgsizes = PG | (2ULL << 20) | (1ULL << 30);
    if (u->argsz >= offsetof(struct vfio_iommu_type1_info, cap_offset) + 4)
        minsz = offsetof(struct vfio_iommu_type1_info, cap_offset) + 4;
    /* capability chain */
    char caps[1024];
    size_t cs = 0;
    struct range r[MAX_RANGES];
    int n;
    iova_ranges(c, r, &n);
    struct vfio_iommu_type1_info_cap_iova_range *ir = (void *)caps;
    memset(caps, 0, sizeof(caps));
    ir->header.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
    ir->header.version = 1;
    ir->nr_iovas = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        ir->iova_ranges[i].start = r[i].start;
        ir->iova_ranges[i].end = r[i].last;
    }
    cs = sizeof(*ir) + sizeof(ir->iova_ranges[0]) * (size_t)n;
    cs = (cs + 7) & ~7UL;
    struct vfio_iommu_type1_info_cap_migration *mig = (void *)(caps + cs);
    ir->header.next = (uint32_t)(sizeof(info) + cs);
    mig->header.id = VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION;
    mig->header.version = 1;
    mig->flags = 0;
    mig->pgsize_bitmap = PG;
    mig->max_dirty_bitmap_size = 256ULL << 20;
    cs += sizeof(*mig);
    cs = (cs + 7) & ~7UL;
    struct vfio_iommu_type1_info_dma_avail *av = (void *)(caps + cs);
    mig->header.next = (uint32_t)(sizeof(info) + cs);
    av->header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
    av->header.version = 1;
    av->avail = cfg.dma_avail - (unsigned)c->ndma;
    cs += sizeof(*av);
    info.flags |= VFIO_IOMMU_INFO_CAPS;
    if (u->argsz < sizeof(info) + cs) {
        info.argsz = (uint32_t)(sizeof(info) + cs);
        info.cap_offset = 0;
    } else {
        memcpy((char *)arg + sizeof(info), caps, cs);
        info.cap_offset = sizeof(info);
    }
    memcpy(arg, &info, minsz);
    return 0;
}

static struct dma *dma_find_overlap(struct container *c, uint64_t iova, uint64_t last)
{
    for (struct dma *d = c->dmas; d; d = d->next)
        if (!(last < d->iova || iova > d->iova + d->size - 1))
            return d;
    return NULL;
}

static long spapr_check_iova(struct container *c, uint64_t iova, uint64_t size)
{
    for (int i = 0; i < 2; i++)
        if (c->win[i].used && iova >= c->win[i].start &&
            iova + size - 1 <= c->win[i].start + c->win[i].size - 1)
            return 0;
    return -ENXIO;
}

static long type1_map(struct container *c, void *arg)
{
    struct vfio_iommu_type1_dma_map *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_type1_dma_map, size) + 8;
    if (u->argsz < minsz)
        return -EINVAL;
    uint32_t mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
    if (u->flags & ~mask)
        return -EINVAL;
    if (u->flags & VFIO_DMA_MAP_FLAG_VADDR)
        return -ENOTTY;         /* VFIO_UPDATE_VADDR is not advertised */
    unsigned prot = u->flags & (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    if (!prot || !u->size || ((u->size | u->iova | u->vaddr) & (PG - 1)))
        return -EINVAL;
    uint64_t last, vlast;
    if (__builtin_add_overflow(u->iova, u->size - 1, &last) ||
        __builtin_add_overflow(u->vaddr, u->size - 1, &vlast))
        return -EINVAL;
    if (c->iommu_type == VFIO_SPAPR_TCE_v2_IOMMU) {
        if (spapr_check_iova(c, u->iova, u->size))
            return -ENXIO;
        bool reg = false;
        for (struct spapr_mem *m = c->mem; m; m = m->next)
            if (u->vaddr >= m->vaddr && vlast <= m->vaddr + m->size - 1)
                reg = true;
        if (!reg)
            return -EINVAL;     /* v2 needs preregistered memory */
    }
    if (dma_find_overlap(c, u->iova, last))
        return -EEXIST;
    if (is_type1(c->iommu_type)) {
        struct range r[MAX_RANGES];
        int n;
        iova_ranges(c, r, &n);
        bool ok = false;
        for (int i = 0; i < n; i++)
            if (u->iova >= r[i].start && last <= r[i].last)
                ok = true;
        if (!ok)
            return -EINVAL;
    }
    if ((unsigned)c->ndma >= cfg.dma_avail)
        return -ENOSPC;
    /* sPAPR v2: preregistration pinned it. type1: BAR pages (VM_PFNMAP)
     * are mapped by pfn, not pinned nor counted (vfio's reserved pfns). */
    uint64_t npg = 0;
    if (c->iommu_type != VFIO_SPAPR_TCE_v2_IOMMU) {
        npg = u->size / PG - bar_pages_in(u->vaddr, u->size);
        if (cfg.pin_limit && (uint64_t)(cnt.pinned + cnt.t1_pinned) + npg > cfg.pin_limit)
            return -ENOMEM;
        if (pin_check_va(u->vaddr, u->size))
            return -EFAULT;
    }
    struct dma *d = mz(sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->iova = u->iova;
    d->size = u->size;
    d->vaddr = u->vaddr;
    d->prot = prot;
    d->npinned = npg;
    d->next = c->dmas;
    c->dmas = d;
    c->ndma++;
    cnt.dmas++;
    cnt.dma_bytes_mapped += (long)d->size;
    cnt.t1_pinned += (long)npg;
    return 0;
}

/* Fill a user bitmap (one bit per pgsize page from base) and clear. */
static long dirty_fill(struct container *c, uint64_t base, uint64_t size, uint64_t pgsize,
                       uint64_t *data, uint64_t bmsize)
{
    if (pgsize != PG)
        return -EINVAL;
    uint64_t npg = size / pgsize;
    if (bmsize < ((npg + 63) / 64) * 8)
        return -EINVAL;
    if (!data)
        return -EINVAL;
    dirty_extract(&c->dirty, base, base + size - 1, PG, data, true);
    return 0;
}

static long type1_unmap(struct container *c, void *arg)
{
    struct vfio_iommu_type1_dma_unmap *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_type1_dma_unmap, size) + 8;
    if (u->argsz < minsz)
        return -EINVAL;
    uint32_t mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL |
                    VFIO_DMA_UNMAP_FLAG_VADDR;
    if (u->flags & ~mask)
        return -EINVAL;
    if (u->flags & VFIO_DMA_UNMAP_FLAG_VADDR)
        return -EINVAL;
    bool all = u->flags & VFIO_DMA_UNMAP_FLAG_ALL;
    bool getdirty = u->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
    if (all && getdirty)
        return -EINVAL;
    uint64_t start = u->iova, last;
    if (all) {
        if (u->iova || u->size)
            return -EINVAL;
        last = UINT64_MAX;
    } else {
        if (!u->size || ((u->iova | u->size) & (PG - 1)))
            return -EINVAL;
        if (__builtin_add_overflow(u->iova, u->size - 1, &last))
            return -EINVAL;
    }
    struct vfio_bitmap *bm = NULL;
    if (getdirty) {
        if (u->argsz < minsz + sizeof(struct vfio_bitmap))
            return -EINVAL;
        if (!c->dirty_on)
            return -EINVAL;
        bm = (struct vfio_bitmap *)u->data;
        if (bm->pgsize != PG || bm->size < (((u->size / PG) + 63) / 64) * 8)
            return -EINVAL;
    }
    /* type1v2: no splitting of mappings at either end */
    if (!all) {
        for (struct dma *d = c->dmas; d; d = d->next) {
            uint64_t dl = d->iova + d->size - 1;
            if (dl < start || d->iova > last)
                continue;
            if (d->iova < start || dl > last)
                return -EINVAL;
        }
    }
    if (getdirty) {
        cnt.dirty_queries++;
        long r = dirty_fill(c, start, u->size, bm->pgsize, (uint64_t *)bm->data, bm->size);
        if (r)
            return r;
    }
    uint64_t unmapped = 0;
    for (struct dma **pp = &c->dmas; *pp;) {
        struct dma *d = *pp;
        if (d->iova >= start && d->iova + d->size - 1 <= last) {
            *pp = d->next;
            unmapped += d->size;
            dirty_clear_range(&c->dirty, d->iova, d->iova + d->size - 1);
            dma_free(c, d);
        } else {
            pp = &d->next;
        }
    }
    u->size = unmapped;
    return 0;
}

static long type1_dirty(struct container *c, void *arg)
{
    struct vfio_iommu_type1_dirty_bitmap *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_type1_dirty_bitmap, flags) + 4;
    if (u->argsz < minsz)
        return -EINVAL;
    uint32_t mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
                    VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
    if (u->flags & ~mask)
        return -EINVAL;
    if (__builtin_popcount(u->flags) != 1)
        return -EINVAL;
    if (u->flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
        if (!c->dirty_on)
            dirty_free(&c->dirty);
        c->dirty_on = true;
        return 0;
    }
    if (u->flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
        c->dirty_on = false;
        dirty_free(&c->dirty);
        return 0;
    }
    if (u->argsz < minsz + sizeof(struct vfio_iommu_type1_dirty_bitmap_get))
        return -EINVAL;
    struct vfio_iommu_type1_dirty_bitmap_get *g = (void *)u->data;
    if (!c->dirty_on)
        return -EINVAL;
    if (!g->size || ((g->iova | g->size) & (PG - 1)))
        return -EINVAL;
    uint64_t last;
    if (__builtin_add_overflow(g->iova, g->size - 1, &last))
        return -EINVAL;
    /* the range must not split a mapping and must be mapped */
    uint64_t covered = 0;
    for (struct dma *d = c->dmas; d; d = d->next) {
        uint64_t dl = d->iova + d->size - 1;
        if (dl < g->iova || d->iova > last)
            continue;
        if (d->iova < g->iova || dl > last)
            return -EINVAL;
        covered += d->size;
    }
    if (covered != g->size)
        return -EINVAL;
    cnt.dirty_queries++;
    return dirty_fill(c, g->iova, g->size, g->bitmap.pgsize, (uint64_t *)g->bitmap.data, g->bitmap.size);
}

/* ------------------------------------------------------------ sPAPR */

static long spapr_info(struct container *c, void *arg)
{
    (void)c;
    struct vfio_iommu_spapr_tce_info *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_spapr_tce_info, dma32_window_size) + 4;
    if (u->argsz < minsz)
        return -EINVAL;
    struct vfio_iommu_spapr_tce_info info;
    memset(&info, 0, sizeof(info));
    info.argsz = u->argsz;
    info.dma32_window_start = 0;
    info.dma32_window_size = 1U << 30;
    info.flags = VFIO_IOMMU_SPAPR_INFO_DDW;
    info.ddw.pgsizes = PG | (64ULL << 10) | (16ULL << 20);
    info.ddw.max_dynamic_windows_supported = 1;
    info.ddw.levels = 5;
    size_t n = u->argsz < sizeof(info) ? minsz : sizeof(info);
    if (u->argsz >= sizeof(info))
        n = sizeof(info);
    memcpy(arg, &info, n);
    return 0;
}

static long spapr_register(struct container *c, void *arg, bool reg)
{
    struct vfio_iommu_spapr_register_memory *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_spapr_register_memory, size) + 8;
    if (u->argsz < minsz)
        return -EINVAL;
    if (u->flags)
        return -EINVAL;
    if (!u->size || ((u->vaddr | u->size) & (PG - 1)))
        return -EINVAL;
    for (struct spapr_mem **pp = &c->mem; *pp; pp = &(*pp)->next) {
        struct spapr_mem *m = *pp;
        if (m->vaddr == u->vaddr && m->size == u->size) {
            if (reg)
                return -EBUSY;
            *pp = m->next;
            cnt.t1_pinned -= (long)(m->size / PG);
            cnt.spapr_mem--;
            free(m);
            return 0;
        }
        if (reg && !(u->vaddr + u->size <= m->vaddr || u->vaddr >= m->vaddr + m->size))
            return -EINVAL;
    }
    if (!reg)
        return -ENOENT;
    uint64_t npg = u->size / PG;
    if (cfg.pin_limit && (uint64_t)(cnt.pinned + cnt.t1_pinned) + npg > cfg.pin_limit)
        return -ENOMEM;
    if (pin_check_va(u->vaddr, u->size) || bar_pages_in(u->vaddr, u->size))
        return -EFAULT;         /* not mapped, or a BAR: nothing to pin */
    struct spapr_mem *m = mz(sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->vaddr = u->vaddr;
    m->size = u->size;
    m->next = c->mem;
    c->mem = m;
    cnt.t1_pinned += (long)npg;
    cnt.spapr_mem++;
    return 0;
}

static long spapr_create(struct container *c, void *arg)
{
    struct vfio_iommu_spapr_tce_create *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_spapr_tce_create, start_addr) + 8;
    if (u->argsz < minsz)
        return -EINVAL;
    if (u->flags)
        return -EINVAL;
    unsigned s = u->page_shift;
    if (s != 12 && s != 16 && s != 24)
        return -EINVAL;
    if (!u->window_size || (u->window_size & ((1ULL << s) - 1)) || !u->levels || u->levels > 5)
        return -EINVAL;
    int slot = -1;
    for (int i = 0; i < 2; i++)
        if (!c->win[i].used) {
            slot = i;
            break;
        }
    if (slot < 0)
        return -ENOSPC;
    c->win[slot].used = true;
    c->win[slot].start = slot == 0 ? 0 : 1ULL << 59;
    c->win[slot].size = u->window_size;
    c->win[slot].shift = s;
    u->start_addr = c->win[slot].start;
    cnt.spapr_windows++;
    return 0;
}

static long spapr_remove(struct container *c, void *arg)
{
    struct vfio_iommu_spapr_tce_remove *u = arg;
    size_t minsz = offsetof(struct vfio_iommu_spapr_tce_remove, start_addr) + 8;
    if (u->argsz < minsz)
        return -EINVAL;
    if (u->flags)
        return -EINVAL;
    for (int i = 0; i < 2; i++)
        if (c->win[i].used && c->win[i].start == u->start_addr) {
            /* drop mappings inside the window */
            for (struct dma **pp = &c->dmas; *pp;) {
                struct dma *d = *pp;
                if (d->iova >= c->win[i].start && d->iova < c->win[i].start + c->win[i].size) {
                    *pp = d->next;
                    dma_free(c, d);
                } else {
                    pp = &d->next;
                }
            }
            c->win[i].used = false;
            cnt.spapr_windows--;
            return 0;
        }
    return -EINVAL;
}

long container_ioctl(struct container *c, unsigned long cmd, void *arg)
{
    switch (cmd) {
    case VFIO_GET_API_VERSION:
        count_ioctl(cmd, true);
        return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION: {
        count_ioctl(cmd, true);
        unsigned long ext = (unsigned long)arg;
        bool spapr = cfg.spapr;
        switch (ext) {
        case VFIO_TYPE1_IOMMU:
        case VFIO_TYPE1v2_IOMMU:
        case VFIO_UNMAP_ALL:
            return !spapr;
        case VFIO_SPAPR_TCE_v2_IOMMU:
            return spapr;
        default:
            return 0;
        }
    }
    case VFIO_SET_IOMMU: {
        count_ioctl(cmd, true);
        long t = (long)arg;
        if (c->iommu_type)
            return -EBUSY;
        if (!c->ngroups)
            return -EINVAL;
        if (cfg.spapr ? t != VFIO_SPAPR_TCE_v2_IOMMU : !is_type1((int)t))
            return -ENODEV;
        c->iommu_type = (int)t;
        cnt.containers_set++;
        if (t == VFIO_SPAPR_TCE_v2_IOMMU) {
            /* the default 32-bit window exists at start-up */
            c->win[0].used = true;
            c->win[0].start = 0;
            c->win[0].size = 1ULL << 30;
            c->win[0].shift = 12;
            cnt.spapr_windows++;
        }
        return 0;
    }
    default:
        break;
    }
    bool t1 = is_type1(c->iommu_type), sp = c->iommu_type == VFIO_SPAPR_TCE_v2_IOMMU;
    switch (cmd) {
    case VFIO_IOMMU_GET_INFO:       /* == VFIO_IOMMU_SPAPR_TCE_GET_INFO */
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        return t1 ? type1_get_info(c, arg) : sp ? spapr_info(c, arg) : -EINVAL;
    case VFIO_IOMMU_MAP_DMA:
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        return (t1 || sp) ? type1_map(c, arg) : -EINVAL;
    case VFIO_IOMMU_UNMAP_DMA:
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        if (sp && !(((struct vfio_iommu_type1_dma_unmap *)arg)->flags & VFIO_DMA_UNMAP_FLAG_ALL) &&
            ((struct vfio_iommu_type1_dma_unmap *)arg)->argsz >= 24 &&
            spapr_check_iova(c, ((struct vfio_iommu_type1_dma_unmap *)arg)->iova,
                             ((struct vfio_iommu_type1_dma_unmap *)arg)->size))
            return -ENXIO;
        return (t1 || sp) ? type1_unmap(c, arg) : -EINVAL;
    case VFIO_IOMMU_DIRTY_PAGES:    /* == SPAPR_REGISTER_MEMORY */
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        return t1 ? type1_dirty(c, arg) : sp ? spapr_register(c, arg, true) : -EINVAL;
    case VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY:
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        return sp ? spapr_register(c, arg, false) : -ENOTTY;
    case VFIO_IOMMU_SPAPR_TCE_CREATE:
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        return sp ? spapr_create(c, arg) : -ENOTTY;
    case VFIO_IOMMU_SPAPR_TCE_REMOVE:
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        return sp ? spapr_remove(c, arg) : -ENOTTY;
    case VFIO_EEH_PE_OP: {
        count_ioctl(cmd, true);
        struct vfio_eeh_pe_op *u = arg;
        if (!sp)
            return -ENOTTY;
        if (!u)
            return -EFAULT;
        if (u->argsz < offsetof(struct vfio_eeh_pe_op, op) + 4 || u->flags)
            return -EINVAL;
        switch (u->op) {
        case VFIO_EEH_PE_GET_STATE:
            return VFIO_EEH_PE_STATE_NORMAL;
        case VFIO_EEH_PE_DISABLE: case VFIO_EEH_PE_ENABLE: case VFIO_EEH_PE_UNFREEZE_IO:
        case VFIO_EEH_PE_UNFREEZE_DMA: case VFIO_EEH_PE_RESET_DEACTIVATE:
        case VFIO_EEH_PE_RESET_HOT: case VFIO_EEH_PE_RESET_FUNDAMENTAL:
        case VFIO_EEH_PE_CONFIGURE:
            return 0;
        default:
            return -EINVAL;
        }
    }
    case VFIO_IOMMU_ENABLE:
    case VFIO_IOMMU_DISABLE:
        count_ioctl(cmd, true);
        return sp ? 0 : -ENOTTY;
    default:
        count_ioctl(cmd, false);
        return -ENOTTY;
    }
}

int type1_translate(struct container *c, uint64_t iova, uint64_t len, bool write,
                    void **uva_out, uint64_t *contig)
{
    for (struct dma *d = c->dmas; d; d = d->next)
        if (iova >= d->iova && iova - d->iova < d->size) {
            if (!(d->prot & (write ? VFIO_DMA_MAP_FLAG_WRITE : VFIO_DMA_MAP_FLAG_READ)))
                return -EPERM;
            uint64_t room = d->size - (iova - d->iova);
            *contig = room < len ? room : len;
            *uva_out = (void *)(uintptr_t)(d->vaddr + (iova - d->iova));
            return 0;
        }
    return -EFAULT;
}

/* ------------------------------------------------------------ groups */

static struct group *group_by_num(int num)
{
    for (int i = 0; i < ngroups; i++)
        if (groups[i].num == num)
            return &groups[i];
    return NULL;
}

int group_open(struct mfile *f, int num)
{
    struct group *g = group_by_num(num);
    if (!g) {
        errno = ENOENT;
        return -1;
    }
    if (g->file) {
        errno = EBUSY;
        return -1;
    }
    g->file = f;
    f->grp = g;
    cnt.groups_open++;
    return 0;
}

static void group_unset(struct group *g)
{
    struct container *c = g->ctr;
    g->ctr = NULL;
    cnt.groups_attached--;
    if (--c->ngroups == 0)
        container_drop_iommu(c);
    container_put(c);
}

void group_release(struct group *g)
{
    g->file = NULL;
    cnt.groups_open--;
    /* device fds keep the group's container association alive */
    if (g->ctr && g->ndevfds == 0)
        group_unset(g);
}

void group_devfd_closed(struct group *g)
{
    g->ndevfds--;
    if (!g->file && g->ctr && g->ndevfds == 0)
        group_unset(g);
}

long group_ioctl(struct group *g, unsigned long cmd, void *arg)
{
    switch (cmd) {
    case VFIO_GROUP_GET_STATUS: {
        count_ioctl(cmd, true);
        struct vfio_group_status *u = arg;
        if (!u)
            return -EFAULT;
        if (u->argsz < sizeof(*u))
            return -EINVAL;
        u->flags = VFIO_GROUP_FLAGS_VIABLE | (g->ctr ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
        return 0;
    }
    case VFIO_GROUP_SET_CONTAINER: {
        count_ioctl(cmd, true);
        if (!arg)
            return -EFAULT;
        int fd = *(int *)arg;
        if (g->ctr)
            return -EINVAL;
        struct mfile *f = lookup_fd_locked(fd);
        if (!f)
            return -EBADF;
        if (f->kind != FK_CONTAINER)
            return -EINVAL;
        struct container *c = f->ctr;
        if (c->ngroups && c->iommu_type == VFIO_SPAPR_TCE_v2_IOMMU)
            return -EBUSY;      /* one group per sPAPR container here */
        /* A group behind an IOMMU that cannot share a container (test
         * knob for userspace that must then create a second one). */
        if (c->ngroups && cfg_bit(cfg.isolated_groups, g->num))
            return -EPERM;
        /* type1 attaching the group to a container in use: its reserved
         * regions must not hit a mapping (vfio_iommu_resv_conflict) */
        if (is_type1(c->iommu_type)) {
            struct range rv[MAX_DEV_RESV];
            int n = group_resv(g, rv);
            for (int i = 0; i < n; i++)
                if (dma_find_overlap(c, rv[i].start, rv[i].last))
                    return -EINVAL;
        }
        g->ctr = c;
        c->refs++;
        c->ngroups++;
        cnt.groups_attached++;
        return 0;
    }
    case VFIO_GROUP_UNSET_CONTAINER:
        count_ioctl(cmd, true);
        if (!g->ctr)
            return -EINVAL;
        if (g->ndevfds)
            return -EBUSY;
        group_unset(g);
        return 0;
    case VFIO_GROUP_GET_DEVICE_FD: {
        count_ioctl(cmd, true);
        const char *name = arg;
        if (!name)
            return -EFAULT;
        if (!g->ctr || !g->ctr->iommu_type)
            return -EINVAL;
        struct mdev *m = NULL;
        for (int i = 0; i < cfg.ndev; i++)
            if (devs[i].group == g->num && !strcmp(devs[i].bdf, name))
                m = &devs[i];
        if (!m)
            return -ENODEV;
        if (m->owner && m->owner->cdev)
            return -EBUSY;
        struct devfile *df = devfile_new_group(g, m);
        if (!df)
            return -errno;
        int fd = -1;
        char tag[64];
        snprintf(tag, sizeof(tag), "device:%s", m->bdf);
        struct mfile *f = file_new(FK_DEVICE, tag, 1, &fd);
        if (!f) {
            int e = errno;
            devfile_release(df);
            return -e;
        }
        f->df = df;
        df->file = f;
        return fd;
    }
    default:
        count_ioctl(cmd, false);
        return -ENOTTY;
    }
}
