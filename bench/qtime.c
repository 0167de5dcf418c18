/*
 * bench/qtime.c: time one QEMU process from start to quit.
 *
 *   qtime [-t SECS] [-l LOG] -- QEMU ARGS...   (ARGS must include -monitor stdio)
 *
 * Starts QEMU with its stdin and stdout on pipes (stderr to LOG, default
 * /dev/null), waits for the HMP prompt "(qemu)" on stdout (printed when
 * the monitor's chardev opens, before the devices exist), sends
 * "info status" and waits for its answer "VM status", which only QEMU's
 * main loop gives, i.e. after the machine and every -device were realized
 * (vfio-pci maps all guest RAM during realize); then reads
 * VmPin/VmLck/VmRSS from /proc/PID/status, sends "quit", reads stdout to
 * EOF and reaps the process (the kernel unpins and unmaps what QEMU still
 * held when its files are closed, before the parent is told).
 * Prints one line:
 *   QTIME up=<s> total=<s> vmpin=<kB> vmlck=<kB> rss=<kB> rc=<exit status>
 * up = start to the "info status" answer, total = start to reaped (both CLOCK_MONOTONIC
 * wall time).  Gives up after SECS (default 600): kills QEMU, rc=-1.
 * Exit status 0 if QEMU reached the prompt and exited 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void status(pid_t pid, long *pin, long *lck, long *rss)
{
    char path[64], line[256];
    FILE *f;

    *pin = *lck = *rss = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "VmPin: %ld", pin);
        sscanf(line, "VmLck: %ld", lck);
        sscanf(line, "VmRSS: %ld", rss);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    int opt, limit = 600;
    const char *logp = "/dev/null";

    while ((opt = getopt(argc, argv, "+t:l:")) != -1) {
        if (opt == 't')
            limit = atoi(optarg);
        else if (opt == 'l')
            logp = optarg;
        else
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: qtime [-t SECS] [-l LOG] -- QEMU ARGS...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        return perror("pipe"), 1;
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        return perror("fork"), 1;
    if (pid == 0) {
        int lf = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (lf >= 0)
            dup2(lf, 2);
        execvp(argv[optind], argv + optind);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);

    char buf[4096], tail[16] = "";
    double tup = -1;
    long pin = -1, lck = -1, rss = -1;
    int eof = 0, asked = 0;
    while (!eof) {
        double left = limit - (now() - t0);
        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = { .fd = out[0], .events = POLLIN };
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(out[0], buf, sizeof(buf) - 1);
        if (n <= 0) {
            eof = 1;
            break;
        }
        buf[n] = 0;
        if (tup < 0) {
            /* a marker may straddle two reads */
            char join[sizeof(tail) + sizeof(buf)];
            snprintf(join, sizeof(join), "%s%s", tail, buf);
            if (!asked && strstr(join, "(qemu)")) {
                /*
                 * The first prompt comes when the monitor's chardev opens,
                 * before the devices are created: ask something only the
                 * main loop answers.
                 */
                asked = 1;
                if (write(in[1], "info status\n", 12) != 12)
                    perror("qtime: write info status");
            } else if (asked && strstr(join, "VM status")) {
                tup = now() - t0;
                status(pid, &pin, &lck, &rss);
                if (write(in[1], "quit\n", 5) != 5)
                    perror("qtime: write quit");
            }
            size_t jl = strlen(join);
            const char *t = jl > 10 ? join + jl - 10 : join;
            memcpy(tail, t, strlen(t) + 1);     /* at most 11 bytes */
        }
    }
    close(in[1]);
    int st = 0;
    waitpid(pid, &st, 0);
    double total = now() - t0;
    int rc = tup < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("QTIME up=%.3f total=%.3f vmpin=%ld vmlck=%ld rss=%ld rc=%d\n",
           tup, total, pin, lck, rss, rc);
    return rc == 0 ? 0 : 1;
}
