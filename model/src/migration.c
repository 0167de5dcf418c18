/*
 * vfio-model: VFIO device migration, protocol v2 (VFIO_DEVICE_FEATURE_MIGRATION,
 * VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
 * the data transfer fd and VFIO_MIG_GET_PRECOPY_INFO), as described in
 * include/uapi/linux/vfio.h of Linux 6.12. Enabled by VFIO_MODEL_MIGRATION.
 *
 * The device's state is its BAR0 registers, its 4 KiB DMA buffer and its
 * 64 KiB BAR2. The stream is a sequence of records, each with a header
 * (magic, version, type, lengths, sequence number, FNV-1a checksum):
 *
 *   FULL     (STOP_COPY)  the registers and every page: enough to restore
 *   PRECOPY  (PRE_COPY)   some pages (buffer = page 0, BAR2 = pages 1..16):
 *                         the initial snapshot, then the pages changed since
 *
 * A destination checks every record and loads the last FULL one.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ST(x) VFIO_DEVICE_STATE_##x
#define NSTATES VFIO_DEVICE_STATE_NR

#define MIG_MAGIC 0x47494d56u       /* "VMIG" */
#define MIG_VERSION 1
#define REC_FULL 1
#define REC_PRECOPY 2
#define HDR_LEN 40
#define REGS_LEN 64
#define PAGE_LEN 4096
#define ENT_LEN (8 + PAGE_LEN)
#define EDU_IDENT 0x010000edu
#define MAX_PAGES 17
#define RESUME_MAX (64u << 20)       /* bytes a RESUMING session accepts */

struct migsess {
    struct mdev *dev;       /* NULL once the session has ended */
    struct mfile *file;     /* NULL once the user closed its last fd */
    bool resuming;
    bool final;             /* the FULL record is queued: EOF after it */
    uint8_t *data;          /* saving: the queued stream; resuming: what was written */
    size_t len, cap, pos;   /* pos: bytes already read (saving) */
    size_t init_end;        /* PRE_COPY: end of the initial snapshot in data */
    uint8_t *shadow;        /* PRE_COPY: the pages as last put into the stream */
    uint64_t seq;
};

static const char *const names[NSTATES] = {
    [ST(ERROR)] = "ERROR", [ST(STOP)] = "STOP", [ST(RUNNING)] = "RUNNING",
    [ST(STOP_COPY)] = "STOP_COPY", [ST(RESUMING)] = "RESUMING",
    [ST(RUNNING_P2P)] = "RUNNING_P2P", [ST(PRE_COPY)] = "PRE_COPY",
    [ST(PRE_COPY_P2P)] = "PRE_COPY_P2P",
};

const char *mig_state_name(uint32_t s)
{
    return s < NSTATES ? names[s] : "?";
}

/* ---------------------------------------------------------------- FSM */

static bool has(uint64_t f) { return (cfg.mig_flags & f) == f; }

/* States SET may ask for (ERROR never can) */
static bool supported(uint32_t s)
{
    switch (s) {
    case ST(RUNNING): return true;
    case ST(STOP): case ST(STOP_COPY): case ST(RESUMING): return has(VFIO_MIGRATION_STOP_COPY);
    case ST(RUNNING_P2P): return has(VFIO_MIGRATION_P2P);
    case ST(PRE_COPY): return has(VFIO_MIGRATION_PRE_COPY);
    case ST(PRE_COPY_P2P): return has(VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY);
    }
    return false;
}

/* the "saving group": states sharing one data transfer session */
static bool saving(uint32_t s)
{
    return s == ST(PRE_COPY) || s == ST(PRE_COPY_P2P) || s == ST(STOP_COPY);
}

/* The arcs the header defines. A state without support still routes a
 * path (it is stepped over, behaving as the state it degrades to), except
 * that without PRE_COPY the arcs touching the PRE_COPY states are gone. */
static const uint8_t arcs[][2] = {
    { ST(RUNNING_P2P), ST(STOP) },        { ST(STOP_COPY), ST(STOP) },
    { ST(RESUMING), ST(STOP) },           { ST(PRE_COPY), ST(RUNNING) },
    { ST(RUNNING_P2P), ST(RUNNING) },     { ST(PRE_COPY_P2P), ST(RUNNING_P2P) },
    { ST(RUNNING), ST(RUNNING_P2P) },     { ST(STOP), ST(RUNNING_P2P) },
    { ST(RUNNING), ST(PRE_COPY) },        { ST(RUNNING_P2P), ST(PRE_COPY_P2P) },
    { ST(STOP), ST(STOP_COPY) },          { ST(PRE_COPY), ST(PRE_COPY_P2P) },
    { ST(PRE_COPY_P2P), ST(PRE_COPY) },   { ST(PRE_COPY_P2P), ST(STOP_COPY) },
    { ST(STOP), ST(RESUMING) },
};

static bool in_graph(uint32_t s)
{
    if (s == ST(ERROR) || s >= NSTATES)
        return false;
    return has(VFIO_MIGRATION_PRE_COPY) || (s != ST(PRE_COPY) && s != ST(PRE_COPY_P2P));
}

/* The combination transition cur -> tgt: the shortest path whose interior
 * states are outside the saving group (inside it when both ends are in it:
 * a move within one session), never through RESUMING. Fills out[] with
 * the states after cur; returns their number, -1 if tgt cannot be reached
 * (e.g. STOP_COPY -> PRE_COPY). */
static int mig_path(uint32_t cur, uint32_t tgt, uint32_t *out)
{
    if (cur == tgt)
        return 0;
    bool within = saving(cur) && saving(tgt);
    int prev[NSTATES];
    uint32_t q[NSTATES];
    int qh = 0, qt = 0;
    for (int i = 0; i < NSTATES; i++)
        prev[i] = -1;
    prev[cur] = (int)cur;
    q[qt++] = cur;
    while (qh < qt) {
        uint32_t u = q[qh++];
        if (u == tgt)
            break;
        if (u != cur && (within ? !saving(u) : (saving(u) || u == ST(RESUMING))))
            continue;       /* may not be crossed */
        for (size_t i = 0; i < sizeof(arcs) / sizeof(arcs[0]); i++)
            if (arcs[i][0] == u && in_graph(arcs[i][1]) && prev[arcs[i][1]] < 0) {
                prev[arcs[i][1]] = (int)u;
                q[qt++] = arcs[i][1];
            }
    }
    if (prev[tgt] < 0)
        return -1;
    int n = 0;
    for (uint32_t s = tgt; s != cur; s = (uint32_t)prev[s])
        n++;
    int k = n;
    for (uint32_t s = tgt; s != cur; s = (uint32_t)prev[s])
        out[--k] = s;
    return n;
}

/* -------------------------------------------------------- serialisation */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

#define FNV_INIT 0xcbf29ce484222325ULL
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int npages(void) { return 1 + (cfg.bar2 ? 16 : 0); }

/* the device's pages, read for a record or a comparison (model lock held;
 * not on the stack: QEMU loads from a coroutine with a small one) */
static uint8_t scratch[MAX_PAGES * PAGE_LEN];

static size_t full_len(void) { return HDR_LEN + REGS_LEN + (size_t)npages() * ENT_LEN; }

/* The device's pages: 0 the DMA buffer, 1..16 BAR2 */
static long read_pages(struct mdev *m, uint8_t *out)
{
    memcpy(out, m->buf, PAGE_LEN);
    if (!cfg.bar2)
        return 0;
    long r = mdev_bar2_rw(m, out + PAGE_LEN, 16 * PAGE_LEN, 0, false);
    return r == 16 * PAGE_LEN ? 0 : r < 0 ? r : -EIO;
}

static void regs_put(const struct mdev *m, uint8_t *p)
{
    memset(p, 0, REGS_LEN);
    put32(p, EDU_IDENT);
    put32(p + 4, m->addr4);
    put32(p + 8, m->fact);
    put32(p + 12, m->status);
    put32(p + 16, m->irq_status);
    put64(p + 24, m->dma_src);
    put64(p + 32, m->dma_dst);
    put64(p + 40, m->dma_cnt);
    put64(p + 48, m->dma_cmd);
}

static long sess_reserve(struct migsess *s, size_t more)
{
    if (s->len + more <= s->cap)
        return 0;
    size_t nc = s->cap ? s->cap : 65536;
    while (nc < s->len + more)
        nc *= 2;
    uint8_t *p = realloc(s->data, nc);
    if (!p)
        return -ENOMEM;
    s->data = p;
    s->cap = nc;
    return 0;
}

/* Queue a record: FULL (registers + all pages) or PRECOPY (the pages in
 * idx[0..n)); @pages holds all the device's pages. */
static long rec_queue(struct migsess *s, struct mdev *m, int type, const uint8_t *pages,
                      const int *idx, int n)
{
    size_t regs = type == REC_FULL ? REGS_LEN : 0;
    size_t len = HDR_LEN + regs + (size_t)n * ENT_LEN;
    long r = sess_reserve(s, len);
    if (r)
        return r;
    uint8_t *h = s->data + s->len;
    memset(h, 0, HDR_LEN);
    put32(h, MIG_MAGIC);
    put16(h + 4, MIG_VERSION);
    put16(h + 6, (uint16_t)type);
    put32(h + 8, HDR_LEN);
    put32(h + 12, (uint32_t)regs);
    put32(h + 16, (uint32_t)n);
    put32(h + 20, PAGE_LEN);
    put64(h + 24, s->seq++);
    uint8_t *b = h + HDR_LEN;
    if (regs)
        regs_put(m, b);
    for (int i = 0; i < n; i++) {
        uint8_t *e = b + regs + (size_t)i * ENT_LEN;
        put32(e, (uint32_t)idx[i]);
        put32(e + 4, 0);
        memcpy(e + 8, pages + (size_t)idx[i] * PAGE_LEN, PAGE_LEN);
    }
    put64(h + 32, fnv(fnv(FNV_INIT, h, 32), b, len - HDR_LEN));
    s->len += len;
    return 0;
}

static long queue_full(struct migsess *s, struct mdev *m)
{
    uint8_t *pages = scratch;
    int idx[MAX_PAGES];
    long r = read_pages(m, pages);
    if (r)
        return r;
    for (int i = 0; i < npages(); i++)
        idx[i] = i;
    r = rec_queue(s, m, REC_FULL, pages, idx, npages());
    if (!r)
        s->final = true;
    return r;
}

/* PRE_COPY: the pages that differ from what the stream already carries */
static long dirty_pages(struct migsess *s, struct mdev *m, uint8_t *pages, int *idx)
{
    long r = read_pages(m, pages);
    if (r)
        return r;
    int n = 0;
    for (int i = 0; i < npages(); i++)
        if (memcmp(pages + (size_t)i * PAGE_LEN, s->shadow + (size_t)i * PAGE_LEN, PAGE_LEN))
            idx[n++] = i;
    return n;
}

/* A RESUMING session's stream: every record well formed and intact, at
 * least one FULL record; the last FULL record is loaded. -EINVAL else. */
static long stream_load(struct mdev *m, const uint8_t *p, size_t len)
{
    const uint8_t *full = NULL;
    size_t off = 0;
    int np = npages();
    if (!len)
        return -EINVAL;
    while (off < len) {
        if (len - off < HDR_LEN)
            return -EINVAL;                 /* truncated */
        const uint8_t *h = p + off;
        uint32_t type = get16(h + 6), regs = get32(h + 12), n = get32(h + 16);
        if (get32(h) != MIG_MAGIC || get16(h + 4) != MIG_VERSION || get32(h + 8) != HDR_LEN ||
            get32(h + 20) != PAGE_LEN)
            return -EINVAL;
        if (type == REC_FULL ? (regs != REGS_LEN || n != (uint32_t)np)
                             : (type != REC_PRECOPY || regs || !n || n > (uint32_t)np))
            return -EINVAL;
        size_t body = regs + (size_t)n * ENT_LEN;
        if (len - off - HDR_LEN < body)
            return -EINVAL;                 /* truncated */
        const uint8_t *b = h + HDR_LEN;
        if (fnv(fnv(FNV_INIT, h, 32), b, body) != get64(h + 32))
            return -EINVAL;                 /* corrupt */
        if (regs && (get32(b) != EDU_IDENT || get32(b + 20) || get64(b + 56)))
            return -EINVAL;                 /* another device's state */
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *e = b + regs + (size_t)i * ENT_LEN;
            uint32_t ix = get32(e);
            if (ix >= (uint32_t)np || get32(e + 4) || (type == REC_FULL && ix != i))
                return -EINVAL;
        }
        if (type == REC_FULL)
            full = h;
        off += HDR_LEN + body;
    }
    if (!full)
        return -EINVAL;                     /* no complete image */
    const uint8_t *r = full + HDR_LEN;
    m->addr4 = get32(r + 4);
    m->fact = get32(r + 8);
    m->status = get32(r + 12);
    m->irq_status = get32(r + 16);
    m->dma_src = get64(r + 24);
    m->dma_dst = get64(r + 32);
    m->dma_cnt = get64(r + 40);
    m->dma_cmd = get64(r + 48);
    const uint8_t *pg = r + REGS_LEN;
    memcpy(m->buf, pg + 8, PAGE_LEN);
    for (int i = 1; i < np; i++) {
        long w = mdev_bar2_rw(m, (void *)(pg + (size_t)i * ENT_LEN + 8), PAGE_LEN,
                              (uint64_t)(i - 1) * PAGE_LEN, true);
        if (w != PAGE_LEN)
            return w < 0 ? w : -EIO;
    }
    return 0;
}

/* ------------------------------------------------------------ sessions */

static void sess_free(struct migsess *s)
{
    free(s->data);
    free(s->shadow);
    free(s);
    cnt.mig_sessions--;
}

/* The device leaves the saving/resuming states: reads and writes on the
 * data fd fail with ENODEV from now on. */
static void session_end(struct mdev *m)
{
    struct migsess *s = m->mig;
    if (!s)
        return;
    m->mig = NULL;
    s->dev = NULL;
    free(s->data);
    free(s->shadow);
    s->data = s->shadow = NULL;
    s->len = s->cap = s->pos = s->init_end = 0;
    if (!s->file)
        sess_free(s);
}

/* A new session for the arc into @to (STOP_COPY, PRE_COPY[_P2P], RESUMING):
 * its fd, a memfd named vfio-model:migdata:vfio<i>, into *fd. */
static long session_new(struct mdev *m, uint32_t to, int *fd)
{
    struct migsess *s = mz(sizeof(*s));
    if (!s)
        return -ENOMEM;
    cnt.mig_sessions++;
    long r = 0;
    if (to == ST(RESUMING)) {
        s->resuming = true;
    } else if (to == ST(STOP_COPY)) {
        r = queue_full(s, m);
    } else {
        /* PRE_COPY: the initial data is a snapshot of the pages */
        int idx[MAX_PAGES];
        s->shadow = malloc(MAX_PAGES * PAGE_LEN);
        r = s->shadow ? read_pages(m, s->shadow) : -ENOMEM;
        for (int i = 0; i < npages(); i++)
            idx[i] = i;
        if (!r)
            r = rec_queue(s, m, REC_PRECOPY, s->shadow, idx, npages());
        s->init_end = s->len;
    }
    char tag[48];
    snprintf(tag, sizeof(tag), "migdata:vfio%d", m->idx);
    struct mfile *f = r ? NULL : file_new(FK_MIGDATA, tag, 1 /* O_CLOEXEC */, fd);
    if (!f) {
        if (!r)
            r = -(errno ? errno : ENOMEM);
        sess_free(s);
        return r;
    }
    f->ms = s;
    s->file = f;
    s->dev = m;
    m->mig = s;
    return 0;
}

/* One arc of the FSM (between supported states; a stepped-over P2P state
 * makes e.g. RUNNING -> STOP one arc). */
static long mig_arc(struct mdev *m, uint32_t from, uint32_t to, int *fd)
{
    if (from == ST(RESUMING)) {
        /* complete the load; bad data fails the SET and breaks the device */
        long r = m->mig ? stream_load(m, m->mig->data, m->mig->len) : -EINVAL;
        session_end(m);
        if (r) {
            cnt.mig_load_errors++;
            m->mig_state = ST(ERROR);
            return r;
        }
        cnt.mig_loads++;
    } else if (saving(from) && !saving(to)) {
        session_end(m);
    } else if (saving(from) && to == ST(STOP_COPY) && m->mig) {
        /* PRE_COPY[_P2P] -> STOP_COPY: the same session, now the full image
         * after what is queued */
        long r = queue_full(m->mig, m);
        if (r)
            return r;
    }
    if (to == ST(RESUMING) || (saving(to) && !saving(from))) {
        session_end(m);
        long r = session_new(m, to, fd);
        if (r)
            return r;
    }
    m->mig_state = to;
    return 0;
}

static long mig_set_state(struct mdev *m, uint32_t tgt, int *fd)
{
    uint32_t path[NSTATES];
    if (tgt >= NSTATES || !supported(tgt) || m->mig_state == ST(ERROR))
        return -EINVAL;
    int n = mig_path(m->mig_state, tgt, path);
    if (n < 0)
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        if (!supported(path[i]))
            continue;               /* an optional state the device lacks */
        long r = mig_arc(m, m->mig_state, path[i], fd);
        if (r)
            return r;
    }
    return 0;
}

/* VFIO_DEVICE_RESET, open, close: RUNNING, any session ended */
void mig_reset(struct mdev *m)
{
    session_end(m);
    m->mig_state = ST(RUNNING);
}

/* ------------------------------------------------------- device features */

/* vfio_check_feature(): 1 to go on, 0 for a successful probe, -EINVAL */
static long check_feature(uint32_t fl, uint32_t datasz, uint32_t ops, size_t minsz)
{
    if ((fl & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) & ~ops)
        return -EINVAL;
    if (fl & VFIO_DEVICE_FEATURE_PROBE)
        return 0;
    if (!(fl & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)))
        return -EINVAL;
    if (datasz < minsz)
        return -EINVAL;
    return 1;
}

long mig_feature(struct mdev *m, uint32_t fl, void *data, uint32_t datasz)
{
    if (!cfg.mig_flags)
        return -ENOTTY;             /* the device has no migration ops */
    long r;
    switch (fl & VFIO_DEVICE_FEATURE_MASK) {
    case VFIO_DEVICE_FEATURE_MIGRATION: {
        struct vfio_device_feature_migration mf = { .flags = cfg.mig_flags };
        r = check_feature(fl, datasz, VFIO_DEVICE_FEATURE_GET, sizeof(mf));
        if (r != 1)
            return r;
        memcpy(data, &mf, sizeof(mf));
        return 0;
    }
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: {
        struct vfio_device_feature_mig_data_size ds = { .stop_copy_length = full_len() };
        r = check_feature(fl, datasz, VFIO_DEVICE_FEATURE_GET, sizeof(ds));
        if (r != 1)
            return r;
        memcpy(data, &ds, sizeof(ds));
        return 0;
    }
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: {
        struct vfio_device_feature_mig_state *u = data;
        r = check_feature(fl, datasz, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET,
                          sizeof(*u));
        if (r != 1)
            return r;
        if (fl & VFIO_DEVICE_FEATURE_GET) {
            u->device_state = m->mig_state;
            u->data_fd = -1;
            return 0;
        }
        int fd = -1;
        errno = 0;
        r = mig_set_state(m, u->device_state, &fd);
        u->data_fd = r ? -1 : fd;
        if (!r)
            cnt.mig_state_sets++;
        return r;
    }
    }
    return -ENOTTY;
}

/* ------------------------------------------------------------- data fd */

static size_t initial_left(const struct migsess *s)
{
    return s->pos < s->init_end ? s->init_end - s->pos : 0;
}

long migdata_rw(struct migsess *s, void *buf, size_t n, bool write)
{
    int e = inject_check_named(write ? INJ_MIG_WRITE : INJ_MIG_READ);
    if (e)
        return -e;                  /* nothing consumed or stored */
    if (write != s->resuming)
        return -EBADF;              /* the saving fd is O_RDONLY, the resuming O_WRONLY */
    struct mdev *m = s->dev;
    if (!m)
        return -ENODEV;             /* the session has ended */
    if (write) {
        if (n > RESUME_MAX - s->len)
            return -ENOMEM;
        long r = sess_reserve(s, n);
        if (r)
            return r;
        memcpy(s->data + s->len, buf, n);
        s->len += n;
        cnt.mig_bytes_loaded += (long)n;
        return (long)n;
    }
    if (!n)
        return 0;
    if (s->pos == s->len) {
        if (s->final)
            return 0;               /* STOP_COPY: end of stream, for ever */
        /* PRE_COPY: what changed since it was last sent, or the
         * temporary end of stream */
        uint8_t *pages = scratch;
        int idx[MAX_PAGES];
        long k = dirty_pages(s, m, pages, idx);
        if (k < 0)
            return k;
        if (!k)
            return -ENOMSG;
        long r = rec_queue(s, m, REC_PRECOPY, pages, idx, (int)k);
        if (r)
            return r;
        for (long i = 0; i < k; i++)
            memcpy(s->shadow + (size_t)idx[i] * PAGE_LEN, pages + (size_t)idx[i] * PAGE_LEN,
                   PAGE_LEN);
    }
    size_t k = s->len - s->pos < n ? s->len - s->pos : n;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    if (s->pos == s->len && !s->final) {
        s->pos = s->len = s->init_end = 0;   /* all read: start the buffer over */
    }
    cnt.mig_bytes_saved += (long)k;
    return (long)k;
}

long migdata_ioctl(struct migsess *s, unsigned long cmd, void *arg)
{
    bool known = cmd == VFIO_MIG_GET_PRECOPY_INFO;
    count_ioctl(cmd, known);
    if (!known)
        return -ENOTTY;
    struct vfio_precopy_info *u = arg;
    if (!u)
        return -EFAULT;
    if (u->argsz < offsetof(struct vfio_precopy_info, dirty_bytes) + 8)
        return -EINVAL;
    struct mdev *m = s->dev;
    if (!m || (m->mig_state != ST(PRE_COPY) && m->mig_state != ST(PRE_COPY_P2P)))
        return -EINVAL;
    int idx[MAX_PAGES];
    long k = dirty_pages(s, m, scratch, idx);
    if (k < 0)
        return k;
    size_t init = initial_left(s);
    size_t queued = s->len - s->pos - init;         /* changes queued, unread */
    u->initial_bytes = init;
    u->dirty_bytes = queued + (k ? HDR_LEN + (size_t)k * ENT_LEN : 0);
    return 0;
}

/* The user closed the last fd on the session's file */
void migdata_release(struct migsess *s)
{
    s->file = NULL;
    /* while the device is still in the session's state it keeps the
     * session (as a driver holds its own file reference): a RESUMING
     * device loads what was written when it leaves RESUMING, even after
     * the fd was closed, as QEMU does */
    if (!s->dev)
        sess_free(s);
}

/* ------------------------------------------------------------- control */

/* "device-state I": one line describing the device's migratable state */
size_t mdev_describe(struct mdev *m, char *buf, size_t sz)
{
    uint8_t *pages = scratch, regs[REGS_LEN];
    memset(pages, 0, sizeof(scratch));
    read_pages(m, pages);
    regs_put(m, regs);
    uint64_t bsum = fnv(FNV_INIT, pages, PAGE_LEN);
    uint64_t b2sum = fnv(FNV_INIT, pages + PAGE_LEN, (size_t)(npages() - 1) * PAGE_LEN);
    uint64_t all = fnv(fnv(FNV_INIT, regs, REGS_LEN), pages, (size_t)npages() * PAGE_LEN);
    int n = snprintf(buf, sz,
                     "vfio%d digest=%016llx buf=%016llx bar2=%016llx addr4=0x%x fact=0x%x "
                     "status=0x%x irq_status=0x%x dma_src=0x%llx dma_dst=0x%llx dma_cnt=0x%llx "
                     "dma_cmd=0x%llx mig=%s\n",
                     m->idx, (unsigned long long)all, (unsigned long long)bsum,
                     (unsigned long long)b2sum, m->addr4, m->fact, m->status, m->irq_status,
                     (unsigned long long)m->dma_src, (unsigned long long)m->dma_dst,
                     (unsigned long long)m->dma_cnt, (unsigned long long)m->dma_cmd,
                     mig_state_name(m->mig_state));
    return n < 0 ? 0 : (size_t)n > sz ? sz : (size_t)n;
}
