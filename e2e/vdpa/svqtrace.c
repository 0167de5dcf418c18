/*
 * svqtrace: check, from the trace log of a QEMU that ran a vhost-vdpa
 * device with x-svq=on, that the shadow CVQ hands the device copies of
 * the guest's buffers in QEMU-owned memory, never guest RAM.
 *
 *   svqtrace [-r MIN_OUT_LEN] LOG
 *
 * LOG is QEMU's stderr with the log trace backend and the events
 *   vhost_vdpa_listener_region_add (guest memory: iova = GPA, llend,
 *                                   vaddr = where QEMU has it)
 *   vhost_vdpa_dma_map             (every IOTLB update: iova, size, uaddr)
 *   vhost_svq_copy_map(svq, buf, size, iova, device_writes)
 *   vhost_svq_copy_unmap(svq, iova, size)
 *   vhost_svq_copy_add(svq, head, out_iova, out_len, in_iova, in_len)
 *   vhost_svq_copy_refused(svq, out_len, in_len, limit)
 * Arguments are taken by name ("iova 0x1000", "iova: 0x1000",
 * "iova=0x1000"; "0x..." is hex, other numbers decimal, "(nil)" is 0), or
 * by position among the numbers after the event name when the names are
 * not all there.  A copy_map's range is taken as [iova, iova + size]
 * (inclusive, so that both byte counts and QEMU's DMAMap "size - 1"
 * convention are accepted).
 *
 * Checks (one "ok:" / "not ok:" line each):
 *   1. at least one vhost_svq_copy_add line (no vacuous pass);
 *   2. every copy_add's out range [out_iova, out_iova + out_len) and in
 *      range lie inside a copy_map mapping that is live at that point
 *      (mapped, not yet unmapped), the in range in a device-writable one;
 *   3. no copy_add IOVA lies in an IOVA range that maps guest memory
 *      (a dma_map whose uaddr is inside a region_add vaddr range);
 *   4. no dma_map covering a copy_map IOVA has its uaddr inside guest
 *      memory, no copy_map buf is inside guest memory, and at least one
 *      such dma_map exists;
 *   5. with -r: a vhost_svq_copy_refused line with out_len >= MIN_OUT_LEN
 *      and out_len > limit.
 * Exit status 0 only if all passed.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/report.h"

#define MAXARGS 16

struct range {
    uint64_t start, last;       /* inclusive */
    uint64_t uaddr;
    int writable, live;
};

static struct range *ram;       /* guest memory, QEMU virtual addresses */
static size_t nram;
static struct range *ramiova;   /* IOVAs that map guest memory */
static size_t nramiova;
static struct range *cmaps;     /* copy_map mappings, in IOVA */
static size_t ncmaps;
static struct range *dmaps;     /* every dma_map: IOVA -> uaddr */
static size_t ndmaps;

static void push(struct range **a, size_t *n, struct range r)
{
    *a = realloc(*a, (*n + 1) * sizeof(**a));
    (*a)[(*n)++] = r;
}

static int in_ranges(const struct range *a, size_t n, uint64_t x, size_t *which)
{
    for (size_t i = 0; i < n; i++) {
        if (x >= a[i].start && x <= a[i].last) {
            if (which)
                *which = i;
            return 1;
        }
    }
    return 0;
}

/* One parsed event: its arguments by name and the numbers in order. */
struct ev {
    char names[MAXARGS][32];
    uint64_t vals[MAXARGS];
    int nnamed;
    uint64_t pos[MAXARGS];
    int npos;
};

static int parse_num(const char *t, uint64_t *v)
{
    char *end;

    if (!strcmp(t, "(nil)")) {
        *v = 0;
        return 1;
    }
    if (!isdigit((unsigned char)t[0]))
        return 0;
    if (t[0] == '0' && (t[1] == 'x' || t[1] == 'X'))
        *v = strtoull(t + 2, &end, 16);
    else
        *v = strtoull(t, &end, 10);
    return *end == 0 || *end == ',' || *end == ')';
}

static void parse_args(const char *s, struct ev *e)
{
    char buf[1024], *tok[64], *p;
    int nt = 0;

    memset(e, 0, sizeof(*e));
    snprintf(buf, sizeof(buf), "%s", s);
    for (p = strtok(buf, " \t\n,"); p && nt < 64; p = strtok(NULL, " \t\n,"))
        tok[nt++] = p;
    for (int i = 0; i < nt; i++) {
        char *t = tok[i], *sep = strpbrk(t, ":="), key[32];
        uint64_t v;
        const char *val = NULL;
        int used_next = 0;

        if (parse_num(t, &v)) {
            if (e->npos < MAXARGS)
                e->pos[e->npos++] = v;
            continue;
        }
        if (sep && sep != t) {
            snprintf(key, sizeof(key), "%.*s", (int)(sep - t), t);
            if (sep[1])
                val = sep + 1;
            else if (i + 1 < nt)
                val = tok[i + 1], used_next = 1;
        } else if (!sep && i + 1 < nt && (isalpha((unsigned char)t[0]) ||
                                          t[0] == '_')) {
            snprintf(key, sizeof(key), "%s", t);
            val = tok[i + 1];
            used_next = 1;
        }
        if (val && parse_num(val, &v)) {
            if (e->nnamed < MAXARGS) {
                snprintf(e->names[e->nnamed], 32, "%s", key);
                e->vals[e->nnamed++] = v;
            }
            if (e->npos < MAXARGS)
                e->pos[e->npos++] = v;
            if (used_next)
                i++;
        }
    }
}

/* Argument NAME (or the POS-th number when names are missing). */
static int arg(const struct ev *e, const char *const *names, int count,
               uint64_t *out)
{
    int all = 1;

    for (int k = 0; k < count; k++) {
        int found = 0;

        for (int i = 0; i < e->nnamed; i++) {
            if (!strcmp(e->names[i], names[k])) {
                out[k] = e->vals[i];
                found = 1;
                break;
            }
        }
        all &= found;
    }
    if (all)
        return 1;
    if (e->npos < count)
        return 0;
    for (int k = 0; k < count; k++)
        out[k] = e->pos[k];
    return 1;
}

/* Text after the event NAME in line, or NULL. */
static const char *event(const char *line, const char *name)
{
    const char *p = strstr(line, name);
    size_t n = strlen(name);

    while (p) {
        if ((p == line || p[-1] == ':' || p[-1] == ' ') &&
            (p[n] == ' ' || p[n] == '(' || p[n] == '\n' || p[n] == 0))
            return p + n;
        p = strstr(p + 1, name);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static const char *const n_region[] = { "vdpa", "iova", "llend", "vaddr" };
    static const char *const n_dma[] = { "vdpa", "fd", "msg_type", "iova",
                                         "size", "uaddr" };
    static const char *const n_map[] = { "svq", "buf", "size", "iova",
                                         "device_writes" };
    static const char *const n_unmap[] = { "svq", "iova", "size" };
    static const char *const n_add[] = { "svq", "head", "out_iova", "out_len",
                                         "in_iova", "in_len" };
    static const char *const n_ref[] = { "svq", "out_len", "in_len", "limit" };
    uint64_t min_refused = 0, a[8];
    size_t adds = 0, add_bad = 0, add_ram = 0, refused = 0, lno = 0;
    size_t dma_copy = 0, dma_copy_ram = 0, map_buf_ram = 0, unparsed = 0;
    char *line = NULL, first_bad[512] = "", first_ram[512] = "";
    char first_dma[512] = "", first_ref[512] = "";
    size_t cap = 0;
    const char *path, *rest;
    struct ev e;
    FILE *f;
    int opt;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt(argc, argv, "r:")) != -1) {
        if (opt == 'r') {
            min_refused = strtoull(optarg, NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [-r MIN_OUT_LEN] LOG\n", argv[0]);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: %s [-r MIN_OUT_LEN] LOG\n", argv[0]);
        return 2;
    }
    path = argv[optind];
    if (!(f = fopen(path, "r"))) {
        printf("not ok: cannot open the trace log %s\n", path);
        return 1;
    }

    /*
     * Guest memory first (region_add lines may in principle come after
     * a copy map, but RAM is all mapped before the device starts).
     */
    while (getline(&line, &cap, f) >= 0) {
        lno++;
        if ((rest = event(line, "vhost_vdpa_listener_region_add"))) {
            parse_args(rest, &e);
            if (arg(&e, n_region, 4, a) && a[2] > a[1])
                push(&ram, &nram, (struct range){ .start = a[3], .last = a[3] + (a[2] - a[1]) - 1 });
            else
                unparsed++;
        }
    }
    rewind(f);
    lno = 0;
    while (getline(&line, &cap, f) >= 0) {
        lno++;
        line[strcspn(line, "\n")] = 0;
        if ((rest = event(line, "vhost_vdpa_dma_map"))) {
            parse_args(rest, &e);
            if (!arg(&e, n_dma, 6, a) || !a[4]) {
                unparsed++;
                continue;
            }
            push(&dmaps, &ndmaps, (struct range){ .start = a[3], .last = a[3] + a[4] - 1,
                                                  .uaddr = a[5] });
            if (in_ranges(ram, nram, a[5], NULL))
                push(&ramiova, &nramiova, (struct range){ .start = a[3],
                                         .last = a[3] + a[4] - 1, .uaddr = a[5] });
        } else if ((rest = event(line, "vhost_svq_copy_map"))) {
            parse_args(rest, &e);
            if (!arg(&e, n_map, 5, a)) {
                unparsed++;
                continue;
            }
            push(&cmaps, &ncmaps, (struct range){ a[3], a[3] + a[2], a[1],
                                                  a[4] != 0, 1 });
            if (in_ranges(ram, nram, a[1], NULL)) {
                map_buf_ram++;
                if (!first_ram[0])
                    snprintf(first_ram, sizeof(first_ram),
                             "line %zu: copy_map buf 0x%" PRIx64 " is in guest "
                             "memory: %s", lno, a[1], line);
            }
        } else if ((rest = event(line, "vhost_svq_copy_unmap"))) {
            parse_args(rest, &e);
            if (!arg(&e, n_unmap, 3, a)) {
                unparsed++;
                continue;
            }
            for (size_t i = 0; i < ncmaps; i++)
                if (cmaps[i].live && cmaps[i].start == a[1])
                    cmaps[i].live = 0;
        } else if ((rest = event(line, "vhost_svq_copy_add"))) {
            uint64_t io[2], len[2];
            int bad_here = 0, ram_here = 0;

            parse_args(rest, &e);
            if (!arg(&e, n_add, 6, a)) {
                unparsed++;
                continue;
            }
            adds++;
            io[0] = a[2]; len[0] = a[3];
            io[1] = a[4]; len[1] = a[5];
            for (int k = 0; k < 2; k++) {
                int inside = 0;

                if (!len[k])
                    continue;
                for (size_t i = 0; i < ncmaps && !inside; i++) {
                    const struct range *m = &cmaps[i];

                    inside = m->live && io[k] >= m->start &&
                             io[k] + len[k] - 1 <= m->last &&
                             (k == 0 || m->writable);
                }
                bad_here |= !inside;
                ram_here |= in_ranges(ramiova, nramiova, io[k], NULL) ||
                            in_ranges(ramiova, nramiova, io[k] + len[k] - 1, NULL);
            }
            if (bad_here) {
                add_bad++;
                if (!first_bad[0])
                    snprintf(first_bad, sizeof(first_bad), "line %zu: %s",
                             lno, line);
            }
            if (ram_here) {
                add_ram++;
                if (!first_ram[0])
                    snprintf(first_ram, sizeof(first_ram),
                             "line %zu: IOVA maps guest memory: %s", lno, line);
            }
        } else if ((rest = event(line, "vhost_svq_copy_refused"))) {
            parse_args(rest, &e);
            if (!arg(&e, n_ref, 4, a)) {
                unparsed++;
                continue;
            }
            if (a[1] >= min_refused && a[1] > a[3])
                refused++;
            if (!first_ref[0])
                snprintf(first_ref, sizeof(first_ref), "%s", line);
        }
    }
    fclose(f);

    /* dma_maps behind the copy buffers */
    for (size_t d = 0; d < ndmaps; d++) {
        int copy = 0;

        for (size_t i = 0; i < ncmaps && !copy; i++)
            copy = dmaps[d].start <= cmaps[i].last && cmaps[i].start <= dmaps[d].last;
        if (!copy)
            continue;
        dma_copy++;
        if (in_ranges(ram, nram, dmaps[d].uaddr, NULL)) {
            dma_copy_ram++;
            if (!first_dma[0])
                snprintf(first_dma, sizeof(first_dma), "iova 0x%" PRIx64
                         " uaddr 0x%" PRIx64, dmaps[d].start, dmaps[d].uaddr);
        }
    }

    printf("trace %s: %zu guest memory ranges (region_add), %zu dma_map "
           "(%zu of guest memory), %zu copy_map, %zu copy_add, %zu lines not "
           "parsed\n", path, nram, ndmaps, nramiova, ncmaps, adds, unparsed);
    if (!nram)
        bad("trace: no vhost_vdpa_listener_region_add lines (guest memory "
            "unknown)");
    if (adds)
        ok("trace: %zu vhost_svq_copy_add line(s)", adds);
    else
        bad("trace: no vhost_svq_copy_add line: the shadow CVQ does not "
            "trace its copies (QEMU without the copy-mode trace events)");
    if (adds && !add_bad)
        ok("trace: every copy_add out/in IOVA range lies in a live "
           "vhost_svq_copy_map mapping (in: device-writable)");
    else if (adds)
        bad("trace: %zu copy_add line(s) use IOVAs no live copy_map covers; "
            "first: %s", add_bad, first_bad);
    if (adds && !add_ram && !map_buf_ram)
        ok("trace: no copy_add IOVA maps guest memory, no copy_map buffer is "
           "guest memory");
    else if (adds)
        bad("trace: copy buffers in guest memory: %s", first_ram);
    if (dma_copy && !dma_copy_ram)
        ok("trace: %zu vhost_vdpa_dma_map(s) for the copy buffers, none with "
           "a uaddr in guest memory", dma_copy);
    else if (dma_copy)
        bad("trace: %zu of %zu dma_map(s) for the copy buffers point into "
            "guest memory; first: %s", dma_copy_ram, dma_copy, first_dma);
    else
        bad("trace: no vhost_vdpa_dma_map covers a copy_map IOVA");
    if (min_refused) {
        if (refused)
            ok("trace: vhost_svq_copy_refused for the oversize element "
               "(out_len >= %" PRIu64 " > limit)", min_refused);
        else
            bad("trace: no vhost_svq_copy_refused with out_len >= %" PRIu64
                " > limit%s%s", min_refused, first_ref[0] ? "; saw: " : "",
                first_ref);
    }
    free(line);
    printf("result: %s\n", failures ? "failed" : "passed");
    return failures ? 1 : 0;
}
