// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-trace-fault: kernel bugs on demand, for the lab's fault pass.
 *
 * Some rules exist for mistakes only kernel code can make (a correct VFIO
 * refuses the map, the kernel alone programs MSI messages). This module
 * makes them through the same kernel interfaces a buggy driver would, so
 * the probes see real calls. Commands are written to /proc/vfio-trace-fault
 * by the exerciser (the write runs in its process); each undoes itself:
 *
 *   iommu_map BDF IOVA
 *       maps a scratch page at IOVA in the device's current IOMMU domain
 *       (only a VFIO-owned, unmanaged one), then unmaps it;
 *   msi_addr BDF VECTOR ADDRESS
 *       programs MSI/MSI-X vector VECTOR of the device with ADDRESS (same
 *       data), then restores the cached message;
 *   mask_lie BDF VECTOR
 *       marks the vector's interrupt masked in the irq core's state without
 *       masking it in the device (a lost mask): the next free_irq() then
 *       skips the irq chip's mask and the vector is torn down unmasked.
 *
 * With hw_msi_window=ADDR (module parameter), the virtio-iommu driver
 * also reports a hardware MSI window [ADDR, ADDR + 1 MiB) for every device
 * (a kretprobe appends it to viommu_get_resv_regions' list): a host whose
 * IOMMU bypasses a second doorbell range, which a VMM must tell its guest
 * about as an MSI region.
 *
 * Every action is logged as "vfio-trace-fault: ..." (the lab's ground
 * truth). A write returns its length, or the error of the failed step.
 * Built by the xtask against Debian's kernel headers of the lab kernel.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/pci.h>
#include <linux/iommu.h>
#include <linux/msi.h>
#include <linux/uaccess.h>
#include <linux/gfp.h>
#include <linux/kprobes.h>
#include <linux/irq.h>
#include <linux/version.h>

#define PFX "vfio-trace-fault: "

static struct pci_dev *find_dev(const char *bdf)
{
	unsigned int dom, bus, slot, fn;

	if (sscanf(bdf, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4)
		return NULL;
	return pci_get_domain_bus_and_slot(dom, bus, PCI_DEVFN(slot, fn));
}

static int do_iommu_map(struct pci_dev *pdev, u64 iova)
{
	struct iommu_domain *d = iommu_get_domain_for_dev(&pdev->dev);
	struct page *page;
	size_t unmapped;
	int ret;

	if (!d || d->type != IOMMU_DOMAIN_UNMANAGED) {
		pr_info(PFX "iommu_map dev=%s: no VFIO-owned domain (type %d)\n",
			pci_name(pdev), d ? (int)d->type : -1);
		return -ENODEV;
	}
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page)
		return -ENOMEM;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	ret = iommu_map(d, iova, page_to_phys(page), PAGE_SIZE,
			IOMMU_READ | IOMMU_WRITE, GFP_KERNEL);
#else
	/* Before 6.3 iommu_map() took no gfp (it allocated GFP_KERNEL). */
	ret = iommu_map(d, iova, page_to_phys(page), PAGE_SIZE,
			IOMMU_READ | IOMMU_WRITE);
#endif
	pr_info(PFX "iommu_map dev=%s domain=%px iova=0x%llx paddr=0x%llx size=0x%lx ret=%d\n",
		pci_name(pdev), d, iova, (u64)page_to_phys(page), PAGE_SIZE, ret);
	if (!ret) {
		unmapped = iommu_unmap(d, iova, PAGE_SIZE);
		pr_info(PFX "iommu_unmap dev=%s iova=0x%llx unmapped=0x%zx\n",
			pci_name(pdev), iova, unmapped);
	}
	__free_page(page);
	return ret;
}

static int do_msi_addr(struct pci_dev *pdev, unsigned int vector, u64 addr)
{
	struct msi_msg old, msg;
	int irq = pci_irq_vector(pdev, vector);

	if (irq < 0) {
		pr_info(PFX "msi_addr dev=%s vector=%u: no irq (%d), MSI not enabled?\n",
			pci_name(pdev), vector, irq);
		return irq;
	}
	get_cached_msi_msg(irq, &old);
	msg = old;
	msg.address_lo = lower_32_bits(addr);
	msg.address_hi = upper_32_bits(addr);
	pci_write_msi_msg(irq, &msg);
	pr_info(PFX "msi_addr dev=%s vector=%u irq=%d address=0x%llx data=0x%x (was 0x%x%08x)\n",
		pci_name(pdev), vector, irq, addr, msg.data, old.address_hi,
		old.address_lo);
	pci_write_msi_msg(irq, &old);
	pr_info(PFX "msi_addr dev=%s vector=%u restored\n", pci_name(pdev), vector);
	return 0;
}

static int do_mask_lie(struct pci_dev *pdev, unsigned int vector)
{
	int irq = pci_irq_vector(pdev, vector);
	struct irq_data *d;

	if (irq < 0)
		return irq;
	d = irq_get_irq_data(irq);
	if (!d)
		return -ENOENT;
	/* irqd_set() is private to the irq core: the lie needs the raw state. */
	ACCESS_PRIVATE(d->common, state_use_accessors) |= IRQD_IRQ_MASKED;
	pr_info(PFX "mask_lie dev=%s vector=%u irq=%d: marked masked, device left unmasked\n",
		pci_name(pdev), vector, irq);
	return 0;
}

static ssize_t fault_write(struct file *f, const char __user *ubuf, size_t len,
			   loff_t *off)
{
	char buf[128], what[16], bdf[32];
	struct pci_dev *pdev;
	unsigned long long a, b;
	int n, ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	n = sscanf(buf, "%15s %31s %llx %llx", what, bdf, &a, &b);
	if (n < 3)
		return -EINVAL;
	pdev = find_dev(bdf);
	if (!pdev) {
		pr_info(PFX "no PCI device %s\n", bdf);
		return -ENODEV;
	}
	if (!strcmp(what, "iommu_map"))
		ret = do_iommu_map(pdev, a);
	else if (!strcmp(what, "msi_addr") && n == 4)
		ret = do_msi_addr(pdev, a, b);
	else if (!strcmp(what, "mask_lie"))
		ret = do_mask_lie(pdev, a);
	else
		ret = -EINVAL;
	pci_dev_put(pdev);
	return ret ? ret : len;
}

static const struct proc_ops fault_ops = {
	.proc_write = fault_write,
};

static unsigned long hw_msi_window;
module_param(hw_msi_window, ulong, 0444);
MODULE_PARM_DESC(hw_msi_window, "report a 1 MiB hardware MSI window here for every virtio-iommu endpoint");
#define HW_MSI_SIZE 0x100000UL

struct resv_call {
	struct list_head *head;
};

static int resv_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	/* viommu_get_resv_regions(struct device *dev, struct list_head *head) */
	((struct resv_call *)ri->data)->head =
		(struct list_head *)regs_get_kernel_argument(regs, 1);
	return 0;
}

static int resv_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct list_head *head = ((struct resv_call *)ri->data)->head;
	struct iommu_resv_region *r;

	r = iommu_alloc_resv_region(hw_msi_window, HW_MSI_SIZE,
				    IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO,
				    IOMMU_RESV_MSI, GFP_ATOMIC);
	if (r)
		list_add_tail(&r->list, head);
	pr_info_ratelimited(PFX "hw_msi_window 0x%lx-0x%lx reported (%s)\n",
			    hw_msi_window, hw_msi_window + HW_MSI_SIZE - 1,
			    r ? "added" : "no memory");
	return 0;
}

static struct kretprobe resv_krp = {
	.kp.symbol_name = "viommu_get_resv_regions",
	.entry_handler = resv_entry,
	.handler = resv_return,
	.data_size = sizeof(struct resv_call),
	.maxactive = 16,
};

static int __init fault_init(void)
{
	int ret;

	if (hw_msi_window) {
		ret = register_kretprobe(&resv_krp);
		if (ret) {
			pr_info(PFX "kretprobe on viommu_get_resv_regions: %d\n", ret);
			return ret;
		}
	}
	if (!proc_create("vfio-trace-fault", 0200, NULL, &fault_ops)) {
		if (hw_msi_window)
			unregister_kretprobe(&resv_krp);
		return -ENOMEM;
	}
	pr_info(PFX "ready (hw_msi_window 0x%lx)\n", hw_msi_window);
	return 0;
}

static void __exit fault_exit(void)
{
	remove_proc_entry("vfio-trace-fault", NULL);
	if (hw_msi_window)
		unregister_kretprobe(&resv_krp);
}

module_init(fault_init);
module_exit(fault_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfio-trace lab: kernel bugs on demand");
