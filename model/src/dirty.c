/*
 * vfio-model: dirty page sets -- the dirty bits of an iommufd domain (HWPT)
 * and the dirty log of a type1 container.
 *
 * A set is a sorted array of chunks, each the bitmap of 128 MiB of IOVA
 * (32768 pages of 4 KiB, 4 KiB of bits), created when a page in it is first
 * marked. 64 GiB of IOVA all dirty costs 512 chunks (2 MiB); marking is a
 * bit set in the chunk found last (or by binary search), and reading a
 * range back walks the chunks in it a 64-bit word at a time.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define PGSHIFT 12
#define CH_PAGES (1ULL << DCHUNK_PAGE_BITS)

/* index of the first chunk whose idx is >= @idx */
static size_t chunk_lower(const struct dirtyset *d, uint64_t idx)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->c[mid]->idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The chunk of page-chunk number @idx, created if @create (NULL if it
 * does not exist or cannot be allocated). */
static struct dchunk *chunk_get(struct dirtyset *d, uint64_t idx, bool create)
{
    if (d->hint < d->n && d->c[d->hint]->idx == idx)
        return d->c[d->hint];
    size_t i = chunk_lower(d, idx);
    if (i < d->n && d->c[i]->idx == idx) {
        d->hint = i;
        return d->c[i];
    }
    if (!create)
        return NULL;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        struct dchunk **p = realloc(d->c, nc * sizeof(*p));
        if (!p)
            return NULL;
        d->c = p;
        d->cap = nc;
    }
    struct dchunk *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->idx = idx;
    cnt.dirty_bitmap_bytes += (long)sizeof(*ch);
    memmove(d->c + i + 1, d->c + i, (d->n - i) * sizeof(*d->c));
    d->c[i] = ch;
    d->n++;
    d->hint = i;
    return ch;
}

static bool mark_page(struct dirtyset *d, uint64_t pg)
{
    struct dchunk *ch = chunk_get(d, pg >> DCHUNK_PAGE_BITS, true);
    if (!ch)
        return false;
    uint64_t b = pg & (CH_PAGES - 1), bit = 1ULL << (b % 64);
    uint64_t *w = &ch->w[b / 64];
    if (*w & bit)
        return false;
    *w |= bit;
    ch->ndirty++;
    cnt.dirty_marked++;
    return true;
}

/* Mark the 4 KiB page holding @iova; true if it was clean. */
bool dirty_mark(struct dirtyset *d, uint64_t iova)
{
    return mark_page(d, iova >> PGSHIFT);
}

/* Mark every page touched by [iova, iova + len); returns how many were clean. */
uint64_t dirty_mark_range(struct dirtyset *d, uint64_t iova, uint64_t len)
{
    uint64_t n = 0;
    if (!len)
        return 0;
    for (uint64_t pg = iova >> PGSHIFT; pg <= (iova + len - 1) >> PGSHIFT; pg++)
        n += mark_page(d, pg);
    return n;
}

/* Mark the pages pg0 + k * stride (k >= 0) that lie in [first, end)
 * (page numbers); returns how many pages that is (clean or not). */
uint64_t dirty_mark_stride(struct dirtyset *d, uint64_t pg0, uint64_t first, uint64_t end,
                           uint64_t stride)
{
    if (first < pg0)
        first = pg0;
    uint64_t k = (first - pg0 + stride - 1) / stride, n = 0;
    for (uint64_t pg = pg0 + k * stride; pg < end && pg >= pg0; pg += stride) {
        mark_page(d, pg);
        n++;
    }
    return n;
}

/* Call @fn for each word of dirty bits of the pages [p0, p1] (inclusive
 * page numbers): @v holds the dirty bits of pages first..first+63 that lie
 * in the range. @fn returns the bits to clear. */
typedef uint64_t (*word_fn)(uint64_t first, uint64_t v, void *ctx);

static void walk(struct dirtyset *d, uint64_t p0, uint64_t p1, word_fn fn, void *ctx)
{
    for (size_t i = chunk_lower(d, p0 >> DCHUNK_PAGE_BITS);
         i < d->n && d->c[i]->idx <= p1 >> DCHUNK_PAGE_BITS; i++) {
        struct dchunk *ch = d->c[i];
        if (!ch->ndirty)
            continue;
        uint64_t base = ch->idx << DCHUNK_PAGE_BITS;
        uint64_t lo = p0 > base ? p0 - base : 0;
        uint64_t hi = p1 - base < CH_PAGES - 1 ? p1 - base : CH_PAGES - 1;
        for (uint64_t wi = lo / 64; wi <= hi / 64; wi++) {
            uint64_t v = ch->w[wi];
            if (!v)
                continue;
            if (wi == lo / 64)
                v &= ~0ULL << (lo % 64);
            if (wi == hi / 64 && hi % 64 != 63)
                v &= (1ULL << (hi % 64 + 1)) - 1;
            if (!v)
                continue;
            uint64_t clr = fn(base + wi * 64, v, ctx) & v;
            if (clr) {
                ch->w[wi] &= ~clr;
                ch->ndirty -= (uint64_t)__builtin_popcountll(clr);
            }
        }
    }
}

static uint64_t clear_all(uint64_t first, uint64_t v, void *ctx)
{
    (void)first;
    (void)ctx;
    return v;
}

/* Forget the dirty pages that touch [start, last] (an unmapped range) */
void dirty_clear_range(struct dirtyset *d, uint64_t start, uint64_t last)
{
    walk(d, start >> PGSHIFT, last >> PGSHIFT, clear_all, NULL);
    /* drop the chunks left empty, so an unmapped range holds no memory */
    size_t o = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (d->c[i]->ndirty) {
            d->c[o++] = d->c[i];
        } else {
            free(d->c[i]);
            cnt.dirty_bitmap_bytes -= (long)sizeof(struct dchunk);
        }
    }
    d->n = o;
    d->hint = 0;
}

struct extract {
    uint64_t iova, last, ps, *bm, npages;
    bool clear, fast;           /* fast: ps == 4 KiB, iova page aligned */
};

static uint64_t extract_word(uint64_t first, uint64_t v, void *ctx)
{
    struct extract *x = ctx;
    x->npages += (uint64_t)__builtin_popcountll(v);
    if (x->fast) {
        /* bit b of v is page first + b, i.e. output bit first + b - iova/4K */
        int64_t o = (int64_t)(first - (x->iova >> PGSHIFT));
        uint64_t w = v;
        if (o < 0) {            /* the pages below iova are masked out of v */
            w >>= -o;
            o = 0;
        }
        uint64_t q = (uint64_t)o / 64, r = (uint64_t)o % 64;
        x->bm[q] |= w << r;
        if (r && (w >> (64 - r)))
            x->bm[q + 1] |= w >> (64 - r);
    } else {
        for (uint64_t t = v; t; t &= t - 1) {
            uint64_t pa = (first + (uint64_t)__builtin_ctzll(t)) << PGSHIFT;
            uint64_t s = pa > x->iova ? pa : x->iova;
            uint64_t e = pa + (1ULL << PGSHIFT) - 1 < x->last ? pa + (1ULL << PGSHIFT) - 1 : x->last;
            for (uint64_t bit = (s - x->iova) / x->ps; bit <= (e - x->iova) / x->ps; bit++)
                x->bm[bit / 64] |= 1ULL << (bit % 64);
        }
    }
    return x->clear ? v : 0;
}

/* Report the dirty pages touching [iova, last] into the user bitmap @bm,
 * one bit per @pgsize (a power of two) from @iova, only setting bits; with
 * @clear they become clean. Returns how many dirty 4 KiB pages were seen. */
uint64_t dirty_extract(struct dirtyset *d, uint64_t iova, uint64_t last, uint64_t pgsize,
                       uint64_t *bm, bool clear)
{
    struct extract x = { .iova = iova, .last = last, .ps = pgsize, .bm = bm, .clear = clear,
                         .fast = pgsize == (1ULL << PGSHIFT) && !(iova & ((1ULL << PGSHIFT) - 1)) };
    walk(d, iova >> PGSHIFT, last >> PGSHIFT, extract_word, &x);
    return x.npages;
}

void dirty_free(struct dirtyset *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->c[i]);
    cnt.dirty_bitmap_bytes -= (long)(d->n * sizeof(struct dchunk));
    free(d->c);
    memset(d, 0, sizeof(*d));
}

