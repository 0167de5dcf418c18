"""qtestlib: what the model's qtest-protocol drivers (qemu-dma.py,
qemu-viommu.py) share.

- QTest: QEMU started with `-qtest stdio`, spoken to over its stdin and
  stdout; every answer is awaited with a timeout, so a hung QEMU turns
  into a Fail instead of a hung test;
- Ctl / counters(): the model's control socket;
- read_report(): the model's exit report;
- Results: PASS:/FAIL:/XFAIL:/XPASS: lines in the project's format;
- model_env(), base_argv(), wait_device_reset(), find_slot(): the start
  of a QEMU run under the model.
"""
import os
import select
import socket
import subprocess
import time

# no qtest command takes long: a second is plenty, half a minute is a hang
CMD_TIMEOUT = 30.0


class Fail(Exception):
    pass


class QTest:
    def __init__(self, argv, env, log, pass_fds=(), timeout=CMD_TIMEOUT):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=log, env=env, pass_fds=pass_fds)
        self.timeout = timeout
        self.buf = b""

    def _readline(self, what):
        fd = self.p.stdout.fileno()
        end = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise Fail("no qtest answer to '%s' within %ds" % (what, self.timeout))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return ""
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace") + "\n"

    def cmd(self, line):
        try:
            self.p.stdin.write((line + "\n").encode())
            self.p.stdin.flush()
        except OSError:
            raise Fail("QEMU closed qtest while sending '%s'" % line)
        while True:
            r = self._readline(line)
            if not r:
                raise Fail("QEMU closed qtest while waiting for '%s'" % line)
            if r.startswith("IRQ"):
                continue            # asynchronous irq notifications
            r = r.strip()
            if not r.startswith("OK"):
                raise Fail("qtest '%s' -> '%s'" % (line, r))
            return r

    def alive(self):
        return self.p.poll() is None

    def readl(self, a):
        return int(self.cmd("readl 0x%x" % a).split()[1], 16)

    def readq(self, a):
        return int(self.cmd("readq 0x%x" % a).split()[1], 16)

    def writel(self, a, v):
        self.cmd("writel 0x%x 0x%x" % (a, v))

    def writeq(self, a, v):
        self.cmd("writeq 0x%x 0x%x" % (a, v))

    def outl(self, port, v):
        self.cmd("outl 0x%x 0x%x" % (port, v))

    def inl(self, port):
        return int(self.cmd("inl 0x%x" % port).split()[1], 16)

    def cfg_read(self, dev, off, bus=0, fn=0):
        self.outl(0xCF8, 0x80000000 | (bus << 16) | (dev << 11) | (fn << 8) | (off & 0xFC))
        return self.inl(0xCFC)

    def cfg_write(self, dev, off, v, bus=0, fn=0):
        self.outl(0xCF8, 0x80000000 | (bus << 16) | (dev << 11) | (fn << 8) | (off & 0xFC))
        self.outl(0xCFC, v)

    def write_mem(self, a, data):
        self.cmd("write 0x%x 0x%x 0x%s" % (a, len(data), data.hex()))

    def read_mem(self, a, n):
        return bytes.fromhex(self.cmd("read 0x%x 0x%x" % (a, n)).split()[1][2:])

    def quit(self):
        # like libqtest: SIGTERM asks QEMU for an orderly shutdown
        self.p.terminate()
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            return self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


class Ctl:
    def __init__(self, path):
        for _ in range(400):
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.settimeout(CMD_TIMEOUT)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                time.sleep(0.05)
        else:
            raise Fail("no control socket at %s" % path)
        self.f = self.s.makefile("rw")

    def counters(self):
        self.f.write("counters\n")
        self.f.flush()
        out = {}
        for line in self.f:
            line = line.strip()
            if line == "end":
                return out
            k, _, v = line.partition("=")
            out[k] = v
        raise Fail("control socket closed")


def counters(path, deadline=20.0):
    """Counters from the control socket. A wrapper process that loaded the
    library before exec'ing QEMU may have owned the socket for a moment:
    retry on a refused or reset connection."""
    end = time.time() + deadline
    while True:
        try:
            c = Ctl(path)
            try:
                return c.counters()
            finally:
                c.s.close()
        except (OSError, Fail):
            if time.time() > end:
                raise Fail("control socket %s unusable" % path)
            time.sleep(0.05)


def read_report(path):
    out, leaks = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("leak "):
                leaks.append(line)
            elif "=" in line:
                k, _, v = line.partition("=")
                out[k] = v
    return out, leaks


class Results:
    """One PASS:/FAIL: line per check, printed as it happens."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.results = []

    def check(self, name, ok, why="", xfail=None):
        if xfail:
            self.results.append((name, not ok, why))
            print(("XFAIL: %s/%s: %s" % (self.prefix, name, xfail)) if not ok else
                  ("XPASS: %s/%s" % (self.prefix, name)), flush=True)
            return ok
        self.results.append((name, ok, why))
        print(("PASS: %s/%s" % (self.prefix, name)) if ok else
              ("FAIL: %s/%s: %s" % (self.prefix, name, why)), flush=True)
        return ok

    def status(self):
        return 0 if all(ok for _, ok, _ in self.results) else 1

    def quit_and_check(self, q, log, report, where):
        """Quit QEMU, check its exit status and the model's exit report
        (nothing leaked); returns the exit status of the driver."""
        rc = q.quit()
        log.close()
        self.check("qemu-exit", rc == 0, "exit status %s (see %s)" % (rc, where))
        if os.path.exists(report):
            r, leaks = read_report(report)
            self.check("exit-report-no-leaks", r.get("leaks") == "0" and not leaks,
                       "leaks=%s %s" % (r.get("leaks"), " ".join(leaks)))
        else:
            self.check("exit-report-no-leaks", False, "no report written")
        return self.status()


def model_env(work, lib, **extra):
    """The environment of a preloaded QEMU, with fresh control socket and
    report paths in WORK. Returns (env, sysfs, ctl, report)."""
    os.makedirs(work, exist_ok=True)
    sysfs = os.path.join(work, "sysfs")
    ctl = os.path.join(work, "ctl.sock")
    rep = os.path.join(work, "report")
    for p in (ctl, rep):
        if os.path.exists(p):
            os.unlink(p)
    env = dict(os.environ)
    env.update(LD_PRELOAD=lib, VFIO_MODEL_SYSFS=sysfs, VFIO_MODEL_CONTROL=ctl,
               VFIO_MODEL_REPORT=rep)
    env.update(extra)
    return env, sysfs, ctl, rep


def base_argv(qemu, datadirs, machine="q35"):
    argv = [qemu]
    for d in datadirs:
        argv += ["-L", d]
    # -S: no vCPU may run. Debian's QEMU 10.0 lacks the qtest accelerator
    # and falls back to TCG, whose vCPU would run SeaBIOS and program the
    # PCI devices concurrently with the driver.
    argv += ["-qtest", "stdio", "-qtest-log", "/dev/null", "-machine", machine,
             "-nodefaults", "-display", "none", "-m", "128M", "-S"]
    return argv


def wait_device_reset(q, ctl, deadline=20.0):
    """QEMU can serve qtest input before its initial system reset (the
    main context is iterated during machine init): wait until the model
    has seen the reset (VFIO_DEVICE_RESET from vfio_pci_reset), otherwise
    the reset would undo the programming that follows."""
    end = time.time() + deadline
    while True:
        c0 = counters(ctl)
        if int(c0.get("device_resets", 0)) >= 1:
            return c0
        if time.time() > end or q.p.poll() is not None:
            raise Fail("QEMU did not reset the device (device_resets=%s)" %
                       c0.get("device_resets"))
        time.sleep(0.05)


def find_slot(q, ident=0x11E81234):
    """(slot, seen): the first slot on bus 0 whose vendor/device is IDENT."""
    seen = []
    for s in range(32):
        v = q.cfg_read(s, 0)
        seen.append("%d:%08x" % (s, v))
        if v == ident:
            return s, seen
    return None, seen
