#!/usr/bin/env python3
"""qemu-viommu: a vfio-pci device behind QEMU's emulated Intel VT-d
(intel-iommu, caching-mode=on), driven over the qtest protocol, with the
vfio-model as the host kernel.

  qemu-viommu.py --qemu BIN --lib LIB --mode legacy|iommufd --name PREFIX --work DIR
                 [--datadir DIR]... [--inval auto|register|queued] [--levels auto|3|4]

The driver does what a guest IOMMU driver does, with qtest memory writes
(the tables live in guest RAM) and MMIO to the VT-d registers at
0xfed90000: a root table and a context entry for the edu device at 00:04.0
pointing to a second-level page table whose depth follows CAP.SAGAW, RTADDR
+ SRTP, context-cache and IOTLB invalidation (register based, queued if the
register interface does not answer), then GCMD.TE. With caching mode QEMU
shadows every invalidated guest mapping into the host container (type1) or
IOAS (iommufd), which is what the model device's DMA then goes through:

  1. IOVAs mapped to two guest pages: the edu DMA round trip RAM(IOVA) ->
     device -> RAM(other IOVA) moves the bytes between the guest pages;
  2. the PTEs cleared and invalidated: DMA to those IOVAs faults in the
     model and guest RAM is left alone;
  3. an IOVA inside a reserved hole of the host IOMMU (added with
     VFIO_MODEL_IOVA_HOLES) mapped by the guest: QEMU must survive it; a
     separate result says whether its error names the IOVA;
  4. TE cleared: guest-physical DMA works again;
  5. the model's exit report after QEMU quit: no leak.

Prints PASS:/FAIL: lines (details for humans on stderr); exit status 1 if
any FAIL. Every wait is bounded.
"""
import argparse
import collections
import os
import re
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
from qtestlib import (Fail, QTest, Results, base_argv, counters, find_slot, model_env,
                      wait_device_reset)

# --- the machine ---
SLOT = 4                      # -device vfio-pci,addr=04.0 on bus 0 of q35
DEVFN = SLOT << 3
BUS = 0
BAR0 = 0xC0000000
EDU_BUF = 0x40000
LEN = 2048

# guest physical RAM (128 MiB): data pages and the VT-d structures
RAM_SRC = 0x00100000
RAM_DST = 0x00200000
RAM_HOLE = 0x00300000
ROOT_TABLE = 0x00400000
CONTEXT_TABLE = 0x00401000
PT_POOL = 0x00402000          # second-level page-table pages, allocated upwards
INV_QUEUE = 0x00480000        # queued invalidation: 256 descriptors of 16 bytes
INV_STATUS = 0x00481000       # invalidation wait status word

# IOVAs: above guest RAM (never an identity address) and below 256 MiB
# (the edu DMA engine masks addresses to 28 bits)
IOVA_SRC = 0x0A000000
IOVA_DST = 0x0A001000
HOLE_FIRST, HOLE_LAST = 0x0C000000, 0x0C0FFFFF
IOVA_HOLE = HOLE_FIRST
DEFAULT_HOLE = "0xfee00000-0xfeefffff"      # the model's default (MSI window)

DOMAIN_ID = 1

# --- VT-d registers (offsets from the remapping unit's base) ---
VTD_BASE = 0xFED90000
R_VER, R_CAP, R_ECAP = 0x00, 0x08, 0x10
R_GCMD, R_GSTS, R_RTADDR, R_CCMD, R_FSTS = 0x18, 0x1C, 0x20, 0x28, 0x34
R_IQH, R_IQT, R_IQA = 0x80, 0x88, 0x90

GCMD_TE, GCMD_SRTP, GCMD_QIE, GCMD_IRE, GCMD_CFI = 1 << 31, 1 << 30, 1 << 26, 1 << 25, 1 << 23
GSTS_TES, GSTS_RTPS, GSTS_QIES = 1 << 31, 1 << 30, 1 << 26
# GCMD bits that hold a state (the others are one-shot commands): a write
# to GCMD repeats them from GSTS
GCMD_STATE = GCMD_TE | GCMD_QIE | GCMD_IRE | GCMD_CFI

CAP_CM = 1 << 7               # caching mode
CAP_PSI = 1 << 39             # page-selective IOTLB invalidation
ECAP_QI = 1 << 1

CCMD_ICC = 1 << 63            # invalidate context cache (busy until clear)
CCMD_GLOBAL = 1 << 61
CCMD_CAIG = 3 << 59           # actual granularity, written back
IOTLB_IVT = 1 << 63
IOTLB_GLOBAL = 1 << 60
IOTLB_PAGE = 3 << 60
IOTLB_IAIG = 3 << 57

# queued invalidation descriptors (128-bit)
QI_CC, QI_IOTLB, QI_WAIT = 0x1, 0x2, 0x5
QI_GRAN_GLOBAL, QI_GRAN_PAGE = 1 << 4, 3 << 4
QI_WAIT_SW = 1 << 5

# second-level paging entries
SL_R, SL_W = 1 << 0, 1 << 1
PAGE = 0x1000

# seconds
REG_TIMEOUT = 5.0


def info(msg):
    print("qemu-viommu: %s" % msg, file=sys.stderr, flush=True)


def wait_for(what, fn, timeout=REG_TIMEOUT):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise Fail("timeout (%gs) waiting for %s" % (timeout, what))
        time.sleep(0.01)


class GuestVTd:
    """The guest side of one VT-d remapping unit in legacy (non-scalable)
    mode, one device, one domain."""

    def __init__(self, q, inval="auto", levels="auto"):
        self.q = q
        self.cap = q.readq(VTD_BASE + R_CAP)
        self.ecap = q.readq(VTD_BASE + R_ECAP)
        self.ver = q.readl(VTD_BASE + R_VER)
        self.iotlb_reg = ((self.ecap >> 8) & 0x3FF) * 16    # ECAP.IRO
        sagaw = (self.cap >> 8) & 0x1F
        self.mgaw = ((self.cap >> 16) & 0x3F) + 1
        # SAGAW bit 1: 39-bit AGAW (3 levels), bit 2: 48-bit (4 levels);
        # use the deepest table the unit offers within its MGAW
        offered = [lv for lv, bit, width in ((3, 1, 39), (4, 2, 48))
                   if sagaw & (1 << bit) and width <= max(self.mgaw, 39)]
        if levels != "auto":
            offered = [lv for lv in offered if lv == int(levels)]
        self.levels = max(offered) if offered else None
        self.inval = inval
        self.qi_tail = 0
        self.next_page = PT_POOL
        self.tables = {}          # (table address, index) -> next-level table
        self.top = None

    def describe(self):
        return ("VER=0x%x CAP=0x%x ECAP=0x%x MGAW=%d SAGAW=0x%x CM=%d PSI=%d QI=%d IRO=0x%x "
                "-> %s levels, %s invalidation" %
                (self.ver, self.cap, self.ecap, self.mgaw, (self.cap >> 8) & 0x1F,
                 bool(self.cap & CAP_CM), bool(self.cap & CAP_PSI), bool(self.ecap & ECAP_QI),
                 self.iotlb_reg, self.levels, self.inval))

    # registers
    def r32(self, off):
        return self.q.readl(VTD_BASE + off)

    def r64(self, off):
        return self.q.readq(VTD_BASE + off)

    def w32(self, off, v):
        self.q.writel(VTD_BASE + off, v)

    def w64(self, off, v):
        self.q.writeq(VTD_BASE + off, v)

    def gcmd(self, bit, on, status, what):
        """Set (one-shot or state) or clear a GCMD bit; wait for GSTS."""
        cur = self.r32(R_GSTS) & GCMD_STATE
        self.w32(R_GCMD, (cur | bit) if on else (cur & ~bit))
        wait_for(what, lambda: bool(self.r32(R_GSTS) & status) == on)

    # tables in guest memory
    def alloc_page(self):
        a = self.next_page
        self.next_page += PAGE
        if self.next_page > INV_QUEUE:
            raise Fail("page-table pool exhausted")
        self.q.write_mem(a, bytes(PAGE))
        return a

    def set_root_table(self):
        self.q.write_mem(ROOT_TABLE, bytes(PAGE))
        self.q.write_mem(CONTEXT_TABLE, bytes(PAGE))
        self.top = self.alloc_page()
        # root entry for the bus: context-table pointer | present
        self.q.writeq(ROOT_TABLE + 16 * BUS, CONTEXT_TABLE | 1)
        # context entry for devfn: second-level pointer | TT=0 (untranslated
        # requests, multi-level table) | present; DID and AW in the upper half
        aw = self.levels - 2      # 1: 39-bit AGAW, 2: 48-bit
        self.q.writeq(CONTEXT_TABLE + 16 * DEVFN, self.top | 1)
        self.q.writeq(CONTEXT_TABLE + 16 * DEVFN + 8, (DOMAIN_ID << 8) | aw)
        self.w64(R_RTADDR, ROOT_TABLE)
        self.gcmd(GCMD_SRTP, True, GSTS_RTPS, "GSTS.RTPS after SRTP")

    def pte_addr(self, iova, alloc):
        table = self.top
        for lv in range(self.levels, 1, -1):
            idx = (iova >> (12 + 9 * (lv - 1))) & 0x1FF
            nxt = self.tables.get((table, idx))
            if nxt is None:
                if not alloc:
                    return None
                nxt = self.alloc_page()
                self.tables[(table, idx)] = nxt
                self.q.writeq(table + 8 * idx, nxt | SL_R | SL_W)
            table = nxt
        return table + 8 * ((iova >> 12) & 0x1FF)

    def map(self, iova, gpa, perm=SL_R | SL_W):
        self.q.writeq(self.pte_addr(iova, True), gpa | perm)

    def unmap(self, iova):
        a = self.pte_addr(iova, False)
        if a is not None:
            self.q.writeq(a, 0)

    # invalidation
    def _register(self, off, val, busy, what):
        """Register-based invalidation: None if the unit never completes it."""
        self.w64(off, val)
        end = time.monotonic() + REG_TIMEOUT
        while time.monotonic() < end:
            v = self.r64(off)
            if not v & busy:
                return v
            time.sleep(0.01)
        return None

    def _queued(self, descs, what):
        if not self.r32(R_GSTS) & GSTS_QIES:
            self.w64(R_IQT, 0)
            self.w64(R_IQA, INV_QUEUE)          # 4 KiB queue: 256 descriptors, 128-bit
            self.qi_tail = 0
            self.gcmd(GCMD_QIE, True, GSTS_QIES, "GSTS.QIES")
        token = 0x5A5A0000 | (self.qi_tail & 0xFFFF)
        self.q.writel(INV_STATUS, 0)
        descs = list(descs) + [(QI_WAIT | QI_WAIT_SW | (token << 32), INV_STATUS)]
        for lo, hi in descs:
            a = INV_QUEUE + 16 * self.qi_tail
            self.q.writeq(a, lo)
            self.q.writeq(a + 8, hi)
            self.qi_tail = (self.qi_tail + 1) % 256
        self.w64(R_IQT, self.qi_tail << 4)
        wait_for("%s: invalidation wait status" % what,
                 lambda: self.q.readl(INV_STATUS) == token)
        fsts = self.r32(R_FSTS)
        if fsts & (1 << 4):     # IQE: invalidation queue error
            raise Fail("%s: invalidation queue error, FSTS=0x%x" % (what, fsts))

    def _invalidate(self, reg_off, reg_val, busy, done_mask, qi_desc, what):
        if self.inval in ("auto", "register"):
            v = self._register(reg_off, reg_val, busy, what)
            if v is not None:
                if not v & done_mask:
                    raise Fail("%s: register invalidation not performed (0x%x)" % (what, v))
                return
            if self.inval == "register" or not self.ecap & ECAP_QI:
                raise Fail("%s: register-based invalidation did not complete" % what)
            info("%s: register-based invalidation did not complete, using the queue" % what)
            self.inval = "queued"
        self._queued([qi_desc], what)

    def invalidate_context_global(self):
        self._invalidate(R_CCMD, CCMD_ICC | CCMD_GLOBAL, CCMD_ICC, CCMD_CAIG,
                         (QI_CC | QI_GRAN_GLOBAL, 0), "context-cache global invalidation")

    def invalidate_iotlb_global(self):
        self._invalidate(self.iotlb_reg + 8, IOTLB_IVT | IOTLB_GLOBAL, IOTLB_IVT, IOTLB_IAIG,
                         (QI_IOTLB | QI_GRAN_GLOBAL, 0), "IOTLB global invalidation")

    def invalidate_iotlb_page(self, iova):
        if not self.cap & CAP_PSI:
            self.invalidate_iotlb_global()
            return
        if self.inval in ("auto", "register"):
            self.w64(self.iotlb_reg, iova)      # IVA: address, IH=0, AM=0 (one page)
        self._invalidate(self.iotlb_reg + 8, IOTLB_IVT | IOTLB_PAGE | (DOMAIN_ID << 32),
                         IOTLB_IVT, IOTLB_IAIG,
                         (QI_IOTLB | QI_GRAN_PAGE | (DOMAIN_ID << 16), iova),
                         "IOTLB page invalidation of 0x%x" % iova)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--mode", choices=["iommufd", "legacy"], required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--datadir", action="append", default=[])
    ap.add_argument("--inval", choices=["auto", "register", "queued"], default="auto",
                    help="invalidation interface (auto: register based, the queue if the "
                         "registers do not answer)")
    ap.add_argument("--levels", choices=["auto", "3", "4"], default="auto",
                    help="second-level table depth (auto: the deepest CAP.SAGAW offers)")
    a = ap.parse_args()

    res = Results(a.name)
    check = res.check

    holes = "%s,0x%x-0x%x" % (DEFAULT_HOLE, HOLE_FIRST, HOLE_LAST)
    env, sysfs, ctl, rep = model_env(a.work, a.lib, VFIO_MODEL_IOVA_HOLES=holes)
    argv = base_argv(a.qemu, a.datadir, machine="q35,kernel-irqchip=split")
    # the IOMMU before the device it translates for
    argv += ["-device", "intel-iommu,caching-mode=on,intremap=off"]
    dev = "vfio-pci,sysfsdev=%s/devices/0000:00:03.0,addr=%02x.0" % (sysfs, SLOT)
    if a.mode == "iommufd":
        argv += ["-object", "iommufd,id=fd0"]
        dev += ",iommufd=fd0"
    argv += ["-device", dev]
    logpath = os.path.join(a.work, "qemu.log")
    log = open(logpath, "w")
    info("%s" % " ".join(argv))
    q = QTest(argv, env, log)

    def stderr_text(since=0):
        try:
            with open(logpath, errors="replace") as f:
                f.seek(since)
                return f.read()
        except OSError:
            return ""

    def why_dead():
        """What QEMU said if it has gone."""
        if q.alive():
            return ""
        try:
            rc = q.p.wait(timeout=5)
        except Exception:
            rc = "?"
        lines = [ln for ln in stderr_text().splitlines()
                 if re.search(r"error|abort|assert|outside", ln, re.I)]
        return "; QEMU exited (status %s): %s" % (rc, " | ".join(lines[-3:]) or "no stderr")

    mkey = "ioas_mappings" if a.mode == "iommufd" else "type1_mappings"
    bkey = "ioas_mapped_bytes" if a.mode == "iommufd" else "type1_mapped_bytes"

    def cnt():
        c = counters(ctl)
        return collections.defaultdict(int, {k: int(v) for k, v in c.items()
                                             if v.lstrip("-").isdigit()})

    def dma(src, dst, cmd):
        q.writeq(BAR0 + 0x80, src)
        q.writeq(BAR0 + 0x88, dst)
        q.writeq(BAR0 + 0x90, LEN)
        q.writeq(BAR0 + 0x98, cmd)
        wait_for("edu DMA completion", lambda: q.readl(BAR0 + 0x98) & 1 == 0)

    def round_trip(src, dst):
        """RAM(src) -> edu buffer -> RAM(dst); src/dst are bus addresses."""
        dma(src, EDU_BUF, 1)
        dma(EDU_BUF, dst, 3)

    stage = "startup"
    try:
        wait_device_reset(q, ctl)
        stage = "device-at-04.0"
        slot, seen = find_slot(q)
        check(stage, slot == SLOT, "edu at slot %s, expected %d (%s)" %
              (slot, SLOT, " ".join(seen[:6])))
        if slot != SLOT:
            raise Fail("device not at 00:%02x.0" % SLOT)
        stage = "bar0-programmed"
        q.cfg_write(SLOT, 0x10, BAR0)
        q.cfg_write(SLOT, 0x04, 0x0006)     # memory + bus master
        ident = q.readl(BAR0)
        check(stage, q.cfg_read(SLOT, 0x10) & ~0xF == BAR0 and ident == 0x010000ED,
              "BAR0 readback / ident 0x%x" % ident)

        stage = "vtd-caps"
        vtd = GuestVTd(q, a.inval, a.levels)
        info(vtd.describe())
        ok = vtd.levels is not None and vtd.cap & CAP_CM and vtd.iotlb_reg
        check(stage, bool(ok), vtd.describe())
        if not ok:
            raise Fail("unusable VT-d capabilities")

        stage = "dma-before-te"
        c0 = cnt()
        pattern = bytes((i * 37 + 11) & 0xFF for i in range(LEN))
        q.write_mem(RAM_SRC, pattern)
        q.write_mem(RAM_DST, bytes(LEN))
        round_trip(RAM_SRC, RAM_DST)
        c1 = cnt()
        check(stage, q.read_mem(RAM_DST, LEN) == pattern and c1["dma_faults"] == c0["dma_faults"]
              and c1[mkey] > 0, "bytes differ or faults (%s=%d dma_faults=%d)" %
              (mkey, c1[mkey], c1["dma_faults"]))

        stage = "vtd-root-table"
        vtd.set_root_table()
        check(stage, True)
        stage = "vtd-invalidate-context"
        vtd.invalidate_context_global()
        check(stage, True)
        stage = "vtd-invalidate-iotlb"
        vtd.invalidate_iotlb_global()
        check(stage, True)

        stage = "vtd-translation-enabled"
        vtd.gcmd(GCMD_TE, True, GSTS_TES, "GSTS.TES")
        q.readl(VTD_BASE + R_VER)           # still answering
        check(stage, q.alive(), "QEMU gone")
        c_te = cnt()
        info("after TE: %s=%d %s=%d" % (mkey, c_te[mkey], bkey, c_te[bkey]))

        # nothing is mapped yet: the guest-physical address is no IOVA now
        stage = "dma-gpa-blocked-with-te"
        q.write_mem(RAM_DST, bytes(LEN))
        dma(RAM_SRC, EDU_BUF, 1)
        c2 = cnt()
        check(stage, c2["dma_faults"] == c_te["dma_faults"] + 1,
              "dma_faults %d -> %d" % (c_te["dma_faults"], c2["dma_faults"]))

        stage = "iova-mapped"
        vtd.map(IOVA_SRC, RAM_SRC)
        vtd.map(IOVA_DST, RAM_DST)
        vtd.invalidate_iotlb_page(IOVA_SRC)
        vtd.invalidate_iotlb_page(IOVA_DST)
        c3 = cnt()
        check(stage, c3[mkey] >= c2[mkey] + 1 and c3[bkey] == c2[bkey] + 2 * PAGE,
              "%s %d -> %d, %s %d -> %d (expected +0x%x bytes)" %
              (mkey, c2[mkey], c3[mkey], bkey, c2[bkey], c3[bkey], 2 * PAGE))

        stage = "dma-translated-round-trip"
        pattern = bytes((i * 13 + 5) & 0xFF for i in range(LEN))
        q.write_mem(RAM_SRC, pattern)
        q.write_mem(RAM_DST, bytes(LEN))
        round_trip(IOVA_SRC, IOVA_DST)
        c4 = cnt()
        got = q.read_mem(RAM_DST, LEN)
        check(stage, got == pattern and c4["dma_faults"] == c3["dma_faults"] and
              c4["dma_ops"] == c3["dma_ops"] + 2,
              "%s, dma_ops %d -> %d, dma_faults %d -> %d" %
              ("bytes match" if got == pattern else "bytes differ",
               c3["dma_ops"], c4["dma_ops"], c3["dma_faults"], c4["dma_faults"]))

        stage = "iova-unmapped"
        vtd.unmap(IOVA_SRC)
        vtd.unmap(IOVA_DST)
        vtd.invalidate_iotlb_page(IOVA_SRC)
        vtd.invalidate_iotlb_page(IOVA_DST)
        c5 = cnt()
        check(stage, c5[bkey] == c2[bkey] and c5[mkey] == c2[mkey],
              "%s %d -> %d, %s %d -> %d" % (mkey, c4[mkey], c5[mkey], bkey, c4[bkey], c5[bkey]))

        stage = "dma-unmapped-faults"
        sentinel = b"\xa5" * LEN
        q.write_mem(RAM_DST, sentinel)
        dma(EDU_BUF, IOVA_DST, 3)           # the edu buffer still holds the pattern
        dma(IOVA_SRC, EDU_BUF, 1)
        c6 = cnt()
        check(stage, c6["dma_faults"] == c5["dma_faults"] + 2 and c6["dma_ops"] == c5["dma_ops"],
              "dma_faults %d -> %d, dma_ops %d -> %d" %
              (c5["dma_faults"], c6["dma_faults"], c5["dma_ops"], c6["dma_ops"]))
        stage = "dma-unmapped-no-write"
        check(stage, q.read_mem(RAM_DST, LEN) == sentinel, "guest RAM at 0x%x changed" % RAM_DST)

        # a guest mapping QEMU cannot shadow: the host IOMMU reserves it
        stage = "hole-map-qemu-alive"
        mark = os.path.getsize(logpath)
        vtd.map(IOVA_HOLE, RAM_HOLE)
        vtd.invalidate_iotlb_page(IOVA_HOLE)
        q.readl(VTD_BASE + R_VER)
        check(stage, q.alive(), "QEMU gone")
        said = stderr_text(mark)
        iova_re = re.compile(r"(?<![0-9a-z])0x0*%x(?![0-9a-f])" % IOVA_HOLE, re.I)
        named = [ln for ln in said.splitlines() if iova_re.search(ln)]
        for ln in said.splitlines():
            info("hole mapping, QEMU stderr: %s" % ln)
        if not said.strip():
            info("hole mapping: QEMU printed nothing")
        stage = "hole-error-names-iova"
        check(stage, bool(named), "no stderr line names 0x%x (stderr: %s)" %
              (IOVA_HOLE, " | ".join(said.splitlines()[-3:]) or "nothing"))
        stage = "hole-dma-faults"
        q.write_mem(RAM_HOLE, bytes(LEN))
        c7 = cnt()
        dma(EDU_BUF, IOVA_HOLE, 3)
        c8 = cnt()
        check(stage, c8["dma_faults"] == c7["dma_faults"] + 1 and
              q.read_mem(RAM_HOLE, LEN) == bytes(LEN),
              "dma_faults %d -> %d" % (c7["dma_faults"], c8["dma_faults"]))
        stage = "hole-unmap-qemu-alive"
        vtd.unmap(IOVA_HOLE)
        vtd.invalidate_iotlb_page(IOVA_HOLE)
        q.readl(VTD_BASE + R_VER)
        check(stage, q.alive(), "QEMU gone")

        stage = "vtd-translation-disabled"
        vtd.gcmd(GCMD_TE, False, GSTS_TES, "GSTS.TES clear")
        check(stage, True)

        stage = "dma-after-te-off"
        pattern = bytes((i * 7 + 3) & 0xFF for i in range(LEN))
        q.write_mem(RAM_SRC, pattern)
        q.write_mem(RAM_DST, bytes(LEN))
        c9 = cnt()
        round_trip(RAM_SRC, RAM_DST)
        c10 = cnt()
        got = q.read_mem(RAM_DST, LEN)
        check(stage, got == pattern and c10["dma_faults"] == c9["dma_faults"] and c10[mkey] > 0,
              "%s, dma_faults %d -> %d, %s=%d" %
              ("bytes match" if got == pattern else "bytes differ",
               c9["dma_faults"], c10["dma_faults"], mkey, c10[mkey]))
        with open(os.path.join(a.work, "counters"), "w") as f:
            for k, v in sorted(counters(ctl).items()):
                f.write("%s=%s\n" % (k, v))
    except Exception as e:     # Fail, or a bug here: a FAIL line either way
        done = any(name == stage for name, _, _ in res.results)
        why = str(e) if isinstance(e, Fail) else "%s: %s" % (type(e).__name__, e)
        check("qtest" if done else stage, False, why + why_dead())

    return res.quit_and_check(q, log, rep, logpath)


if __name__ == "__main__":
    sys.exit(main())
