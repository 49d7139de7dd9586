/*
 * A buggy VMM on demand: LD_PRELOAD into the nested lab's inner QEMU (in
 * L1), it breaks some of the VFIO calls QEMU makes, the way a VMM bug
 * would, and logs each to $VMM_FAULT_LOG:
 *
 *   drop_map   IOVA 0x205000: MAP_DMA not issued, success returned (the
 *              guest MAP is never propagated to the host IOMMU);
 *   bad_hva    IOVA 0x206000: MAP_DMA issued with vaddr + 0x1000 (the host
 *              maps the wrong page: HVA != the memslot's for the GPA);
 *   drop_unmap IOVA 0x207000: UNMAP_DMA not issued, success returned with
 *              the full size (the guest UNMAP is never propagated);
 *   hide_iova_ranges (logged without an IOVA): VFIO_IOMMU_GET_INFO's
 *              IOVA-ranges capability is removed from QEMU's copy of the
 *              answer after the kernel wrote it (the host's limits never
 *              reach the guest's virtio-iommu; vfio-trace's probe at the
 *              ioctl's exit still sees the kernel's real answer). With the
 *              fault pass's wider `aw-bits` on the inner virtio-iommu, L2
 *              believes it may map IOVAs the host IOMMU cannot;
 *   wide_map   IOVA of L2's map beyond the hidden ranges (the exerciser's
 *              fault_guest_iova_beyond_host at 1 << 40): not injected but
 *              the consequence, logged when the kernel refuses the MAP_DMA
 *              QEMU forwards for it (EINVAL: beyond the last valid IOVA).
 *
 * 0x205000-0x207000 are 4 KiB pages of the exerciser's second buffer
 * (0x200000) that edu's DMA does not touch. Built by the xtask with the
 * machine's gcc: the inner QEMU runs from the machine's own root
 * filesystem (same glibc).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

#define DROP_MAP 0x205000ULL
#define BAD_HVA 0x206000ULL
#define DROP_UNMAP 0x207000ULL
#define PAGE 0x1000ULL

static int (*real_ioctl)(int, unsigned long, ...);
/* The last valid IOVA of the ranges hidden from QEMU (0: none hidden). */
static unsigned long long hidden_last;

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

/*
 * Unlinks the IOVA-ranges capability from a GET_INFO answer of `size`
 * bytes (the caller's buffer); remembers the ranges' last IOVA.
 */
static void hide_iova_ranges(struct vfio_iommu_type1_info *info, unsigned int size)
{
	if (!(info->flags & VFIO_IOMMU_INFO_CAPS) || info->argsz > size)
		return;
	__u32 *link = &info->cap_offset;
	unsigned int hops = 0;
	while (*link && hops++ < 16) {
		unsigned int off = *link;
		if (off < sizeof(*info) || off + sizeof(struct vfio_info_cap_header) > size)
			return;
		struct vfio_info_cap_header *h = (void *)((char *)info + off);
		if (h->id != VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			link = &h->next;
			continue;
		}
		struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;
		unsigned long long last = 0;
		if (off + sizeof(*r) <= size)
			for (__u32 i = 0; i < r->nr_iovas &&
			     off + sizeof(*r) + (i + 1) * sizeof(r->iova_ranges[0]) <= size; i++)
				if (r->iova_ranges[i].end > last)
					last = r->iova_ranges[i].end;
		*link = h->next;
		if (!info->cap_offset)
			info->flags &= ~VFIO_IOMMU_INFO_CAPS;
		if (last && (!hidden_last || last < hidden_last))
			hidden_last = last;
		const char *path = getenv("VMM_FAULT_LOG");
		FILE *f = path ? fopen(path, "a") : NULL;
		if (f) {
			fprintf(f, "hide_iova_ranges last=0x%llx\n", last);
			fclose(f);
		}
		return;
	}
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (!real_ioctl)
		real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	if (req == VFIO_IOMMU_GET_INFO && arg) {
		struct vfio_iommu_type1_info *info = arg;
		unsigned int size = info->argsz;
		int ret = real_ioctl(fd, req, arg);
		if (ret == 0 && size >= sizeof(*info))
			hide_iova_ranges(info, size);
		return ret;
	}
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
		int ret = real_ioctl(fd, req, arg);
		if (ret < 0 && hidden_last && m->size && m->iova + m->size - 1 > hidden_last) {
			int e = errno;
			note("wide_map", m->iova, m->size, (unsigned long long)e);
			errno = e;
		}
		return ret;
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
