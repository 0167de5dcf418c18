/* vfio-model: cross-file internal interfaces */
#ifndef VFIO_MODEL_INTERNAL_H
#define VFIO_MODEL_INTERNAL_H

#include "model.h"
#include <pthread.h>
#include <stdio.h>

struct counters {
    long fds[FK_NKINDS];
    long ictx, ioas, hwpt, hwpt_auto, hwpt_dirty, bound, attached, dev_group_open;
    long areas, area_bytes, pinned, t1_pinned;
    long containers, containers_set, groups_open, groups_attached;
    long dmas, dma_bytes_mapped, spapr_windows, spapr_mem;
    long dirty_queries, dirty_marked, dma_ops, dma_bytes, dma_faults;
    long irqs, irq_fds, resets, bus_resets, region_reads, region_writes;
    long adopted, faults_injected, ioctls, region_mmaps;
    long populate_calls, populate_bytes;   /* madvise(MADV_POPULATE_WRITE) */
    long dirty_dropped;                    /* VFIO_MODEL_DROP_DIRTY / set drop_dirty */
    long dirty_bitmap_bytes;               /* memory of the dirty sets' bitmaps */
    long mig_sessions, mig_state_sets, mig_bytes_saved, mig_bytes_loaded;
    long mig_loads, mig_load_errors, dma_while_stopped;
};

struct ioname { const char *name; unsigned long cmd; };

extern pthread_mutex_t model_lock;
extern struct counters cnt;
extern struct mdev devs[MAX_DEVS];
extern struct group groups[MAX_DEVS];
extern int ngroups;
extern const struct ioname ionames[];

long sys_write(int fd, const void *b, size_t n);
long sys_read(int fd, void *b, size_t n);
int sys_close(int fd);
struct mfile *file_new(enum fkind kind, const char *tag, int cloexec, int *fdout);
void file_put_check(struct mfile *f);
struct mfile *lookup_fd_locked(int fd);
long model_fd_get(int fd, enum fkind kind, int wrong, struct mfile **out);
/* is number @i (a device index, a group) in the set @bits of a list knob? */
static inline bool cfg_bit(uint64_t bits, int i) { return i >= 0 && i < 64 && ((bits >> i) & 1); }
void *mz(size_t n);
int ranges_minus(struct range *out, int n, const struct range *cut, int ncut);
int ranges_minus_holes(struct range *out, int n);
int dev_resv(int idx, struct range *out);
bool ranges_overlap(const struct range *rs, int n, uint64_t start, uint64_t last);
bool inject_alloc_fail(void);
void count_ioctl(unsigned long cmd, bool known);

/* iommufd.c */
int iommufd_open(struct mfile *f);
void iommufd_release(struct ioctx *c);
long iommufd_ioctl(struct ioctx *c, unsigned long cmd, void *arg);
void ictx_put(struct ioctx *c);
long iommufd_bind(struct devfile *df, struct ioctx *c, uint32_t *devid);
void iommufd_unbind(struct devfile *df);
long iommufd_attach(struct devfile *df, uint32_t *pt_id);
void iommufd_detach(struct devfile *df);
/* translate for DMA: returns user VA or NULL; marks dirty if write */
int iommufd_translate(struct devfile *df, uint64_t iova, uint64_t len, bool write,
                      void **uva_out, uint64_t *contig);
int pin_check_va(uint64_t uva, uint64_t len);
void iommufd_mark_dirty(struct devfile *df, uint64_t iova, uint64_t len);

/* dirty.c: dirty page sets */
bool dirty_mark(struct dirtyset *d, uint64_t iova);
uint64_t dirty_mark_range(struct dirtyset *d, uint64_t iova, uint64_t len);
uint64_t dirty_mark_stride(struct dirtyset *d, uint64_t pg0, uint64_t first, uint64_t end,
                           uint64_t stride);
void dirty_clear_range(struct dirtyset *d, uint64_t start, uint64_t last);
uint64_t dirty_extract(struct dirtyset *d, uint64_t iova, uint64_t last, uint64_t pgsize,
                       uint64_t *bm, bool clear);
void dirty_free(struct dirtyset *d);
long device_mark_dirty(int idx, uint64_t iova, uint64_t len, uint64_t stride, const char **err);

/* legacy.c */
int container_open(struct mfile *f);
void container_release(struct container *c);
long container_ioctl(struct container *c, unsigned long cmd, void *arg);
int group_open(struct mfile *f, int num);
void group_release(struct group *g);
long group_ioctl(struct group *g, unsigned long cmd, void *arg);
int type1_translate(struct container *c, uint64_t iova, uint64_t len, bool write,
                    void **uva_out, uint64_t *contig);

/* device.c */
void mdev_init(struct mdev *m);
int cdev_open(struct mfile *f, int idx);
void devfile_release(struct devfile *df);
long device_ioctl(struct devfile *df, unsigned long cmd, void *arg);
long device_rw(struct devfile *df, void *buf, size_t n, uint64_t off, bool write);
struct devfile *devfile_new_group(struct group *g, struct mdev *m);
long device_mmap(struct devfile *df, uint64_t off, size_t len, int flags, int *fd, uint64_t *pos);
uint64_t bar_pages_in(uint64_t uva, uint64_t len);
long mdev_bar2_rw(struct mdev *m, void *buf, size_t n, uint64_t pos, bool write);
bool mdev_stopped(const struct mdev *m);
bool mdev_p2p_quiesced(const struct mdev *m);

/* migration.c: VFIO migration protocol v2 */
int inject_check_named(int which);      /* core.c: 0 or the errno to fail with */
enum { INJ_FEAT_MIGRATION = 1, INJ_FEAT_MIG_STATE, INJ_FEAT_MIG_DATA_SIZE, INJ_MIG_READ,
       INJ_MIG_WRITE, INJ_NAMED_MAX };
long mig_feature(struct mdev *m, uint32_t flags, void *data, uint32_t datasz);
void mig_reset(struct mdev *m);
const char *mig_state_name(uint32_t s);
long migdata_rw(struct migsess *s, void *buf, size_t n, bool write);
long migdata_ioctl(struct migsess *s, unsigned long cmd, void *arg);
void migdata_release(struct migsess *s);
size_t mdev_describe(struct mdev *m, char *buf, size_t sz);

/* objects listing for reports */
size_t emit_objects(char *buf, size_t sz);
long residual_objects(void);
void fprint_residual(FILE *o);

#endif
