/*
 * vfio-model: the model PCI device (edu-like, 1234:11e8) behind a vfio-pci
 * device fd, reachable through a group (legacy) or a cdev (iommufd).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define IDX_SHIFT 40
#define BAR0_SIZE (1ULL << 20)
#define BAR2_SIZE (64ULL << 10)  /* plain memory, mmap-able; a power of two >= the page size */
#define BAR2_ATTR 0x08          /* 32-bit memory BAR, prefetchable */
#define CFG_SIZE 256
#define MSI_CAP 0x40
#define DMA_START 0x40000
#define DMA_SIZE 4096
#define DMA_MASK ((1ULL << 28) - 1)
#define ST_COMPUTING 0x01
#define ST_IRQFACT 0x80
#define FACT_IRQ 0x1
#define DMA_IRQ 0x100

void group_devfd_closed(struct group *g);

static void w16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void w32(uint8_t *p, uint32_t v) { w16(p, (uint16_t)v); w16(p + 2, (uint16_t)(v >> 16)); }

static void edu_reset(struct mdev *m)
{
    m->addr4 = 0;
    m->fact = 0;
    m->status = 0;
    m->irq_status = 0;
    m->dma_src = m->dma_dst = m->dma_cnt = m->dma_cmd = 0;
    m->intx_pending = false;
}

void mdev_init(struct mdev *m)
{
    uint8_t *c = m->cfg;
    memset(c, 0, sizeof(m->cfg));
    w16(c + 0x00, 0x1234);
    w16(c + 0x02, 0x11e8);
    w16(c + 0x06, 0x0010);          /* capability list */
    c[0x08] = 0x10;                 /* revision */
    c[0x0a] = 0x00;                 /* subclass */
    c[0x0b] = 0xff;                 /* class: other */
    w32(c + 0x10, 0x00000000);      /* BAR0: 32-bit MMIO, not prefetchable */
    if (cfg.bar2)
        w32(c + 0x18, BAR2_ATTR);   /* BAR2: 32-bit memory, prefetchable */
    w16(c + 0x2c, 0x1af4);
    w16(c + 0x2e, 0x1100);
    c[0x34] = MSI_CAP;
    c[0x3d] = 1;                    /* INTA# */
    c[MSI_CAP] = 0x05;              /* MSI */
    c[MSI_CAP + 1] = 0;
    w16(c + MSI_CAP + 2, 0x0080);   /* 64-bit, 1 vector */
    m->bar2_fd = -1;
    m->irq_type = -1;
    m->mig_state = VFIO_DEVICE_STATE_RUNNING;
    m->mig = NULL;
    m->intx.fd = m->msi.fd = m->err.fd = m->req.fd = -1;
    edu_reset(m);
}

/* ------------------------------------------------------------ interrupts */

static void sig(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && sys_write(fd, &one, 8) == 8)
        cnt.irqs++;
}

static void vec_set(struct irqvec *v, int fd)
{
    if (v->fd >= 0) {
        sys_close(v->fd);
        cnt.irq_fds--;
        v->fd = -1;
    }
    if (fd >= 0) {
        /* hold our own reference, like eventfd_ctx_fdget() */
        v->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (v->fd >= 0)
            cnt.irq_fds++;
    }
}

static void irqs_disable(struct mdev *m)
{
    vec_set(&m->intx, -1);
    vec_set(&m->msi, -1);
    vec_set(&m->err, -1);
    vec_set(&m->req, -1);
    m->irq_type = -1;
    m->intx_masked = false;
    m->intx_pending = false;
}

static void intx_fire(struct mdev *m)
{
    if (m->irq_type != VFIO_PCI_INTX_IRQ_INDEX)
        return;
    if (m->intx_masked) {
        m->intx_pending = true;
        return;
    }
    m->intx_masked = true;          /* automasked */
    m->intx_pending = false;
    sig(m->intx.fd);
}

static void edu_raise(struct mdev *m, uint32_t v)
{
    m->irq_status |= v;
    if (m->irq_type == VFIO_PCI_MSI_IRQ_INDEX)
        sig(m->msi.fd);
    else
        intx_fire(m);
}

static void edu_lower(struct mdev *m, uint32_t v)
{
    m->irq_status &= ~v;
    if (!m->irq_status)
        m->intx_pending = false;
}

/* ------------------------------------------------------------------ DMA */

/* The devfile through which the device is in use decides translation. */
static struct container *group_container(struct mdev *m)
{
    if (!m->group_opens)
        return NULL;
    for (int i = 0; i < ngroups; i++)
        if (groups[i].num == m->group)
            return groups[i].ctr;
    return NULL;
}

static int translate(struct mdev *m, uint64_t iova, uint64_t len, bool write, void **uva,
                     uint64_t *contig)
{
    struct devfile *o = m->owner;
    if (o && o->cdev)
        return iommufd_translate(o, iova, len, write, uva, contig);
    struct container *c = group_container(m);
    if (!c)
        return -EFAULT;
    return type1_translate(c, iova, len, write, uva, contig);
}

static void mark_dirty(struct mdev *m, uint64_t iova, uint64_t len)
{
    struct devfile *o = m->owner;
    if (o && o->cdev) {
        iommufd_mark_dirty(o, iova, len);
        return;
    }
    struct container *c = group_container(m);
    if (!c || !c->dirty_on || !len)
        return;
    if (cfg.drop_dirty)         /* the negative control: the write leaves no dirty bit */
        cnt.dirty_dropped += (long)(((iova + len - 1) >> 12) - (iova >> 12) + 1);
    else
        dirty_mark_range(&c->dirty, iova, len);
}

/* Migration: the device neither runs nor changes in STOP, STOP_COPY,
 * RESUMING and ERROR (only RUNNING and PRE_COPY, and their P2P forms, run). */
bool mdev_stopped(const struct mdev *m)
{
    switch (m->mig_state) {
    case VFIO_DEVICE_STATE_RUNNING:
    case VFIO_DEVICE_STATE_RUNNING_P2P:
    case VFIO_DEVICE_STATE_PRE_COPY:
    case VFIO_DEVICE_STATE_PRE_COPY_P2P:
        return false;
    }
    return true;
}

/* RUNNING_P2P / PRE_COPY_P2P: no peer-to-peer DMA (to or from a BAR) */
bool mdev_p2p_quiesced(const struct mdev *m)
{
    return m->mig_state == VFIO_DEVICE_STATE_RUNNING_P2P ||
           m->mig_state == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

/* Device-initiated access to IOVA space: all or nothing. */
static int dma_rw(struct mdev *m, uint64_t iova, uint8_t *buf, uint64_t len, bool write)
{
    if (!(m->cfg[0x04] & 0x04))      /* bus master disabled */
        return -EPERM;
    uint64_t done = 0;
    bool p2p_off = mdev_p2p_quiesced(m);
    while (done < len) {
        void *uva;
        uint64_t n;
        int r = translate(m, iova + done, len - done, write, &uva, &n);
        if (r)
            return r;
        /* P2P quiesced: a transfer that reaches a BAR mmap is peer-to-peer */
        uint64_t pg = (uint64_t)(uintptr_t)uva & ~(PG - 1);
        if (p2p_off && bar_pages_in(pg, ((uint64_t)(uintptr_t)uva + n - pg + PG - 1) & ~(PG - 1)))
            return -EAGAIN;
        done += n;
    }
    for (done = 0; done < len;) {
        void *uva;
        uint64_t n;
        translate(m, iova + done, len - done, write, &uva, &n);
        if (write)
            memcpy(uva, buf + done, n);
        else
            memcpy(buf + done, uva, n);
        done += n;
    }
    if (write)
        mark_dirty(m, iova, len);
    return 0;
}

static bool edu_range_ok(uint64_t addr, uint64_t size)
{
    uint64_t end1 = addr + size, end2 = DMA_START + DMA_SIZE;
    return addr >= DMA_START && addr < end2 && end1 > addr && end1 >= DMA_START && end1 < end2;
}

static void edu_do_dma(struct mdev *m, uint64_t old_cmd)
{
    bool to_ram = (m->dma_cmd >> 1) & 1;
    int r;
    if (!to_ram) {
        if (!edu_range_ok(m->dma_dst, m->dma_cnt)) {
            r = -ERANGE;
        } else {
            r = dma_rw(m, m->dma_src & DMA_MASK, m->buf + (m->dma_dst - DMA_START), m->dma_cnt,
                       false);
        }
    } else {
        if (!edu_range_ok(m->dma_src, m->dma_cnt)) {
            r = -ERANGE;
        } else {
            r = dma_rw(m, m->dma_dst & DMA_MASK, m->buf + (m->dma_src - DMA_START), m->dma_cnt,
                       true);
        }
    }
    if (r == -EAGAIN) {
        /* peer-to-peer DMA in a P2P state: not executed, no trace left */
        cnt.dma_while_stopped++;
        m->dma_cmd = old_cmd;
        return;
    }
    if (r) {
        cnt.dma_faults++;
        if (cfg.trace)
            fprintf(stderr, "vfio-model: %s DMA fault %d (src 0x%llx dst 0x%llx cnt 0x%llx)\n",
                    m->bdf, r, (unsigned long long)m->dma_src, (unsigned long long)m->dma_dst,
                    (unsigned long long)m->dma_cnt);
    } else {
        cnt.dma_ops++;
        cnt.dma_bytes += (long)m->dma_cnt;
    }
    m->dma_cmd &= ~1ULL;
    if (m->dma_cmd & 4)
        edu_raise(m, DMA_IRQ);
}

static uint64_t edu_read(struct mdev *m, uint64_t a, unsigned sz)
{
    if ((a < 0x80 && sz != 4) || (a >= 0x80 && sz != 4 && sz != 8))
        return ~0ULL;
    switch (a) {
    case 0x00: return 0x010000edu;
    case 0x04: return m->addr4;
    case 0x08: return m->fact;
    case 0x20: return m->status;
    case 0x24: return m->irq_status;
    case 0x80: return m->dma_src;
    case 0x88: return m->dma_dst;
    case 0x90: return m->dma_cnt;
    case 0x98: return m->dma_cmd;
    }
    return ~0ULL;
}

static void edu_write(struct mdev *m, uint64_t a, uint64_t v, unsigned sz)
{
    if ((a < 0x80 && sz != 4) || (a >= 0x80 && sz != 4 && sz != 8))
        return;
    if (mdev_stopped(m)) {
        /* a stopped device ignores its registers: no DMA, no change */
        if (a == 0x98 && (v & 1))
            cnt.dma_while_stopped++;
        return;
    }
    bool running = m->dma_cmd & 1;
    switch (a) {
    case 0x04: m->addr4 = ~(uint32_t)v; break;
    case 0x08: {
        uint32_t n = (uint32_t)v, f = 1;
        for (uint32_t i = n; i > 0; i--)
            f *= i;
        m->fact = f;                 /* computed synchronously */
        m->status &= ~ST_COMPUTING;
        if (m->status & ST_IRQFACT)
            edu_raise(m, FACT_IRQ);
        break;
    }
    case 0x20:
        if (v & ST_IRQFACT)
            m->status |= ST_IRQFACT;
        else
            m->status &= ~ST_IRQFACT;
        break;
    case 0x60: edu_raise(m, (uint32_t)v); break;
    case 0x64: edu_lower(m, (uint32_t)v); break;
    case 0x80: if (!running) m->dma_src = v; break;
    case 0x88: if (!running) m->dma_dst = v; break;
    case 0x90: if (!running) m->dma_cnt = v; break;
    case 0x98:
        if (!(v & 1) || running)
            break;
        uint64_t old = m->dma_cmd;
        m->dma_cmd = v;
        edu_do_dma(m, old);          /* completes synchronously */
        break;
    }
}

/* -------------------------------------------------------- config space */

static uint8_t cfg_wmask(unsigned off)
{
    switch (off) {
    case 0x04: return 0x47;          /* IO, MEM, MASTER, PARITY, ... */
    case 0x05: return 0x05;          /* SERR, INTX_DISABLE */
    case 0x0c: case 0x0d: case 0x3c: return 0xff;
    case 0x10: return 0x00;          /* 1 MiB BAR: low 20 bits read-only */
    case 0x11: return 0x00;
    case 0x12: return 0xf0;
    case 0x13: return 0xff;
    case 0x1a: case 0x1b:            /* 64 KiB BAR2: low 16 bits read-only */
        return cfg.bar2 ? 0xff : 0x00;
    case MSI_CAP + 2: return 0x71;   /* enable, MME */
    case MSI_CAP + 4: return 0xfc;
    }
    if ((off >= MSI_CAP + 5 && off <= MSI_CAP + 0x0b) || off == MSI_CAP + 0x0c ||
        off == MSI_CAP + 0x0d)
        return 0xff;
    return 0;
}

/* --------------------------------------------------------- device files */

static void device_open_common(struct mdev *m)
{
    mig_reset(m);                    /* RUNNING, no data transfer session */
    edu_reset(m);
    m->cfg[0x04] = 0;
    m->cfg[0x05] = 0;
}

static void device_close_common(struct mdev *m)
{
    irqs_disable(m);
    device_open_common(m);
}

/* A function reset: VFIO_DEVICE_RESET, and each device of a hot reset */
static void device_reset(struct mdev *m)
{
    device_open_common(m);
    m->intx_masked = false;
    cnt.resets++;
}

int cdev_open(struct mfile *f, int idx)
{
    if (idx < 0 || idx >= cfg.ndev) {
        errno = ENOENT;
        return -1;
    }
    struct devfile *df = mz(sizeof(*df));
    if (!df) {
        errno = ENOMEM;
        return -1;
    }
    df->file = f;
    df->dev = &devs[idx];
    df->cdev = true;
    f->df = df;
    return 0;
}

struct devfile *devfile_new_group(struct group *g, struct mdev *m)
{
    struct devfile *df = mz(sizeof(*df));
    if (!df) {
        errno = ENOMEM;
        return NULL;
    }
    df->dev = m;
    df->grp = g;
    df->opened = true;
    g->ndevfds++;
    if (m->group_opens++ == 0) {
        m->owner = df;
        device_open_common(m);
    }
    cnt.dev_group_open++;
    return df;
}

void devfile_release(struct devfile *df)
{
    struct mdev *m = df->dev;
    if (df->cdev) {
        if (df->opened) {
            if (m->owner == df) {
                device_close_common(m);
                m->owner = NULL;
            }
            iommufd_unbind(df);
        }
    } else {
        cnt.dev_group_open--;
        if (--m->group_opens == 0) {
            device_close_common(m);
            m->owner = NULL;
        } else if (m->owner == df) {
            /* another group fd of the same device keeps it open */
            m->owner = NULL;
        }
        if (df->grp)
            group_devfd_closed(df->grp);
    }
    free(df);
}

static long do_bind(struct devfile *df, void *arg)
{
    struct vfio_device_bind_iommufd *u = arg;
    size_t minsz = offsetof(struct vfio_device_bind_iommufd, out_devid) + 4;
    if (u->argsz < minsz || u->flags)
        return -EINVAL;
    if (df->opened)
        return -EINVAL;
    struct mdev *m = df->dev;
    if (m->owner || m->group_opens)
        return -EBUSY;
    struct mfile *f;
    long r = model_fd_get(u->iommufd, FK_IOMMU, EBADFD, &f);
    if (r)
        return r;
    uint32_t devid;
    r = iommufd_bind(df, f->ictx, &devid);
    if (r)
        return r;
    df->opened = true;
    m->owner = df;
    device_open_common(m);
    u->out_devid = devid;
    return 0;
}

static long do_region_info(struct devfile *df, void *arg)
{
    struct vfio_region_info *u = arg;
    size_t minsz = offsetof(struct vfio_region_info, offset) + 8;
    (void)df;
    if (u->argsz < minsz)
        return -EINVAL;
    struct vfio_region_info i;
    memcpy(&i, u, minsz);
    i.cap_offset = 0;
    i.offset = (uint64_t)i.index << IDX_SHIFT;
    switch (i.index) {
    case VFIO_PCI_CONFIG_REGION_INDEX:
        i.size = CFG_SIZE;
        i.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        break;
    case VFIO_PCI_BAR0_REGION_INDEX:
        i.size = BAR0_SIZE;
        i.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        break;
    case VFIO_PCI_BAR2_REGION_INDEX:
        i.size = cfg.bar2 ? BAR2_SIZE : 0;
        i.flags = cfg.bar2 ? VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                                 VFIO_REGION_INFO_FLAG_MMAP : 0;
        break;
    case VFIO_PCI_BAR1_REGION_INDEX:
    case VFIO_PCI_BAR3_REGION_INDEX ... VFIO_PCI_ROM_REGION_INDEX:
        i.size = 0;
        i.flags = 0;
        break;
    default:                         /* VGA: not a VGA device; no device regions */
        return -EINVAL;
    }
    memcpy(u, &i, minsz);
    return 0;
}

static unsigned irq_count(unsigned idx)
{
    switch (idx) {
    case VFIO_PCI_INTX_IRQ_INDEX: return 1;
    case VFIO_PCI_MSI_IRQ_INDEX: return 1;
    case VFIO_PCI_MSIX_IRQ_INDEX: return 0;
    case VFIO_PCI_ERR_IRQ_INDEX: return 0;
    case VFIO_PCI_REQ_IRQ_INDEX: return 1;
    }
    return 0;
}

static long do_irq_info(void *arg)
{
    struct vfio_irq_info *u = arg;
    size_t minsz = offsetof(struct vfio_irq_info, count) + 4;
    if (u->argsz < minsz || u->index >= VFIO_PCI_NUM_IRQS)
        return -EINVAL;
    if (u->index == VFIO_PCI_ERR_IRQ_INDEX)     /* conventional PCI: no AER */
        return -EINVAL;
    u->flags = VFIO_IRQ_INFO_EVENTFD;
    if (u->index == VFIO_PCI_INTX_IRQ_INDEX)
        u->flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    else
        u->flags |= VFIO_IRQ_INFO_NORESIZE;
    u->count = irq_count(u->index);
    return 0;
}

static long do_set_irqs(struct mdev *m, void *arg)
{
    struct vfio_irq_set *u = arg;
    size_t minsz = offsetof(struct vfio_irq_set, count) + 4;
    if (u->argsz < minsz || u->index >= VFIO_PCI_NUM_IRQS || u->count >= UINT32_MAX - u->start ||
        (u->flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)))
        return -EINVAL;
    size_t esz;
    switch (u->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE: esz = 0; break;
    case VFIO_IRQ_SET_DATA_BOOL: esz = 1; break;
    case VFIO_IRQ_SET_DATA_EVENTFD: esz = 4; break;
    default: return -EINVAL;
    }
    unsigned max = irq_count(u->index);
    if ((!max && u->count) || (max && (u->start >= max || u->start + u->count > max)))
        return -EINVAL;
    if (u->argsz - minsz < u->count * esz)
        return -EINVAL;
    unsigned action = u->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    bool none = u->flags & VFIO_IRQ_SET_DATA_NONE;
    bool boolean = u->flags & VFIO_IRQ_SET_DATA_BOOL;
    bool efd = u->flags & VFIO_IRQ_SET_DATA_EVENTFD;
    const uint8_t *data = u->data;
    int32_t fd0 = -1;
    if (efd && u->count)
        memcpy(&fd0, data, 4);
    switch (u->index) {
    case VFIO_PCI_INTX_IRQ_INDEX:
        if (action == VFIO_IRQ_SET_ACTION_MASK || action == VFIO_IRQ_SET_ACTION_UNMASK) {
            if (m->irq_type != VFIO_PCI_INTX_IRQ_INDEX || u->start != 0 || u->count != 1)
                return -EINVAL;
            if (efd)
                return -ENOTTY;      /* resample eventfds are not modelled */
            if (boolean && !data[0])
                return 0;
            if (action == VFIO_IRQ_SET_ACTION_MASK) {
                m->intx_masked = true;
            } else {
                m->intx_masked = false;
                if (m->irq_status || m->intx_pending) {
                    m->intx_pending = true;
                    intx_fire(m);
                }
            }
            return 0;
        }
        if (action != VFIO_IRQ_SET_ACTION_TRIGGER)
            return -ENOTTY;
        if (m->irq_type == VFIO_PCI_INTX_IRQ_INDEX && !u->count && none) {
            vec_set(&m->intx, -1);
            m->irq_type = -1;
            return 0;
        }
        if (!(m->irq_type == VFIO_PCI_INTX_IRQ_INDEX || m->irq_type == -1))
            return -EINVAL;
        if (efd) {
            if (fd0 >= 0) {
                if (fcntl(fd0, F_GETFD) < 0)
                    return -EBADF;
                vec_set(&m->intx, fd0);
                m->irq_type = VFIO_PCI_INTX_IRQ_INDEX;
                m->intx_masked = false;
            } else if (m->irq_type == VFIO_PCI_INTX_IRQ_INDEX) {
                vec_set(&m->intx, -1);
                m->irq_type = -1;
            }
            return 0;
        }
        if (m->irq_type != VFIO_PCI_INTX_IRQ_INDEX)
            return -EINVAL;
        if (u->count && (none || data[0]))
            sig(m->intx.fd);
        return 0;
    case VFIO_PCI_MSI_IRQ_INDEX:
    case VFIO_PCI_MSIX_IRQ_INDEX:
        if (action != VFIO_IRQ_SET_ACTION_TRIGGER)
            return -ENOTTY;
        if (m->irq_type == (int)u->index && !u->count && none) {
            vec_set(&m->msi, -1);
            m->irq_type = -1;
            return 0;
        }
        if (!(m->irq_type == (int)u->index || m->irq_type == -1))
            return -EINVAL;
        if (efd) {
            if (fd0 >= 0 && fcntl(fd0, F_GETFD) < 0)
                return -EBADF;
            vec_set(&m->msi, fd0);
            m->irq_type = (int)u->index;
            return 0;
        }
        if (m->irq_type != (int)u->index)
            return -EINVAL;
        if (u->count && (none || data[0]))
            sig(m->msi.fd);
        return 0;
    case VFIO_PCI_REQ_IRQ_INDEX:
        if (action != VFIO_IRQ_SET_ACTION_TRIGGER || u->start != 0 || u->count > 1)
            return -EINVAL;
        if (efd) {
            if (fd0 >= 0 && fcntl(fd0, F_GETFD) < 0)
                return -EBADF;
            vec_set(&m->req, fd0);
            return 0;
        }
        if (!u->count) {
            if (none)
                vec_set(&m->req, -1);
            return 0;
        }
        if (none || data[0])
            sig(m->req.fd);
        return 0;
    default:
        return -EINVAL;
    }
}

static long do_feature(struct mdev *m, void *arg)
{
    struct vfio_device_feature *u = arg;
    size_t minsz = offsetof(struct vfio_device_feature, flags) + 4;
    uint32_t fl = u->flags;
    /* injected failures of one feature (VFIO_DEVICE_FEATURE_MIGRATION, ...) */
    static const int named[] = { [VFIO_DEVICE_FEATURE_MIGRATION] = INJ_FEAT_MIGRATION,
                                 [VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE] = INJ_FEAT_MIG_STATE,
                                 [VFIO_DEVICE_FEATURE_MIG_DATA_SIZE] = INJ_FEAT_MIG_DATA_SIZE };
    uint32_t feat = fl & VFIO_DEVICE_FEATURE_MASK;
    if (feat < sizeof(named) / sizeof(named[0]) && named[feat]) {
        int e = inject_check_named(named[feat]);
        if (e)
            return -e;
    }
    if (u->argsz < minsz)
        return -EINVAL;
    if (fl & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET |
               VFIO_DEVICE_FEATURE_PROBE))
        return -EINVAL;
    if (!(fl & VFIO_DEVICE_FEATURE_PROBE) && (fl & VFIO_DEVICE_FEATURE_GET) &&
        (fl & VFIO_DEVICE_FEATURE_SET))
        return -EINVAL;
    switch (feat) {
    case VFIO_DEVICE_FEATURE_BUS_MASTER: {
        if (fl & VFIO_DEVICE_FEATURE_GET)
            return -EINVAL;
        if (fl & VFIO_DEVICE_FEATURE_PROBE)
            return 0;
        if (!(fl & VFIO_DEVICE_FEATURE_SET))
            return -EINVAL;
        if (u->argsz < minsz + sizeof(struct vfio_device_feature_bus_master))
            return -EINVAL;
        struct vfio_device_feature_bus_master *bm = (void *)u->data;
        if (bm->op == VFIO_DEVICE_FEATURE_SET_MASTER)
            m->cfg[0x04] |= 0x04;
        else if (bm->op == VFIO_DEVICE_FEATURE_CLEAR_MASTER)
            m->cfg[0x04] &= (uint8_t)~0x04;
        else
            return -EINVAL;
        return 0;
    }
    case VFIO_DEVICE_FEATURE_MIGRATION:
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        /* ENOTTY without VFIO_MODEL_MIGRATION (no mig_ops) */
        return mig_feature(m, fl, u->data, u->argsz - (uint32_t)minsz);
    default:
        /* no DMA logging or low-power support */
        return -ENOTTY;
    }
}

/* ------------------------------------------------------------ hot reset */

static bool flr_works(const struct mdev *m) { return !cfg_bit(cfg.no_flr, m->idx); }

/* The dev_set: the devices of the one resettable bus (VFIO_MODEL_RESET_BUS).
 * Fills @set (MAX_DEVS entries), returns their number; 0 when @m is not on
 * it (a device on the root bus: neither slot nor bus reset). */
static uint32_t dev_set_of(const struct mdev *m, struct mdev **set)
{
    uint32_t n = 0;
    if (!cfg_bit(cfg.reset_bus, m->idx))
        return 0;
    for (int i = 0; i < cfg.ndev; i++)
        if (cfg_bit(cfg.reset_bus, i))
            set[n++] = &devs[i];
    return n;
}

static struct ioctx *cdev_ctx(const struct mdev *m)
{
    return m->owner && m->owner->cdev ? m->owner->ictx : NULL;
}

/* Ownership of @m by the iommufd context @c, as the devid of a
 * vfio_pci_dependent_device: its device id when bound in @c; OWNED when
 * not bound but its IOMMU group has a device bound in @c (the group's DMA
 * is @c's); NOT_OWNED otherwise (also when bound in another context). */
static uint32_t hot_reset_devid(const struct mdev *m, struct ioctx *c)
{
    struct ioctx *mc = cdev_ctx(m);
    if (mc)
        return mc == c ? m->owner->idev->o.id : (uint32_t)VFIO_PCI_DEVID_NOT_OWNED;
    for (int i = 0; i < cfg.ndev; i++)
        if (devs[i].group == m->group && cdev_ctx(&devs[i]) == c)
            return VFIO_PCI_DEVID_OWNED;
    return (uint32_t)VFIO_PCI_DEVID_NOT_OWNED;
}

static long do_hot_reset_info(struct devfile *df, void *arg)
{
    struct vfio_pci_hot_reset_info *u = arg;
    size_t minsz = offsetof(struct vfio_pci_hot_reset_info, count) + 4;
    if (u->argsz < minsz)
        return -EINVAL;
    struct mdev *set[MAX_DEVS];
    uint32_t n = dev_set_of(df->dev, set);
    if (!n)
        return -ENODEV;
    if (u->argsz < sizeof(*u) + n * sizeof(u->devices[0])) {
        u->flags = 0;
        u->count = n;
        return -ENOSPC;
    }
    /* a cdev caller learns device ids, a group caller group numbers */
    uint32_t flags = df->cdev ? VFIO_PCI_HOT_RESET_FLAG_DEV_ID |
                                VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED : 0;
    for (uint32_t i = 0; i < n; i++) {
        struct vfio_pci_dependent_device *d = &u->devices[i];
        unsigned seg = 0, bus = 0, slot = 0, fn = 0;
        sscanf(set[i]->bdf, "%x:%x:%x.%x", &seg, &bus, &slot, &fn);
        d->segment = (uint16_t)seg;
        d->bus = (uint8_t)bus;
        d->devfn = (uint8_t)(slot << 3 | (fn & 7));
        if (!df->cdev) {
            d->group_id = (uint32_t)set[i]->group;
            continue;
        }
        d->devid = hot_reset_devid(set[i], df->ictx);
        if (d->devid == (uint32_t)VFIO_PCI_DEVID_NOT_OWNED)
            flags &= ~(uint32_t)VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
    }
    u->flags = flags;
    u->count = n;
    return 0;
}

/* Group form (device opened through its group): group fds prove the
 * ownership of every device of the dev_set. cdev form: an empty array, the
 * caller's iommufd context must own every device. */
static long do_hot_reset(struct devfile *df, void *arg)
{
    struct vfio_pci_hot_reset *u = arg;
    size_t minsz = offsetof(struct vfio_pci_hot_reset, count) + 4;
    if (u->argsz < minsz || u->flags)
        return -EINVAL;
    if (!!u->count == df->cdev)     /* an empty array is the cdev form only */
        return -EINVAL;
    struct mdev *set[MAX_DEVS];
    uint32_t n = dev_set_of(df->dev, set);
    if (!n)
        return -ENODEV;
    if (u->count > n)               /* at most one group per device */
        return -EINVAL;
    int grp[MAX_DEVS];
    for (uint32_t i = 0; i < u->count; i++) {
        struct mfile *f;
        long r = model_fd_get(u->group_fds[i], FK_GROUP, EINVAL, &f);
        if (r)
            return r;
        grp[i] = f->grp->num;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (df->cdev) {
            if (hot_reset_devid(set[i], df->ictx) == (uint32_t)VFIO_PCI_DEVID_NOT_OWNED)
                return -EPERM;
            continue;
        }
        uint32_t j = 0;
        while (j < u->count && grp[j] != set[i]->group)
            j++;
        if (j == u->count)
            return -EINVAL;
    }
    for (uint32_t i = 0; i < n; i++)
        device_reset(set[i]);
    cnt.bus_resets++;
    return 0;
}

long device_ioctl(struct devfile *df, unsigned long cmd, void *arg)
{
    struct mdev *m = df->dev;
    int i;
    for (i = 0; ionames[i].name; i++)
        if (ionames[i].cmd == cmd)
            break;
    bool known = cmd == VFIO_DEVICE_GET_INFO || cmd == VFIO_DEVICE_GET_REGION_INFO ||
                 cmd == VFIO_DEVICE_GET_IRQ_INFO || cmd == VFIO_DEVICE_SET_IRQS ||
                 cmd == VFIO_DEVICE_RESET || cmd == VFIO_DEVICE_FEATURE ||
                 cmd == VFIO_DEVICE_BIND_IOMMUFD || cmd == VFIO_DEVICE_ATTACH_IOMMUFD_PT ||
                 cmd == VFIO_DEVICE_DETACH_IOMMUFD_PT ||
                 cmd == VFIO_DEVICE_GET_PCI_HOT_RESET_INFO || cmd == VFIO_DEVICE_PCI_HOT_RESET;
    count_ioctl(cmd, known);
    if (!known)
        return -ENOTTY;
    if (!arg && cmd != VFIO_DEVICE_RESET)
        return -EFAULT;
    if (cmd == VFIO_DEVICE_BIND_IOMMUFD) {
        if (!df->cdev)
            return -ENOTTY;
        return do_bind(df, arg);
    }
    if (df->cdev && !df->opened)     /* no access before BIND_IOMMUFD */
        return -EINVAL;
    switch (cmd) {
    case VFIO_DEVICE_ATTACH_IOMMUFD_PT: {
        if (!df->cdev)
            return -ENOTTY;
        struct vfio_device_attach_iommufd_pt *u = arg;
        if (u->argsz < offsetof(struct vfio_device_attach_iommufd_pt, pt_id) + 4 || u->flags)
            return -EINVAL;
        uint32_t pt = u->pt_id;
        long r = iommufd_attach(df, &pt);
        if (r)
            return r;
        u->pt_id = pt;
        return 0;
    }
    case VFIO_DEVICE_DETACH_IOMMUFD_PT: {
        if (!df->cdev)
            return -ENOTTY;
        struct vfio_device_detach_iommufd_pt *u = arg;
        if (u->argsz < offsetof(struct vfio_device_detach_iommufd_pt, flags) + 4 || u->flags)
            return -EINVAL;
        iommufd_detach(df);
        return 0;
    }
    case VFIO_DEVICE_GET_INFO: {
        struct vfio_device_info *u = arg;
        size_t minsz = offsetof(struct vfio_device_info, num_irqs) + 4;
        if (u->argsz < minsz)
            return -EINVAL;
        u->flags = VFIO_DEVICE_FLAGS_PCI | (flr_works(m) ? VFIO_DEVICE_FLAGS_RESET : 0);
        u->num_regions = VFIO_PCI_NUM_REGIONS;
        u->num_irqs = VFIO_PCI_NUM_IRQS;
        if (u->argsz >= offsetof(struct vfio_device_info, cap_offset) + 4)
            u->cap_offset = 0;
        return 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO:
        return do_region_info(df, arg);
    case VFIO_DEVICE_GET_IRQ_INFO:
        return do_irq_info(arg);
    case VFIO_DEVICE_SET_IRQS:
        return do_set_irqs(m, arg);
    case VFIO_DEVICE_RESET:
        if (!flr_works(m))          /* vfio-pci: !reset_works */
            return -EINVAL;
        device_reset(m);
        return 0;
    case VFIO_DEVICE_FEATURE:
        return do_feature(m, arg);
    case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
        return do_hot_reset_info(df, arg);
    case VFIO_DEVICE_PCI_HOT_RESET:
        return do_hot_reset(df, arg);
    }
    return -ENOTTY;
}

/* ----------------------------------------------------------------- BAR2 */

static bool bar_memfds;         /* a BAR memfd exists in this process */

/* The memfd behind BAR2 of @m: created at first use, owned by the device
 * for the life of the process, so every mmap of the region (through any
 * device fd) shares the same memory, as a real BAR does. -errno on
 * failure. */
static int bar2_fd(struct mdev *m)
{
    if (m->bar2_fd >= 0)
        return m->bar2_fd;
    char name[48];
    /* not "vfio-model:...": never taken for a model fd to adopt */
    snprintf(name, sizeof(name), "vfio-model-bar2:vfio%d", m->idx);
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (ftruncate(fd, (off_t)BAR2_SIZE) < 0 || syscall(SYS_fstat, fd, &st) < 0) {
        int e = errno;
        sys_close(fd);
        return -e;
    }
    m->bar2_fd = fd;
    m->bar2_dev = st.st_dev;
    m->bar2_ino = st.st_ino;
    bar_memfds = true;
    return fd;
}

/* vfio_pci_core_mmap: only an mmap-able BAR (BAR2), with a shared mapping
 * of whole pages inside the region; anything else EINVAL. On success the
 * caller maps @fd at @pos. */
long device_mmap(struct devfile *df, uint64_t off, size_t len, int flags, int *fd, uint64_t *pos)
{
    if (df->cdev && !df->opened)     /* no access before BIND_IOMMUFD */
        return -EINVAL;
    unsigned idx = (unsigned)(off >> IDX_SHIFT);
    uint64_t p = off & ((1ULL << IDX_SHIFT) - 1);
    uint64_t pgsz = (uint64_t)sysconf(_SC_PAGESIZE);
    if (idx != VFIO_PCI_BAR2_REGION_INDEX || !cfg.bar2)
        return -EINVAL;
    int type = flags & MAP_TYPE;
    if (type != MAP_SHARED && type != MAP_SHARED_VALIDATE)
        return -EINVAL;
    uint64_t req = ((uint64_t)len + pgsz - 1) & ~(pgsz - 1);
    if (!len || (p & (pgsz - 1)) || p >= BAR2_SIZE || req > BAR2_SIZE - p)
        return -EINVAL;
    int r = bar2_fd(df->dev);
    if (r < 0)
        return r;
    *fd = r;
    *pos = p;
    return 0;
}

/* Access BAR2's memory directly (the device's own view, also for the
 * migration stream): bytes done or -errno. */
long mdev_bar2_rw(struct mdev *m, void *buf, size_t n, uint64_t pos, bool write)
{
    int fd = bar2_fd(m);
    if (fd < 0)
        return fd;
    long r = syscall(write ? SYS_pwrite64 : SYS_pread64, fd, buf, n, (off_t)pos);
    return r < 0 ? -errno : r;
}

static bool is_bar_mapping(dev_t dev, ino_t ino)
{
    for (int i = 0; i < cfg.ndev; i++)
        if (devs[i].bar2_fd >= 0 && devs[i].bar2_dev == dev && devs[i].bar2_ino == ino)
            return true;
    return false;
}

/* How many 4 KiB pages of [uva, uva + len) lie in an mmap of a device BAR
 * (VM_IO | VM_PFNMAP in the kernel: no struct page, nothing to pin).
 * Found by the BAR memfds' inodes in /proc/self/maps, so munmap, mremap
 * and MAP_FIXED over a BAR need no tracking. */
uint64_t bar_pages_in(uint64_t uva, uint64_t len)
{
    if (!bar_memfds || !len)
        return 0;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    uint64_t end = uva + len, bytes = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        unsigned long s, e, ino;
        unsigned maj, min;
        if (sscanf(line, "%lx-%lx %*s %*x %x:%x %lu", &s, &e, &maj, &min, &ino) != 5)
            continue;
        if (e <= uva || s >= end || !is_bar_mapping(makedev(maj, min), (ino_t)ino))
            continue;
        bytes += (e < end ? e : end) - (s > uva ? s : uva);
    }
    free(line);
    fclose(f);
    return bytes / PG;
}

long device_rw(struct devfile *df, void *buf, size_t n, uint64_t off, bool write)
{
    if (df->cdev && !df->opened)
        return -EINVAL;
    struct mdev *m = df->dev;
    unsigned idx = (unsigned)(off >> IDX_SHIFT);
    uint64_t pos = off & ((1ULL << IDX_SHIFT) - 1);
    if (idx == VFIO_PCI_CONFIG_REGION_INDEX) {
        if (pos >= CFG_SIZE || n > CFG_SIZE - pos)
            return -EINVAL;
        uint8_t *b = buf;
        for (size_t i = 0; i < n; i++) {
            unsigned o = (unsigned)(pos + i);
            if (write) {
                uint8_t wm = cfg_wmask(o);
                m->cfg[o] = (uint8_t)((m->cfg[o] & ~wm) | (b[i] & wm));
            } else {
                b[i] = m->cfg[o];
            }
        }
        if (write)
            cnt.region_writes++;
        else
            cnt.region_reads++;
        return (long)n;
    }
    if (idx == VFIO_PCI_BAR2_REGION_INDEX && cfg.bar2) {
        /* vfio_pci_bar_rw: EINVAL at or past the end, short at the end */
        if (pos >= BAR2_SIZE)
            return -EINVAL;
        if (n > BAR2_SIZE - pos)
            n = BAR2_SIZE - pos;
        long r;
        if (write && mdev_stopped(m)) {
            r = (long)n;            /* a stopped device's memory does not change */
        } else {
            r = mdev_bar2_rw(m, buf, n, pos, write);
            if (r < 0)
                return r;
        }
        if (write)
            cnt.region_writes++;
        else
            cnt.region_reads++;
        return r;
    }
    if (idx == VFIO_PCI_BAR0_REGION_INDEX) {
        if (pos >= BAR0_SIZE || n > BAR0_SIZE - pos)
            return -EINVAL;
        if (n != 1 && n != 2 && n != 4 && n != 8)
            return -EINVAL;
        if (write) {
            uint64_t v = 0;
            memcpy(&v, buf, n);
            edu_write(m, pos, v, (unsigned)n);
            cnt.region_writes++;
        } else {
            uint64_t v = edu_read(m, pos, (unsigned)n);
            memcpy(buf, &v, n);
            cnt.region_reads++;
        }
        return (long)n;
    }
    return -EINVAL;
}
/*
 * Every @stride-th page from @pg0 on, within [@pg0, @pgend) and the mapping
 * at @iova of @len bytes: marked in @d (counted only when @d is NULL, i.e.
 * the bits are dropped).  Returns how many.
 */
static uint64_t mark_mapping(struct dirtyset *d, uint64_t pg0, uint64_t pgend,
                             uint64_t stride, uint64_t iova, uint64_t len)
{
    uint64_t a0 = iova >> 12, a1 = (iova + len) >> 12;
    if (!a1)
        a1 = 1ULL << 52;
    uint64_t s0 = a0 > pg0 ? a0 : pg0, e0 = a1 < pgend ? a1 : pgend;
    if (s0 >= e0)
        return 0;
    if (d)
        return dirty_mark_stride(d, pg0, s0, e0, stride);
    uint64_t k0 = (s0 - pg0 + stride - 1) / stride;
    uint64_t k1 = (e0 - pg0 + stride - 1) / stride;
    return k1 > k0 ? k1 - k0 : 0;
}



/* ------------------------------------------------- control: mark-dirty */

/* Mark dirty, as if vfio<idx> had written them, the pages pg0 + k * stride
 * of [iova, iova + len) that are mapped writeable in what the device is
 * attached to (its HWPT with dirty tracking on, or its group's container
 * with dirty logging started). Returns the number of such pages, or -1
 * with *err set. */
long device_mark_dirty(int idx, uint64_t iova, uint64_t len, uint64_t stride, const char **err)
{
    uint64_t end;
    if (idx < 0 || idx >= cfg.ndev) {
        *err = "no such device";
        return -1;
    }
    if (!len || !stride || __builtin_add_overflow(iova, len, &end)) {
        *err = "bad range or stride";
        return -1;
    }
    struct mdev *m = &devs[idx];
    uint64_t pg0 = iova >> 12, pgend = (end >> 12) + ((end & (PG - 1)) != 0);
    struct dirtyset *d = NULL;
    uint64_t n = 0;
    struct devfile *o = m->owner;
    struct hwpt *h = o && o->cdev ? o->hwpt : NULL;
    struct container *c = o && o->cdev ? NULL : group_container(m);
    if (!h && !c) {
        *err = "device not attached";
        return -1;
    }
    if (h ? !h->dirty_on : !c->dirty_on) {
        *err = "dirty tracking not enabled";
        return -1;
    }
    if (!cfg.drop_dirty)
        d = h ? &h->dirty : &c->dirty;
    /* count, and mark unless dropping, mapping by mapping */
    if (h) {
        for (struct area *a = h->ioas->areas; a; a = a->next) {
            if (a->prot & IOMMU_IOAS_MAP_WRITEABLE)
                n += mark_mapping(d, pg0, pgend, stride, a->iova, a->len);
        }
    } else {
        for (struct dma *dm = c->dmas; dm; dm = dm->next) {
            if (dm->prot & VFIO_DMA_MAP_FLAG_WRITE)
                n += mark_mapping(d, pg0, pgend, stride, dm->iova, dm->size);
        }
    }
    if (!d) {
        cnt.dirty_dropped += (long)n;
        return 0;
    }
    return (long)n;
}
