/*
 * fdpass: model fds created by a process that does NOT load the model
 * (libvirt style) and handed to one that does.
 *
 * The parent creates the fds the documented way -- memfd_create() with the
 * names "vfio-model:iommu" and "vfio-model:cdev:vfio0" -- then runs itself
 * again with LD_PRELOAD=<lib> (argv[2]), passing the iommufd by inheritance
 * and the cdev over a unix socket with SCM_RIGHTS. The child binds,
 * attaches and does a DMA round trip with them.
 * Usage: fdpass PREFIX LIB
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "vfio-model-client.h"

static const char *prefix;
static int nfail;

static void result(const char *name, int ok, const char *msg)
{
    if (ok)
        printf("PASS: %s/%s\n", prefix, name);
    else {
        printf("FAIL: %s/%s: %s (errno %s)\n", prefix, name, msg, strerror(errno));
        nfail++;
    }
    fflush(stdout);
}

static int recv_fd(int sock)
{
    char data;
    struct iovec io = { .iov_base = &data, .iov_len = 1 };
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.b,
                        .msg_controllen = sizeof(u.b) };
    if (recvmsg(sock, &m, 0) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(fd));
    return fd;
}

static int send_fd(int sock, int fd)
{
    char data = 'x';
    struct iovec io = { .iov_base = &data, .iov_len = 1 };
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof(u));
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.b,
                        .msg_controllen = sizeof(u.b) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(fd));
    return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

#define BAR0 ((uint64_t)VFIO_PCI_BAR0_REGION_INDEX << 40)
#define CFG ((uint64_t)VFIO_PCI_CONFIG_REGION_INDEX << 40)

static int child(int ifd, int sock)
{
    int ctl = vfio_model_connect(getenv("VFIO_MODEL_CONTROL"));
    result("child-control", ctl >= 0, "no control socket");
    int dev = recv_fd(sock);
    result("scm-rights-receive", dev >= 0, "recvmsg");
    struct stat st;
    result("fstat-passed-cdev", fstat(dev, &st) == 0 && S_ISCHR(st.st_mode) &&
           st.st_rdev == makedev(511, 0), "fstat of a passed cdev is not char 511:0");
    struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = ifd };
    result("bind-passed-fds", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b) == 0, "bind");
    struct iommu_ioas_alloc a = { .size = sizeof(a) };
    result("ioas-on-inherited-fd", ioctl(ifd, IOMMU_IOAS_ALLOC, &a) == 0, "ioas alloc");
    char *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct iommu_ioas_map m = { .size = sizeof(m), .ioas_id = a.out_ioas_id, .user_va = (uintptr_t)buf,
                                .length = 8192, .iova = 0x100000,
                                .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                                         IOMMU_IOAS_MAP_WRITEABLE };
    struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = a.out_ioas_id };
    int ok = ioctl(ifd, IOMMU_IOAS_MAP, &m) == 0 && ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) == 0;
    uint16_t cmd = 6;
    ok = ok && pwrite(dev, &cmd, 2, CFG + 4) == 2;
    strcpy(buf, "passed between processes");
    uint64_t regs[][2] = { { 0x80, 0x100000 }, { 0x88, 0x40000 }, { 0x90, 32 }, { 0x98, 1 },
                           { 0x80, 0x40000 }, { 0x88, 0x101000 }, { 0x90, 32 }, { 0x98, 3 } };
    for (size_t i = 0; ok && i < 8; i++)
        ok = pwrite(dev, &regs[i][1], 8, BAR0 + regs[i][0]) == 8;
    result("dma-with-passed-fds", ok && !strcmp(buf + 4096, "passed between processes"), "dma");
    result("adopted-counter", vfio_model_counter(ctl, "adopted_fds") == 2, "adopted_fds != 2");
    int d2 = dup(ifd);
    close(ifd);
    struct iommu_destroy ds = { .size = sizeof(ds), .id = 9999 };
    result("dup-of-adopted-fd", ioctl(d2, IOMMU_DESTROY, &ds) == -1 && errno == ENOENT &&
           vfio_model_counter(ctl, "iommufd_ctx") == 1, "dup lost the context");
    close(dev);
    close(d2);
    result("released-after-close", vfio_model_counter(ctl, "iommufd_ctx") == 0 &&
           vfio_model_counter(ctl, "pinned_pages") == 0 && vfio_model_counter(ctl, "files") == 0,
           "objects left");
    vfio_model_close(ctl);
    return nfail ? 1 : 0;
}

int main(int argc, char **argv)
{
    prefix = argc > 1 ? argv[1] : "model-fdpass";
    if (argc == 5 && !strcmp(argv[2], "--child"))
        return child(atoi(argv[3]), atoi(argv[4]));
    if (argc != 3) {
        fprintf(stderr, "usage: fdpass PREFIX LIB\n");
        return 2;
    }
    int ifd = memfd_create("vfio-model:iommu", 0);          /* inheritable */
    int cdev = memfd_create("vfio-model:cdev:vfio0", MFD_CLOEXEC);
    int sv[2];
    if (ifd < 0 || cdev < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        printf("FAIL: %s/setup: %s\n", prefix, strerror(errno));
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char a3[16], a4[16];
        snprintf(a3, sizeof(a3), "%d", ifd);
        snprintf(a4, sizeof(a4), "%d", sv[1]);
        setenv("LD_PRELOAD", argv[2], 1);
        execl("/proc/self/exe", argv[0], prefix, "--child", a3, a4, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    close(ifd);
    int sent = send_fd(sv[0], cdev);
    close(cdev);
    int status = 0;
    waitpid(pid, &status, 0);
    if (sent) {
        printf("FAIL: %s/scm-rights-send: %s\n", prefix, strerror(errno));
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
        printf("FAIL: %s/child: did not run (status %d)\n", prefix, status);
        return 1;
    }
    return WEXITSTATUS(status);
}
