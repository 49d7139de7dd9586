/*
 * A buggy VMM on demand: LD_PRELOAD into the nested lab's inner QEMU (in
 * L1), it breaks three of the VFIO calls QEMU makes to mirror L2's
 * virtio-iommu mappings, the way a VMM bug would, and logs each to
 * $VMM_FAULT_LOG:
 *
 *   drop_map   IOVA 0x205000: MAP_DMA not issued, success returned (the
 *              guest MAP is never propagated to the host IOMMU);
 *   bad_hva    IOVA 0x206000: MAP_DMA issued with vaddr + 0x1000 (the host
 *              maps the wrong page: HVA != the memslot's for the GPA);
 *   drop_unmap IOVA 0x207000: UNMAP_DMA not issued, success returned with
 *              the full size (the guest UNMAP is never propagated).
 *
 * These are 4 KiB pages of the exerciser's second buffer (0x200000) that
 * edu's DMA does not touch. Built by the xtask with the machine's gcc: the
 * inner QEMU runs from the machine's own root filesystem (same glibc).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

#define DROP_MAP 0x205000ULL
#define BAD_HVA 0x206000ULL
#define DROP_UNMAP 0x207000ULL
#define PAGE 0x1000ULL

static int (*real_ioctl)(int, unsigned long, ...);

static void note(const char *what, unsigned long long iova, unsigned long long a,
                 unsigned long long b)
{
	const char *path = getenv("VMM_FAULT_LOG");
	FILE *f = path ? fopen(path, "a") : NULL;
	if (!f)
		return;
	fprintf(f, "%s iova=0x%llx 0x%llx 0x%llx\n", what, iova, a, b);
	fclose(f);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (!real_ioctl)
		real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	if (req == VFIO_IOMMU_MAP_DMA && arg) {
		struct vfio_iommu_type1_dma_map *m = arg;
		if (m->iova == DROP_MAP && m->size == PAGE) {
			note("drop_map", m->iova, m->vaddr, m->size);
			return 0;
		}
		if (m->iova == BAD_HVA && m->size == PAGE) {
			struct vfio_iommu_type1_dma_map bad = *m;
			bad.vaddr += PAGE;
			note("bad_hva", m->iova, m->vaddr, bad.vaddr);
			return real_ioctl(fd, req, &bad);
		}
	}
	if (req == VFIO_IOMMU_UNMAP_DMA && arg) {
		struct vfio_iommu_type1_dma_unmap *u = arg;
		if (u->iova == DROP_UNMAP && u->size == PAGE) {
			note("drop_unmap", u->iova, u->size, 0);
			return 0;
		}
	}
	return real_ioctl(fd, req, arg);
}
