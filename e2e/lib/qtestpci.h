/*
 * PCI configuration space over the qtest protocol (configuration
 * mechanism #1: the address to 0xcf8, the data through 0xcfc), for the
 * e2e programs that play the guest of a QEMU (qdrv, vnet, lvq).
 *
 * The program defines, before including this header, the qtest command
 * it sends everything through (a function or a macro):
 *
 *     char *cmd(const char *fmt, ...);
 *
 * which returns the text after "OK" and does not return on a failure
 * (each program reports that in its own way; l2qemu.h has one).
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#ifndef E2E_QTESTPCI_H
#define E2E_QTESTPCI_H

#include <stdint.h>
#include <stdlib.h>

static inline uint32_t pci_cfg_addr(unsigned bus, unsigned slot, unsigned reg)
{
    return 0x80000000u | (bus << 16) | (slot << 11) | (reg & 0xfc);
}

static inline uint32_t pci_read32(unsigned bus, unsigned slot, unsigned reg)
{
    cmd("outl 0xcf8 0x%x", pci_cfg_addr(bus, slot, reg));
    return (uint32_t)strtoull(cmd("inl 0xcfc"), NULL, 0);
}

static inline uint16_t pci_read16(unsigned bus, unsigned slot, unsigned reg)
{
    return (uint16_t)(pci_read32(bus, slot, reg) >> ((reg & 2) * 8));
}

static inline uint8_t pci_read8(unsigned bus, unsigned slot, unsigned reg)
{
    return (uint8_t)(pci_read32(bus, slot, reg) >> (8 * (reg & 3)));
}

static inline void pci_write32(unsigned bus, unsigned slot, unsigned reg,
                               uint32_t v)
{
    cmd("outl 0xcf8 0x%x", pci_cfg_addr(bus, slot, reg));
    cmd("outl 0xcfc 0x%x", v);
}

static inline void pci_write16(unsigned bus, unsigned slot, unsigned reg,
                               uint16_t v)
{
    cmd("outl 0xcf8 0x%x", pci_cfg_addr(bus, slot, reg));
    cmd("outw 0x%x 0x%x", 0xcfc + (reg & 2), v);
}

/* Command register: memory space + bus master on (the rest kept). */
static inline void pci_enable_mem_master(unsigned bus, unsigned slot)
{
    uint32_t cmdreg = pci_read32(bus, slot, 0x04);

    pci_write32(bus, slot, 0x04, (cmdreg & 0xffff) | 0x6);
}

/* The capability CAP of the device at BUS:SLOT.0 (0 if absent). */
static inline unsigned pci_find_cap(unsigned bus, unsigned slot, unsigned cap)
{
    unsigned pos, guard = 0;

    if (!(pci_read32(bus, slot, 0x04) >> 16 & 0x10))
        return 0;
    pos = pci_read32(bus, slot, 0x34) & 0xfc;
    while (pos && guard++ < 48) {
        uint32_t v = pci_read32(bus, slot, pos);

        if ((v & 0xff) == cap)
            return pos;
        pos = (v >> 8) & 0xfc;
    }
    return 0;
}

#endif
