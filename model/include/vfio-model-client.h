/*
 * vfio-model-client.h: header-only client of the vfio-model control socket
 * (VFIO_MODEL_CONTROL) and report file (VFIO_MODEL_REPORT).
 *
 *   int fd = vfio_model_connect("/tmp/ctl.sock");      // -1 on error
 *   long long v = vfio_model_counter(fd, "ioas");      // -1 if unknown
 *   vfio_model_fail(fd, "IOMMU_IOAS_MAP", 1, "ENOMEM"); // 0 on success
 *   vfio_model_close(fd);
 *   long long l = vfio_model_report_counter("/tmp/report", "leaks");
 *
 * Protocol (one command per line, see model/README.md): "counters" and
 * "objects" answer key=value / object lines then "end"; "get NAME" answers
 * "NAME=VALUE"; "fail NAME N ERRNO", "fail-clear", "set KEY VALUE" answer
 * "ok" or "error ..."; "mark-dirty I IOVA LEN STRIDE" answers "ok N" or
 * "error ..."; "device-state I" one "vfio<i> ..." line.
 */
#ifndef VFIO_MODEL_CLIENT_H
#define VFIO_MODEL_CLIENT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static inline int vfio_model_connect(const char *path)
{
    struct sockaddr_un a;
    int i, fd;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    for (i = 0; i < 100; i++) {         /* the server may still be starting */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
        close(fd);
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return -1;
}

static inline void vfio_model_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Send one command; read the answer into out (NUL-terminated). Multi-line
 * answers (counters, objects) are read up to and including "end\n".
 * Returns the answer length or -1. */
static inline int vfio_model_cmd(int fd, const char *cmd, char *out, size_t outsz)
{
    char line[512];
    size_t n = 0;
    int multi = !strcmp(cmd, "counters") || !strcmp(cmd, "objects");
    int l = snprintf(line, sizeof(line), "%s\n", cmd);
    if (l <= 0 || write(fd, line, (size_t)l) != l || outsz < 2)
        return -1;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r <= 0)
            return -1;
        if (n < outsz - 1)
            out[n++] = c;
        out[n] = 0;
        if (c != '\n')
            continue;
        if (!multi)
            break;
        if (n >= 4 && !strcmp(out + n - 4, "end\n") && (n == 4 || out[n - 5] == '\n'))
            break;
    }
    return (int)n;
}

static inline long long vfio_model_counter(int fd, const char *name)
{
    char cmd[128], out[256];
    snprintf(cmd, sizeof(cmd), "get %s", name);
    if (vfio_model_cmd(fd, cmd, out, sizeof(out)) < 0)
        return -1;
    size_t kl = strlen(name);
    if (strncmp(out, name, kl) || out[kl] != '=')
        return -1;
    return strtoll(out + kl + 1, NULL, 0);
}

/* Arm: the Nth next call of ioctl NAME (or "any" ioctl, or "alloc" for the
 * model's internal allocations) fails with errno ERR (name or number). */
static inline int vfio_model_fail(int fd, const char *name, long nth, const char *err)
{
    char cmd[160], out[128];
    snprintf(cmd, sizeof(cmd), "fail %s %ld %s", name, nth, err);
    if (vfio_model_cmd(fd, cmd, out, sizeof(out)) < 0)
        return -1;
    return strncmp(out, "ok", 2) ? -1 : 0;
}

static inline int vfio_model_set(int fd, const char *key, unsigned long long v)
{
    char cmd[160], out[128];
    snprintf(cmd, sizeof(cmd), "set %s %llu", key, v);
    if (vfio_model_cmd(fd, cmd, out, sizeof(out)) < 0)
        return -1;
    return strncmp(out, "ok", 2) ? -1 : 0;
}

/* "mark-dirty I IOVA LEN STRIDE": mark every STRIDE-th 4 KiB page of
 * [iova, iova + len) mapped (writeable) where device vfio<i> is attached
 * dirty, as if the device had written it. Returns the number of pages, or
 * -1 on an "error ..." answer. */
static inline long long vfio_model_mark_dirty(int fd, int dev, unsigned long long iova,
                                              unsigned long long len, unsigned long long stride)
{
    char cmd[160], out[128];
    snprintf(cmd, sizeof(cmd), "mark-dirty %d 0x%llx 0x%llx %llu", dev, iova, len, stride);
    if (vfio_model_cmd(fd, cmd, out, sizeof(out)) < 0 || strncmp(out, "ok ", 3))
        return -1;
    return strtoll(out + 3, NULL, 0);
}

/* "device-state I": the device's migratable state in one line
 * ("vfio<i> digest=... buf=... bar2=... addr4=... ... mig=STATE").
 * Returns the line's length or -1. */
static inline int vfio_model_device_state(int fd, int dev, char *out, size_t outsz)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "device-state %d", dev);
    int n = vfio_model_cmd(fd, cmd, out, outsz);
    return n < 0 || strncmp(out, "vfio", 4) ? -1 : n;
}

/* Read NAME from a report file written at exit; -1 if absent. */
static inline long long vfio_model_report_counter(const char *file, const char *name)
{
    FILE *f = fopen(file, "r");
    char line[512];
    long long v = -1;
    size_t kl = strlen(name);
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, name, kl) && line[kl] == '=') {
            v = strtoll(line + kl + 1, NULL, 0);
            break;
        }
    fclose(f);
    return v;
}

#endif
