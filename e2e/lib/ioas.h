/*
 * iommufd IOAS helpers shared by the programs that drive the uAPI by
 * hand (e2e/uapi/uapi.c, bench/floor.c).  Header-only; build with the
 * 6.12 uAPI headers (e2e/lib/headers).
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */
#ifndef E2E_IOAS_H
#define E2E_IOAS_H

#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/iommufd.h>

/* IOMMU_IOAS_MAP of [va, va + len) at exactly iova, readable and
 * writeable: 0, or the errno. */
static inline int ioas_map_fixed(int iommufd, uint32_t ioas, void *va,
                                 uint64_t len, uint64_t iova)
{
    struct iommu_ioas_map m = {
        .size = sizeof(m),
        .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                 IOMMU_IOAS_MAP_WRITEABLE,
        .ioas_id = ioas,
        .user_va = (uintptr_t)va,
        .length = len,
        .iova = iova,
    };

    return ioctl(iommufd, IOMMU_IOAS_MAP, &m) ? errno : 0;
}

#endif
