/*
 * vfio-model: /dev/iommu (iommufd) model.
 * Semantics follow include/uapi/linux/iommufd.h and
 * Documentation/userspace-api/iommufd.rst of Linux 6.12.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define U64MAX UINT64_MAX
#define ULMAX ((uint64_t)~0UL)

static bool aligned(uint64_t v) { return (v & (PG - 1)) == 0; }

/* ---------------------------------------------------------------- pinning */

/* The kernel fails to pin a VA range that is not mapped: EFAULT. */
int pin_check_va(uint64_t uva, uint64_t len)
{
    uint64_t start = uva & ~(PG - 1);
    uint64_t npg = (uva + len - start + PG - 1) / PG;
    static unsigned char vec[16384];    /* 64 MiB per call; under the model lock */
    for (uint64_t done = 0; done < npg;) {
        uint64_t n = npg - done > sizeof(vec) ? sizeof(vec) : npg - done;
        if (mincore((void *)(uintptr_t)(start + done * PG), n * PG, vec) < 0)
            return -EFAULT;
        done += n;
    }
    return 0;
}

/* A BAR mmap has no pages to pin (VM_PFNMAP): Linux 6.12's iommufd fails
 * with EFAULT; with VFIO_MODEL_IOMMUFD_P2P it is mapped but, like type1's
 * reserved pfns, not counted in pinned_pages nor against the limit. */
static int pages_pin(struct pages *p)
{
    if (p->pin_users++ > 0)
        return 0;
    uint64_t nbar = bar_pages_in(p->uva, p->len);
    uint64_t npg = p->len / PG - (cfg.iommufd_p2p ? nbar : 0);
    if (cfg.pin_limit && (uint64_t)(cnt.pinned + cnt.t1_pinned) + npg > cfg.pin_limit) {
        p->pin_users--;
        return -ENOMEM;
    }
    int r = pin_check_va(p->uva, p->len);
    if (!r && nbar && !cfg.iommufd_p2p)
        r = -EFAULT;
    if (r) {
        p->pin_users--;
        return r;
    }
    p->npinned = npg;
    cnt.pinned += (long)npg;
    return 0;
}

static void pages_unpin(struct pages *p)
{
    if (--p->pin_users == 0)
        cnt.pinned -= (long)p->npinned;
}

static int area_pin(struct area *a)
{
    if (a->pinned)
        return 0;
    int r = pages_pin(a->pages);
    if (!r)
        a->pinned = true;
    return r;
}

static void area_unpin(struct area *a)
{
    if (a->pinned) {
        pages_unpin(a->pages);
        a->pinned = false;
    }
}

static int dev_iommu(struct devfile *df);

/* ---------------------------------------------------------------- ranges */

/* Is device @m attached (through its cdev) to a domain of @s? */
static bool dev_in_ioas(const struct mdev *m, const struct ioas *s)
{
    return m->owner && m->owner->cdev && m->owner->hwpt && m->owner->hwpt->ioas == s;
}

/* valid = [0, max] minus reserved; reserved depends on attached domains
 * (aperture, global holes) and on the devices attached (their own
 * reserved ranges, VFIO_MODEL_DEVICE_RESV) */
static int valid_ranges(struct ioas *s, struct range *out)
{
    int n = 1;
    out[0].start = 0;
    out[0].last = s->nhwpt ? cfg.aperture_last : ULMAX;
    if (!s->nhwpt)
        return n;
    n = ranges_minus_holes(out, n);
    for (int i = 0; i < cfg.ndev && cfg.nresv; i++)
        if (dev_in_ioas(&devs[i], s)) {
            struct range rv[MAX_DEV_RESV];
            n = ranges_minus(out, n, rv, dev_resv(i, rv));
        }
    return n;
}

static bool range_within(struct range *rs, int n, uint64_t start, uint64_t last)
{
    for (int i = 0; i < n; i++)
        if (start >= rs[i].start && last <= rs[i].last)
            return true;
    return false;
}

/* --------------------------------------------------------------- objects */

static uint32_t obj_add(struct ioctx *c, struct obj *o)
{
    for (uint32_t id = 1; id < MAX_OBJS; id++)
        if (!c->objs[id]) {
            c->objs[id] = o;
            o->id = id;
            return id;
        }
    return 0;
}

static struct obj *obj_get(struct ioctx *c, uint32_t id, enum objtype t)
{
    if (id == 0 || id >= MAX_OBJS || !c->objs[id])
        return NULL;
    if (t && c->objs[id]->type != t)
        return NULL;
    return c->objs[id];
}

static struct area *area_find(struct ioas *s, uint64_t iova)
{
    for (struct area *a = s->areas; a; a = a->next)
        if (iova >= a->iova && iova - a->iova < a->len)
            return a;
    return NULL;
}

static bool area_overlap(struct ioas *s, uint64_t start, uint64_t last)
{
    for (struct area *a = s->areas; a; a = a->next)
        if (!(last < a->iova || start > a->iova + a->len - 1))
            return true;
    return false;
}

/* A device joining @s reserves its own ranges there first
 * (iopt_table_enforce_dev_resv_regions): EADDRINUSE when a mapping or an
 * allowed range is in the way; nothing changes then. */
static long dev_resv_check(const struct mdev *m, struct ioas *s)
{
    struct range rv[MAX_DEV_RESV];
    int n = dev_resv(m->idx, rv);
    for (int i = 0; i < n; i++) {
        if (area_overlap(s, rv[i].start, rv[i].last) ||
            (s->nallowed > 0 && ranges_overlap(s->allowed, s->nallowed, rv[i].start, rv[i].last)))
            return -EADDRINUSE;
    }
    return 0;
}

static void area_free(struct ioas *s, struct area *a)
{
    area_unpin(a);
    if (--a->pages->refs == 0)
        free(a->pages);
    cnt.areas--;
    cnt.area_bytes -= (long)a->len;
    (void)s;
    free(a);
}

/* Clear dirty bits of an unmapped range on every domain of the IOAS */
static void ioas_unmap_dirty(struct ioctx *c, struct ioas *s, uint64_t start, uint64_t last)
{
    for (uint32_t i = 1; i < MAX_OBJS; i++) {
        struct obj *o = c->objs[i];
        if (o && o->type == OBJ_HWPT && ((struct hwpt *)o)->ioas == s)
            dirty_clear_range(&((struct hwpt *)o)->dirty, start, last);
    }
}

static long ioas_unmap_range(struct ioctx *c, struct ioas *s, uint64_t start, uint64_t last,
                             uint64_t *unmapped)
{
    *unmapped = 0;
    /* refuse to split: every intersecting area must be fully inside */
    for (struct area *a = s->areas; a; a = a->next) {
        uint64_t al = a->iova + a->len - 1;
        if (al < start || a->iova > last)
            continue;
        if (a->iova < start || al > last)
            return -ENOENT;
    }
    for (struct area **pp = &s->areas; *pp;) {
        struct area *a = *pp;
        uint64_t al = a->iova + a->len - 1;
        if (a->iova >= start && al <= last) {
            *pp = a->next;
            *unmapped += a->len;
            ioas_unmap_dirty(c, s, a->iova, al);
            area_free(s, a);
        } else {
            pp = &a->next;
        }
    }
    return *unmapped ? 0 : -ENOENT;
}

static long ioas_map(struct ioas *s, uint64_t uva, uint64_t len, uint64_t *iova,
                     uint32_t flags, struct pages *share, uint64_t share_off)
{
    if (!len)
        return -EINVAL;
    if (!aligned(len) || !aligned(uva) || ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) && !aligned(*iova)))
        return -EINVAL;
    uint64_t last;
    if (__builtin_add_overflow(uva, len - 1, &last))
        return -EOVERFLOW;
    struct range vr[MAX_RANGES];
    int nv = valid_ranges(s, vr);
    if (flags & IOMMU_IOAS_MAP_FIXED_IOVA) {
        if (__builtin_add_overflow(*iova, len - 1, &last))
            return -EOVERFLOW;
        if (!range_within(vr, nv, *iova, last))
            return -EINVAL;
        if (area_overlap(s, *iova, last))
            return -EEXIST;
    } else {
        /* lowest free IOVA inside the valid (and allowed) ranges */
        bool found = false;
        for (int i = 0; i < nv && !found; i++) {
            uint64_t cand = (vr[i].start + PG - 1) & ~(PG - 1);
            while (!found && cand <= vr[i].last && vr[i].last - cand >= len - 1) {
                uint64_t cl = cand + len - 1;
                if (s->nallowed >= 0 && !range_within(s->allowed, s->nallowed, cand, cl)) {
                    /* advance to the next allowed start above cand */
                    uint64_t next = U64MAX;
                    for (int k = 0; k < s->nallowed; k++)
                        if (s->allowed[k].start > cand && s->allowed[k].start < next)
                            next = s->allowed[k].start;
                    if (next == U64MAX)
                        break;
                    cand = (next + PG - 1) & ~(PG - 1);
                    continue;
                }
                struct area *hit = NULL;
                for (struct area *a = s->areas; a; a = a->next)
                    if (!(cl < a->iova || cand > a->iova + a->len - 1))
                        if (!hit || a->iova + a->len > hit->iova + hit->len)
                            hit = a;
                if (!hit) {
                    found = true;
                    break;
                }
                if (hit->iova + hit->len == 0)
                    break;
                cand = hit->iova + hit->len;
            }
            if (found)
                *iova = cand;
        }
        if (!found)
            return -ENOSPC;
    }
    struct area *a = mz(sizeof(*a));
    if (!a)
        return -ENOMEM;
    struct pages *p = share;
    if (!p) {
        p = mz(sizeof(*p));
        if (!p) {
            free(a);
            return -ENOMEM;
        }
        p->uva = uva;
        p->len = len;
    }
    p->refs++;
    a->pages = p;
    a->off = share ? share_off : 0;
    a->iova = *iova;
    a->len = len;
    a->prot = flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
    if (s->nhwpt) {
        int r = area_pin(a);
        if (r) {
            if (--p->refs == 0)
                free(p);
            free(a);
            return r;
        }
    }
    a->next = s->areas;
    s->areas = a;
    cnt.areas++;
    cnt.area_bytes += (long)len;
    return 0;
}

static void ioas_free(struct ioctx *c, struct ioas *s)
{
    while (s->areas) {
        struct area *a = s->areas;
        s->areas = a->next;
        area_free(s, a);
    }
    c->objs[s->o.id] = NULL;
    cnt.ioas--;
    free(s);
}

/* A domain appears on the IOAS: the reserved regions apply and every area
 * gets pinned (iopt_table_add_domain). */
static long ioas_add_domain(struct ioas *s)
{
    if (s->nhwpt == 0) {
        s->nhwpt = 1;
        struct range vr[MAX_RANGES];
        int nv = valid_ranges(s, vr);
        long r = 0;
        for (struct area *a = s->areas; a && !r; a = a->next)
            if (!range_within(vr, nv, a->iova, a->iova + a->len - 1))
                r = -EADDRINUSE;
        for (int k = 0; k < s->nallowed && !r; k++)
            if (!range_within(vr, nv, s->allowed[k].start, s->allowed[k].last))
                r = -EADDRINUSE;
        for (struct area *a = s->areas; a && !r; a = a->next)
            r = area_pin(a);
        if (r) {
            for (struct area *a = s->areas; a; a = a->next)
                area_unpin(a);
            s->nhwpt = 0;
            return r;
        }
        return 0;
    }
    s->nhwpt++;
    return 0;
}

static void ioas_del_domain(struct ioas *s)
{
    if (--s->nhwpt == 0)
        for (struct area *a = s->areas; a; a = a->next)
            area_unpin(a);
}

static struct hwpt *hwpt_create(struct ioctx *c, struct ioas *s, uint32_t flags, bool autod,
                                long *err)
{
    struct hwpt *h = mz(sizeof(*h));
    if (!h) {
        *err = -ENOMEM;
        return NULL;
    }
    h->o.type = OBJ_HWPT;
    if (!obj_add(c, &h->o)) {
        free(h);
        *err = -ENOSPC;
        return NULL;
    }
    long r = ioas_add_domain(s);
    if (r) {
        c->objs[h->o.id] = NULL;
        free(h);
        *err = r;
        return NULL;
    }
    h->ioas = s;
    h->flags = flags;
    h->auto_domain = autod;
    s->o.users++;
    cnt.hwpt++;
    if (autod)
        cnt.hwpt_auto++;
    if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING)
        cnt.hwpt_dirty++;
    return h;
}

static void hwpt_destroy(struct ioctx *c, struct hwpt *h)
{
    ioas_del_domain(h->ioas);
    h->ioas->o.users--;
    c->objs[h->o.id] = NULL;
    cnt.hwpt--;
    if (h->auto_domain)
        cnt.hwpt_auto--;
    if (h->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING)
        cnt.hwpt_dirty--;
    dirty_free(&h->dirty);
    free(h);
}

/* --------------------------------------------------------------- ioctls */

static long do_destroy(struct ioctx *c, void *b)
{
    struct iommu_destroy *cmd = b;
    struct obj *o = obj_get(c, cmd->id, 0);
    if (!o)
        return -ENOENT;
    if (o->users > 0 || o->type == OBJ_DEVICE)
        return -EBUSY;
    if (o->type == OBJ_IOAS)
        ioas_free(c, (struct ioas *)o);
    else if (o->type == OBJ_HWPT)
        hwpt_destroy(c, (struct hwpt *)o);
    return 0;
}

static long do_ioas_alloc(struct ioctx *c, void *b)
{
    struct iommu_ioas_alloc *cmd = b;
    if (cmd->flags)
        return -EOPNOTSUPP;
    struct ioas *s = mz(sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->o.type = OBJ_IOAS;
    s->nallowed = -1;
    s->huge_pages = 1;
    if (!obj_add(c, &s->o)) {
        free(s);
        return -ENOSPC;
    }
    cmd->out_ioas_id = s->o.id;
    cnt.ioas++;
    return 0;
}

static long do_iova_ranges(struct ioctx *c, void *b)
{
    struct iommu_ioas_iova_ranges *cmd = b;
    if (cmd->__reserved)
        return -EOPNOTSUPP;
    struct ioas *s = (struct ioas *)obj_get(c, cmd->ioas_id, OBJ_IOAS);
    if (!s)
        return -ENOENT;
    struct range vr[MAX_RANGES];
    int nv = valid_ranges(s, vr);
    /* an allowed list narrows what is reported too */
    struct range out[MAX_RANGES];
    int n = 0;
    if (s->nallowed >= 0) {
        for (int i = 0; i < nv; i++)
            for (int k = 0; k < s->nallowed && n < MAX_RANGES; k++) {
                uint64_t st = vr[i].start > s->allowed[k].start ? vr[i].start : s->allowed[k].start;
                uint64_t la = vr[i].last < s->allowed[k].last ? vr[i].last : s->allowed[k].last;
                if (st <= la)
                    out[n++] = (struct range){ st, la };
            }
    } else {
        memcpy(out, vr, sizeof(vr[0]) * (size_t)nv);
        n = nv;
    }
    struct iommu_iova_range *u = (void *)(uintptr_t)cmd->allowed_iovas;
    uint32_t cap = cmd->num_iovas;
    if (cap && !u)
        return -EFAULT;
    for (int i = 0; i < n && (uint32_t)i < cap; i++) {
        u[i].start = out[i].start;
        u[i].last = out[i].last;
    }
    cmd->num_iovas = (uint32_t)n;
    cmd->out_iova_alignment = PG;
    return (uint32_t)n > cap ? -EMSGSIZE : 0;
}

static long do_allow_iovas(struct ioctx *c, void *b)
{
    struct iommu_ioas_allow_iovas *cmd = b;
    if (cmd->__reserved)
        return -EOPNOTSUPP;
    struct ioas *s = (struct ioas *)obj_get(c, cmd->ioas_id, OBJ_IOAS);
    if (!s)
        return -ENOENT;
    if (cmd->num_iovas > MAX_RANGES)
        return -ENOMEM;
    struct iommu_iova_range *u = (void *)(uintptr_t)cmd->allowed_iovas;
    if (cmd->num_iovas && !u)
        return -EFAULT;
    struct range r[MAX_RANGES];
    for (uint32_t i = 0; i < cmd->num_iovas; i++) {
        r[i].start = u[i].start;
        r[i].last = u[i].last;
        if (r[i].start > r[i].last || r[i].last > ULMAX)
            return -EINVAL;
        for (uint32_t k = 0; k < i; k++)
            if (!(r[i].last < r[k].start || r[i].start > r[k].last))
                return -EINVAL;
    }
    struct range vr[MAX_RANGES];
    int nv = valid_ranges(s, vr);
    for (uint32_t i = 0; i < cmd->num_iovas; i++)
        if (!range_within(vr, nv, r[i].start, r[i].last))
            return -EADDRINUSE;
    memcpy(s->allowed, r, sizeof(r[0]) * cmd->num_iovas);
    s->nallowed = cmd->num_iovas ? (int)cmd->num_iovas : -1;
    return 0;
}

#define MAP_FLAGS (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

static long do_map(struct ioctx *c, void *b)
{
    struct iommu_ioas_map *cmd = b;
    if ((cmd->flags & ~MAP_FLAGS) || cmd->__reserved)
        return -EOPNOTSUPP;
    if (cmd->iova >= ULMAX || cmd->length >= ULMAX)
        return -EOVERFLOW;
    struct ioas *s = (struct ioas *)obj_get(c, cmd->ioas_id, OBJ_IOAS);
    if (!s)
        return -ENOENT;
    if (!(cmd->flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)))
        return -EINVAL;
    uint64_t iova = cmd->iova;
    long r = ioas_map(s, cmd->user_va, cmd->length, &iova, cmd->flags, NULL, 0);
    if (r)
        return r;
    cmd->iova = iova;
    return 0;
}

static long do_copy(struct ioctx *c, void *b)
{
    struct iommu_ioas_copy *cmd = b;
    if (cmd->flags & ~MAP_FLAGS)
        return -EOPNOTSUPP;
    if (cmd->length >= ULMAX || cmd->src_iova >= ULMAX || cmd->dst_iova >= ULMAX)
        return -EOVERFLOW;
    if (!(cmd->flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)))
        return -EINVAL;
    struct ioas *src = (struct ioas *)obj_get(c, cmd->src_ioas_id, OBJ_IOAS);
    if (!src)
        return -ENOENT;
    struct ioas *dst = (struct ioas *)obj_get(c, cmd->dst_ioas_id, OBJ_IOAS);
    if (!dst)
        return -ENOENT;
    if (!cmd->length)
        return -EINVAL;
    struct area *a = area_find(src, cmd->src_iova);
    if (!a || cmd->src_iova - a->iova + cmd->length > a->len)
        return -ENOENT;
    uint64_t off = a->off + (cmd->src_iova - a->iova);
    uint64_t iova = cmd->dst_iova;
    long r = ioas_map(dst, a->pages->uva + off, cmd->length, &iova, cmd->flags, a->pages, off);
    if (r)
        return r;
    cmd->dst_iova = iova;
    return 0;
}

static long do_unmap(struct ioctx *c, void *b)
{
    struct iommu_ioas_unmap *cmd = b;
    struct ioas *s = (struct ioas *)obj_get(c, cmd->ioas_id, OBJ_IOAS);
    if (!s)
        return -ENOENT;
    uint64_t unmapped = 0;
    long r;
    if (cmd->iova == 0 && cmd->length == U64MAX) {
        r = ioas_unmap_range(c, s, 0, U64MAX, &unmapped);
        if (r == -ENOENT)
            r = 0;
    } else {
        if (cmd->iova >= ULMAX || cmd->length >= ULMAX)
            return -EOVERFLOW;
        if (!cmd->length)
            return -EINVAL;
        uint64_t last;
        if (__builtin_add_overflow(cmd->iova, cmd->length - 1, &last))
            return -EOVERFLOW;
        r = ioas_unmap_range(c, s, cmd->iova, last, &unmapped);
    }
    if (r)
        return r;
    cmd->length = unmapped;
    return 0;
}

static long do_option(struct ioctx *c, void *b)
{
    struct iommu_option *cmd = b;
    if (cmd->__reserved)
        return -EOPNOTSUPP;
    if (cmd->op != IOMMU_OPTION_OP_SET && cmd->op != IOMMU_OPTION_OP_GET)
        return -EOPNOTSUPP;
    if (cmd->option_id == IOMMU_OPTION_RLIMIT_MODE) {
        if (cmd->object_id)
            return -EINVAL;
        if (cmd->op == IOMMU_OPTION_OP_GET) {
            cmd->val64 = c->rlimit_mode;
            return 0;
        }
        if (cmd->val64 > 1)
            return -EINVAL;
        for (uint32_t i = 1; i < MAX_OBJS; i++)
            if (c->objs[i])
                return -EBUSY;
        c->rlimit_mode = cmd->val64;
        return 0;
    }
    if (cmd->option_id == IOMMU_OPTION_HUGE_PAGES) {
        struct ioas *s = (struct ioas *)obj_get(c, cmd->object_id, OBJ_IOAS);
        if (!s)
            return -ENOENT;
        if (cmd->op == IOMMU_OPTION_OP_GET) {
            cmd->val64 = s->huge_pages;
            return 0;
        }
        if (cmd->val64 > 1)
            return -EINVAL;
        s->huge_pages = cmd->val64;
        return 0;
    }
    return -EOPNOTSUPP;
}

static uint32_t compat_ioas;

static long do_vfio_ioas(struct ioctx *c, void *b)
{
    struct iommu_vfio_ioas *cmd = b;
    if (cmd->__reserved)
        return -EOPNOTSUPP;
    switch (cmd->op) {
    case IOMMU_VFIO_IOAS_GET:
        if (!compat_ioas || !obj_get(c, compat_ioas, OBJ_IOAS))
            return -ENOENT;
        cmd->ioas_id = compat_ioas;
        return 0;
    case IOMMU_VFIO_IOAS_SET:
        if (!obj_get(c, cmd->ioas_id, OBJ_IOAS))
            return -ENOENT;
        compat_ioas = cmd->ioas_id;
        return 0;
    case IOMMU_VFIO_IOAS_CLEAR:
        compat_ioas = 0;
        return 0;
    }
    return -EOPNOTSUPP;
}

#define HWPT_FLAGS (IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | \
                    IOMMU_HWPT_FAULT_ID_VALID)

static long do_hwpt_alloc(struct ioctx *c, void *b)
{
    struct iommu_hwpt_alloc *cmd = b;
    if ((cmd->flags & ~HWPT_FLAGS) || cmd->__reserved || cmd->__reserved2)
        return -EOPNOTSUPP;
    if ((cmd->data_type == IOMMU_HWPT_DATA_NONE && cmd->data_len) ||
        (cmd->data_type != IOMMU_HWPT_DATA_NONE && !cmd->data_len))
        return -EINVAL;
    struct obj *d = obj_get(c, cmd->dev_id, OBJ_DEVICE);
    if (!d)
        return -ENOENT;
    struct obj *pt = obj_get(c, cmd->pt_id, 0);
    if (!pt)
        return -ENOENT;
    if (pt->type == OBJ_HWPT)           /* nesting is not modelled */
        return -EOPNOTSUPP;
    if (pt->type != OBJ_IOAS)
        return -EINVAL;
    if (cmd->data_type != IOMMU_HWPT_DATA_NONE)
        return -EINVAL;
    if (cmd->flags & IOMMU_HWPT_FAULT_ID_VALID)
        return -EOPNOTSUPP;
    if ((cmd->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !cfg.dirty_supported)
        return -EOPNOTSUPP;
    long err = 0;
    struct hwpt *h = hwpt_create(c, (struct ioas *)pt, cmd->flags, false, &err);
    if (!h)
        return err;
    h->iommu = dev_iommu(((struct idev *)d)->df);
    cmd->out_hwpt_id = h->o.id;
    return 0;
}

static long do_get_hw_info(struct ioctx *c, void *b, uint32_t usize)
{
    struct iommu_hw_info *cmd = b;
    if (cmd->flags || cmd->__reserved[0] || cmd->__reserved[1] || cmd->__reserved[2])
        return -EOPNOTSUPP;
    if (!obj_get(c, cmd->dev_id, OBJ_DEVICE))
        return -ENOENT;
    struct iommu_hw_info_vtd vtd = {
        .flags = 0,
        /* VT-d CAP/ECAP of a 48-bit, 4-level capable unit; ECAP.SLADS
         * (bit 45) advertises second-level A/D bits (dirty tracking) */
        .cap_reg = 0x00d2008c22260206ULL,
        .ecap_reg = 0x00f0101e30f0505eULL | (cfg.dirty_supported ? (1ULL << 45) : 0),
    };
    uint32_t len = cmd->data_len < sizeof(vtd) ? cmd->data_len : (uint32_t)sizeof(vtd);
    if (cmd->data_len) {
        if (!cmd->data_uptr)
            return -EFAULT;
        memcpy((void *)(uintptr_t)cmd->data_uptr, &vtd, len);
        if (cmd->data_len > len)
            memset((char *)(uintptr_t)cmd->data_uptr + len, 0, cmd->data_len - len);
    }
    cmd->data_len = len;
    cmd->out_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
    cmd->out_max_pasid_log2 = 0;
    (void)usize;
    cmd->out_capabilities = cfg.dirty_supported ? IOMMU_HW_CAP_DIRTY_TRACKING : 0;
    return 0;
}

/* The HWPT @id, which must have been allocated with dirty tracking */
static long dirty_hwpt_get(struct ioctx *c, uint32_t id, struct hwpt **out)
{
    struct hwpt *h = (struct hwpt *)obj_get(c, id, OBJ_HWPT);
    if (!h)
        return -ENOENT;
    if (!(h->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING))
        return -EOPNOTSUPP;
    *out = h;
    return 0;
}

static long do_set_dirty(struct ioctx *c, void *b)
{
    struct iommu_hwpt_set_dirty_tracking *cmd = b;
    if ((cmd->flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) || cmd->__reserved)
        return -EOPNOTSUPP;
    struct hwpt *h;
    long r = dirty_hwpt_get(c, cmd->hwpt_id, &h);
    if (r)
        return r;
    bool en = cmd->flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE;
    if (en && !h->dirty_on)
        dirty_free(&h->dirty);  /* enabling starts from clean PTEs */
    h->dirty_on = en;
    return 0;
}

static long do_get_dirty(struct ioctx *c, void *b)
{
    struct iommu_hwpt_get_dirty_bitmap *cmd = b;
    if ((cmd->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) || cmd->__reserved)
        return -EOPNOTSUPP;
    struct hwpt *h;
    long r = dirty_hwpt_get(c, cmd->hwpt_id, &h);
    if (r)
        return r;
    uint64_t ps = cmd->page_size;
    if (!ps || (ps & (ps - 1)) || !cmd->length || (cmd->iova & (ps - 1)) ||
        (cmd->length & (ps - 1)))
        return -EINVAL;
    uint64_t last;
    if (__builtin_add_overflow(cmd->iova, cmd->length - 1, &last))
        return -EOVERFLOW;
    if (!cmd->data || (cmd->data & 7))
        return -EINVAL;
    uint64_t *bm = (uint64_t *)(uintptr_t)cmd->data;
    bool clear = !(cmd->flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
    cnt.dirty_queries++;
    dirty_extract(&h->dirty, cmd->iova, last, ps, bm, clear);
    return 0;
}

struct op {
    unsigned nr;
    size_t min, size;
    int kind;
};

#define OP(c, st, last, k) { _IOC_NR(c), offsetof(st, last) + sizeof(((st *)0)->last), sizeof(st), k }

static const struct op ops[] = {
    OP(IOMMU_DESTROY, struct iommu_destroy, id, 0),
    OP(IOMMU_IOAS_ALLOC, struct iommu_ioas_alloc, out_ioas_id, 1),
    OP(IOMMU_IOAS_ALLOW_IOVAS, struct iommu_ioas_allow_iovas, allowed_iovas, 2),
    OP(IOMMU_IOAS_COPY, struct iommu_ioas_copy, src_iova, 3),
    OP(IOMMU_IOAS_IOVA_RANGES, struct iommu_ioas_iova_ranges, out_iova_alignment, 4),
    OP(IOMMU_IOAS_MAP, struct iommu_ioas_map, iova, 5),
    OP(IOMMU_IOAS_UNMAP, struct iommu_ioas_unmap, length, 6),
    OP(IOMMU_OPTION, struct iommu_option, val64, 7),
    OP(IOMMU_VFIO_IOAS, struct iommu_vfio_ioas, __reserved, 8),
    OP(IOMMU_HWPT_ALLOC, struct iommu_hwpt_alloc, __reserved, 9),
    OP(IOMMU_GET_HW_INFO, struct iommu_hw_info, __reserved, 10),
    OP(IOMMU_HWPT_SET_DIRTY_TRACKING, struct iommu_hwpt_set_dirty_tracking, __reserved, 11),
    OP(IOMMU_HWPT_GET_DIRTY_BITMAP, struct iommu_hwpt_get_dirty_bitmap, data, 12),
    OP(IOMMU_HWPT_INVALIDATE, struct iommu_hwpt_invalidate, __reserved, 13),
    OP(IOMMU_FAULT_QUEUE_ALLOC, struct iommu_fault_alloc, out_fault_fd, 14),
};

long iommufd_ioctl(struct ioctx *c, unsigned long cmd, void *arg)
{
    const struct op *op = NULL;
    if (_IOC_TYPE(cmd) == IOMMUFD_TYPE && _IOC_DIR(cmd) == _IOC_NONE && _IOC_SIZE(cmd) == 0)
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (ops[i].nr == _IOC_NR(cmd))
                op = &ops[i];
    if (!op) {
        count_ioctl(cmd, false);
        return -ENOTTY;
    }
    count_ioctl(cmd, true);
    if (!arg)
        return -EFAULT;
    uint32_t usize = *(uint32_t *)arg;
    if (usize < op->min)
        return -EINVAL;
    union {
        uint64_t align;
        char b[128];
    } u;
    memset(&u, 0, sizeof(u));
    memcpy(u.b, arg, usize < op->size ? usize : op->size);
    for (uint32_t i = (uint32_t)op->size; i < usize; i++)
        if (((char *)arg)[i])
            return -E2BIG;
    long r;
    switch (op->kind) {
    case 0: r = do_destroy(c, u.b); break;
    case 1: r = do_ioas_alloc(c, u.b); break;
    case 2: r = do_allow_iovas(c, u.b); break;
    case 3: r = do_copy(c, u.b); break;
    case 4: r = do_iova_ranges(c, u.b); break;
    case 5: r = do_map(c, u.b); break;
    case 6: r = do_unmap(c, u.b); break;
    case 7: r = do_option(c, u.b); break;
    case 8: r = do_vfio_ioas(c, u.b); break;
    case 9: r = do_hwpt_alloc(c, u.b); break;
    case 10: r = do_get_hw_info(c, u.b, usize); break;
    case 11: r = do_set_dirty(c, u.b); break;
    case 12: r = do_get_dirty(c, u.b); break;
    default: r = -EOPNOTSUPP; break;     /* nesting and fault queues */
    }
    if (r == 0 || r == -EMSGSIZE)
        memcpy(arg, u.b, usize < op->size ? usize : op->size);
    return r;
}

/* ---------------------------------------------------------- file level */

struct ioctx *ictx_list[64];

int iommufd_open(struct mfile *f)
{
    struct ioctx *c = mz(sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return -1;
    }
    int slot;
    for (slot = 0; slot < 64 && ictx_list[slot]; slot++)
        ;
    if (slot == 64) {
        free(c);
        errno = EMFILE;
        return -1;
    }
    ictx_list[slot] = c;
    c->file = f;
    c->refs = 1;
    f->ictx = c;
    cnt.ictx++;
    return 0;
}

void ictx_put(struct ioctx *c)
{
    if (--c->refs > 0)
        return;
    /* destroy in dependency order: hwpts, then IOAS */
    for (uint32_t i = 1; i < MAX_OBJS; i++)
        if (c->objs[i] && c->objs[i]->type == OBJ_HWPT)
            hwpt_destroy(c, (struct hwpt *)c->objs[i]);
    for (uint32_t i = 1; i < MAX_OBJS; i++)
        if (c->objs[i] && c->objs[i]->type == OBJ_IOAS)
            ioas_free(c, (struct ioas *)c->objs[i]);
    for (uint32_t i = 1; i < MAX_OBJS; i++)
        if (c->objs[i]) {       /* devices are unbound before the ctx dies */
            free(c->objs[i]);
            c->objs[i] = NULL;
        }
    cnt.ictx--;
    for (int i = 0; i < 64; i++)
        if (ictx_list[i] == c)
            ictx_list[i] = NULL;
    free(c);
}

void iommufd_release(struct ioctx *c)
{
    c->file = NULL;
    ictx_put(c);
}

long iommufd_bind(struct devfile *df, struct ioctx *c, uint32_t *devid)
{
    struct idev *d = mz(sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->o.type = OBJ_DEVICE;
    d->df = df;
    if (!obj_add(c, &d->o)) {
        free(d);
        return -ENOSPC;
    }
    c->refs++;
    df->ictx = c;
    df->idev = d;
    *devid = d->o.id;
    cnt.bound++;
    return 0;
}

void iommufd_detach(struct devfile *df)
{
    struct hwpt *h = df->hwpt;
    if (!h)
        return;
    struct ioctx *c = df->ictx;
    df->hwpt = NULL;
    h->ndev--;
    h->o.users--;
    h->ioas->ndev_attached--;
    cnt.attached--;
    if (h->auto_domain && h->ndev == 0)
        hwpt_destroy(c, h);
}

void iommufd_unbind(struct devfile *df)
{
    struct ioctx *c = df->ictx;
    if (!c)
        return;
    iommufd_detach(df);
    c->objs[df->idev->o.id] = NULL;
    free(df->idev);
    df->idev = NULL;
    df->ictx = NULL;
    cnt.bound--;
    ictx_put(c);
}

/* Which IOMMU instance the device behind @df sits behind */
static int dev_iommu(struct devfile *df)
{
    return df && df->dev && cfg_bit(cfg.second_iommu, df->dev->idx);
}

long iommufd_attach(struct devfile *df, uint32_t *pt_id)
{
    struct ioctx *c = df->ictx;
    struct obj *o = obj_get(c, *pt_id, 0);
    if (!o || o->type == OBJ_DEVICE)
        return -ENOENT;
    struct hwpt *h = NULL;
    bool created = false;
    /* the device's reserved ranges, before the domain is chosen or made */
    long rr = dev_resv_check(df->dev, o->type == OBJ_IOAS ? (struct ioas *)o :
                                                            ((struct hwpt *)o)->ioas);
    if (rr)
        return rr;
    if (o->type == OBJ_IOAS) {
        struct ioas *s = (struct ioas *)o;
        /* reuse a compatible automatic domain of this IOAS */
        for (uint32_t i = 1; i < MAX_OBJS && !h; i++) {
            struct obj *x = c->objs[i];
            if (x && x->type == OBJ_HWPT && ((struct hwpt *)x)->auto_domain &&
                ((struct hwpt *)x)->ioas == s &&
                ((struct hwpt *)x)->iommu == dev_iommu(df))
                h = (struct hwpt *)x;
        }
        if (!h) {
            long err = 0;
            h = hwpt_create(c, s, 0, true, &err);
            if (!h)
                return err;
            h->iommu = dev_iommu(df);
            created = true;
        }
    } else {
        h = (struct hwpt *)o;
        /* a domain of another IOMMU instance cannot take this device */
        if (h->iommu != dev_iommu(df))
            return -EINVAL;
    }
    if (h == df->hwpt) {
        *pt_id = h->o.id;
        return 0;
    }
    (void)created;
    iommufd_detach(df);         /* replace */
    df->hwpt = h;
    h->ndev++;
    h->o.users++;
    h->ioas->ndev_attached++;
    cnt.attached++;
    *pt_id = h->o.id;
    return 0;
}

int iommufd_translate(struct devfile *df, uint64_t iova, uint64_t len, bool write,
                      void **uva_out, uint64_t *contig)
{
    struct hwpt *h = df->hwpt;
    if (!h)
        return -EFAULT;
    struct area *a = area_find(h->ioas, iova);
    if (!a)
        return -EFAULT;
    if (!(a->prot & (write ? IOMMU_IOAS_MAP_WRITEABLE : IOMMU_IOAS_MAP_READABLE)))
        return -EPERM;
    uint64_t room = a->len - (iova - a->iova);
    *contig = room < len ? room : len;
    *uva_out = (void *)(uintptr_t)(a->pages->uva + a->off + (iova - a->iova));
    return 0;
}

void iommufd_mark_dirty(struct devfile *df, uint64_t iova, uint64_t len)
{
    struct hwpt *h = df->hwpt;
    if (!h || !h->dirty_on || !len)
        return;
    if (cfg.drop_dirty)         /* the negative control: the write leaves no dirty bit */
        cnt.dirty_dropped += (long)(((iova + len - 1) >> 12) - (iova >> 12) + 1);
    else
        dirty_mark_range(&h->dirty, iova, len);
}

/* ------------------------------------------------------------- listing */

size_t iommufd_emit_objects(struct ioctx *c, char *buf, size_t sz)
{
    size_t o = 0;
    for (uint32_t i = 1; i < MAX_OBJS; i++) {
        struct obj *x = c->objs[i];
        if (!x || o >= sz)
            continue;
        if (x->type == OBJ_IOAS) {
            struct ioas *s = (struct ioas *)x;
            int na = 0;
            for (struct area *a = s->areas; a; a = a->next)
                na++;
            o += (size_t)snprintf(buf + o, sz - o, "object iommufd=%p ioas id=%u areas=%d users=%d\n",
                                  (void *)c, i, na, x->users);
        } else if (x->type == OBJ_HWPT) {
            struct hwpt *h = (struct hwpt *)x;
            o += (size_t)snprintf(buf + o, sz - o,
                                  "object iommufd=%p hwpt id=%u ioas=%u auto=%d iommu=%d dirty=%d devices=%d\n",
                                  (void *)c, i, h->ioas->o.id, h->auto_domain, h->iommu,
                                  !!(h->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING), h->ndev);
        } else {
            struct idev *d = (struct idev *)x;
            o += (size_t)snprintf(buf + o, sz - o, "object iommufd=%p device id=%u dev=%s\n",
                                  (void *)c, i, d->df ? d->df->dev->bdf : "?");
        }
    }
    return o;
}
