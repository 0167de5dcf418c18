#!/usr/bin/env python3
"""qemu-dma: run a QEMU binary under the vfio-model and drive a DMA round
trip through the model edu device with the qtest protocol.

  qemu-dma.py --qemu BIN --lib LIB --mode iommufd|legacy --name PREFIX --work DIR

The driver speaks the qtest protocol on QEMU's stdio: it finds the device
by scanning PCI config space through 0xcf8/0xcfc, programs BAR0 and the
command register (memory + bus master), writes a pattern to guest RAM,
runs the edu DMA engine RAM -> device -> RAM and checks the bytes with
qtest reads. It checks the model's counters over the control socket while
QEMU runs and the exit report after QEMU has quit. Prints PASS:/FAIL:
lines; exit status 1 if any FAIL.
"""
import argparse
import os
import subprocess
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
from qtestlib import (Fail, QTest, Results, base_argv, counters, find_slot, model_env,
                      read_report, wait_device_reset)

BAR0 = 0xC0000000
RAM_SRC = 0x00100000
RAM_DST = 0x00200000
EDU_BUF = 0x40000
LEN = 2048


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--mode", choices=["iommufd", "iommufd-fd", "legacy"], required=True,
                    help="iommufd-fd: libvirt style, the driver (not preloaded) creates the "
                         "/dev/iommu and cdev fds as named memfds and QEMU inherits them")
    ap.add_argument("--name", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--datadir", action="append", default=[])
    ap.add_argument("--inject", help="VFIO_MODEL_FAIL spec: QEMU must fail to start, cleanly")
    ap.add_argument("--xfail-unwind", metavar="REASON",
                    help="with --inject: QEMU is known to leave fds open on this path")
    a = ap.parse_args()

    res = Results(a.name)
    check = res.check

    env, sysfs, ctl, rep = model_env(a.work, a.lib)
    dev = "vfio-pci,sysfsdev=%s/devices/0000:00:03.0" % sysfs
    argv = base_argv(a.qemu, a.datadir)
    pass_fds = ()
    if a.mode == "iommufd":
        argv += ["-object", "iommufd,id=fd0"]
        dev += ",iommufd=fd0"
    elif a.mode == "iommufd-fd":
        ifd = os.memfd_create("vfio-model:iommu", 0)
        cfd = os.memfd_create("vfio-model:cdev:vfio0", 0)
        pass_fds = (ifd, cfd)
        argv += ["-object", "iommufd,id=fd0,fd=%d" % ifd]
        dev = "vfio-pci,fd=%d,iommufd=fd0" % cfd
    argv += ["-device", dev]
    log = open(os.path.join(a.work, "qemu.log"), "w")
    if a.inject:
        env["VFIO_MODEL_FAIL"] = a.inject
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=log, env=env)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        log.close()
        err = open(os.path.join(a.work, "qemu.log")).read()
        check("startup-fails", rc not in (0, -9) and "vfio" in err,
              "exit status %s, stderr: %s" % (rc, err.strip()[-200:]))
        r, leaks = read_report(rep) if os.path.exists(rep) else ({}, ["no report"])
        check("fault-injected", r.get("faults_injected") == "1",
              "faults_injected=%s" % r.get("faults_injected"))
        check("no-leaks", r.get("leaks") == "0" and not leaks,
              "leaks=%s %s" % (r.get("leaks"), " ".join(leaks)))
        check("unwind-closes-fds", r.get("open_files_at_exit") == "0",
              "open_files_at_exit=%s" % r.get("open_files_at_exit"), xfail=a.xfail_unwind)
        return res.status()
    q = QTest(argv, env, log, pass_fds)
    for fd in pass_fds:
        os.close(fd)
    try:
        wait_device_reset(q, ctl)
        slot, seen = find_slot(q)
        check("device-visible", slot is not None, "no 1234:11e8 on bus 0 (%s)" % " ".join(seen[:6]))
        if slot is None:
            raise Fail("no device")
        q.cfg_write(slot, 0x10, BAR0)
        q.cfg_write(slot, 0x04, 0x0006)         # memory + bus master
        check("bar0-programmed", q.cfg_read(slot, 0x10) & ~0xF == BAR0, "BAR0 readback")
        ident = q.readl(BAR0)
        check("edu-ident", ident == 0x010000ED, "ident 0x%x" % ident)
        q.writel(BAR0 + 4, 0x12345678)
        live = q.readl(BAR0 + 4)
        check("edu-liveness", live == 0xEDCBA987, "liveness 0x%x" % live)

        pattern = bytes((i * 37 + 11) & 0xFF for i in range(LEN))
        q.write_mem(RAM_SRC, pattern)
        q.write_mem(RAM_DST, bytes(LEN))
        q.writeq(BAR0 + 0x80, RAM_SRC)
        q.writeq(BAR0 + 0x88, EDU_BUF)
        q.writeq(BAR0 + 0x90, LEN)
        q.writeq(BAR0 + 0x98, 1)                # RAM -> device
        q.writeq(BAR0 + 0x80, EDU_BUF)
        q.writeq(BAR0 + 0x88, RAM_DST)
        q.writeq(BAR0 + 0x98, 3)                # device -> RAM
        done = q.readl(BAR0 + 0x98) & 1 == 0
        got = q.read_mem(RAM_DST, LEN)
        check("dma-round-trip", done and got == pattern,
              "bytes differ" if done else "DMA still running")

        c = counters(ctl)
        check("dma-counted", c.get("dma_ops") == "2" and c.get("dma_faults") == "0",
              "dma_ops=%s dma_faults=%s" % (c.get("dma_ops"), c.get("dma_faults")))
        if a.mode == "iommufd-fd":
            check("fds-adopted", c.get("adopted_fds") == "2", "adopted_fds=%s" % c.get("adopted_fds"))
        if a.mode.startswith("iommufd"):
            ok = (c.get("ioas") == "1" and c.get("hwpt") == "1" and
                  c.get("devices_bound") == "1" and c.get("devices_attached") == "1" and
                  int(c.get("ioas_mappings", 0)) > 0 and int(c.get("pinned_pages", 0)) >= 32768)
            check("iommufd-objects", ok, "ioas=%s hwpt=%s bound=%s attached=%s mappings=%s pinned=%s" %
                  tuple(c.get(k) for k in ("ioas", "hwpt", "devices_bound", "devices_attached",
                                            "ioas_mappings", "pinned_pages")))
        else:
            ok = (c.get("containers_iommu_set") == "1" and c.get("groups_in_container") == "1" and
                  int(c.get("type1_mappings", 0)) > 0 and int(c.get("type1_pinned_pages", 0)) >= 32768)
            check("type1-objects", ok, "containers=%s groups=%s mappings=%s pinned=%s" %
                  tuple(c.get(k) for k in ("containers_iommu_set", "groups_in_container",
                                            "type1_mappings", "type1_pinned_pages")))
        # an IOVA above guest RAM (128 MiB) is not mapped: the model faults
        q.writeq(BAR0 + 0x80, 0x0F000000)
        q.writeq(BAR0 + 0x88, EDU_BUF)
        q.writeq(BAR0 + 0x98, 1)
        c2 = counters(ctl)
        check("dma-fault-unmapped", c2.get("dma_faults") == "1", "dma_faults=%s" % c2.get("dma_faults"))
        with open(os.path.join(a.work, "counters"), "w") as f:
            for k, v in sorted(c2.items()):
                f.write("%s=%s\n" % (k, v))
    except Fail as e:
        check("qtest", False, str(e))
    return res.quit_and_check(q, log, rep, "%s/qemu.log" % a.work)


if __name__ == "__main__":
    sys.exit(main())
