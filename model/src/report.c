/* vfio-model: object listing and leak accounting for the report */
#include "internal.h"

#include <string.h>

extern struct ioctx *ictx_list[64];
size_t iommufd_emit_objects(struct ioctx *c, char *buf, size_t sz);

size_t emit_objects(char *buf, size_t sz)
{
    size_t o = 0;
    for (int i = 0; i < 64; i++)
        if (ictx_list[i] && o < sz)
            o += iommufd_emit_objects(ictx_list[i], buf + o, sz - o);
    for (int g = 0; g < ngroups && o < sz; g++) {
        struct group *gr = &groups[g];
        if (gr->file || gr->ctr)
            o += (size_t)snprintf(buf + o, sz - o,
                                  "object group=%d open=%d container=%p devfds=%d\n", gr->num,
                                  gr->file != NULL, (void *)gr->ctr, gr->ndevfds);
        if (gr->ctr && o < sz)
            o += (size_t)snprintf(buf + o, sz - o,
                                  "object container=%p type=%d groups=%d mappings=%d dirty=%d\n",
                                  (void *)gr->ctr, gr->ctr->iommu_type, gr->ctr->ngroups,
                                  gr->ctr->ndma, gr->ctr->dirty_on);
    }
    for (int d = 0; d < cfg.ndev && o < sz; d++) {
        struct mdev *m = &devs[d];
        if (m->owner || m->group_opens)
            o += (size_t)snprintf(buf + o, sz - o,
                                  "object device=%s vfio%d mode=%s irq_type=%d mig=%s session=%d\n",
                                  m->bdf, m->idx, m->owner && m->owner->cdev ? "cdev" : "group",
                                  m->irq_type, mig_state_name(m->mig_state), m->mig != NULL);
    }
    return o > sz ? sz : o;
}

static const struct { const char *n; long *v; } resid[] = {
    { "iommufd_ctx", &cnt.ictx }, { "ioas", &cnt.ioas }, { "hwpt", &cnt.hwpt },
    { "devices_bound", &cnt.bound }, { "devices_attached", &cnt.attached },
    { "devices_open_group", &cnt.dev_group_open }, { "ioas_mappings", &cnt.areas },
    { "pinned_pages", &cnt.pinned }, { "type1_pinned_pages", &cnt.t1_pinned },
    { "containers", &cnt.containers }, { "groups_open", &cnt.groups_open },
    { "groups_in_container", &cnt.groups_attached }, { "type1_mappings", &cnt.dmas },
    { "spapr_windows", &cnt.spapr_windows }, { "irq_eventfds", &cnt.irq_fds },
    { "mig_sessions", &cnt.mig_sessions }, { "dirty_bitmap_bytes", &cnt.dirty_bitmap_bytes },
};

long residual_objects(void)
{
    long n = 0;
    for (size_t i = 0; i < sizeof(resid) / sizeof(resid[0]); i++)
        n += *resid[i].v != 0;
    return n;
}

void fprint_residual(FILE *o)
{
    for (size_t i = 0; i < sizeof(resid) / sizeof(resid[0]); i++)
        if (*resid[i].v)
            fprintf(o, "leak %s=%ld\n", resid[i].n, *resid[i].v);
}
