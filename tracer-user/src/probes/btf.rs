//! Struct offsets and enum values from the running kernel's BTF
//! (/sys/kernel/btf/vmlinux, and /sys/kernel/btf/<module> split on it).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use btf_rs::{Btf, Type};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Loads vmlinux BTF.
pub fn vmlinux() -> Result<Btf> {
    Btf::from_file(VMLINUX).map_err(|e| anyhow!("reading {VMLINUX}: {e}"))
}

/// Loads a module's split BTF on top of `base`.
pub fn module(base: &Btf, name: &str) -> Result<Btf> {
    let path = Path::new("/sys/kernel/btf").join(name);
    Btf::from_split_file(&path, base).map_err(|e| anyhow!("reading {}: {e}", path.display()))
}

/// Byte offset of `path` (e.g. `["kobj", "name"]`) inside `struct name`,
/// descending through embedded structs and anonymous unions.
pub fn offset(btf: &Btf, name: &str, path: &[&str]) -> Result<u32> {
    let bits = bit_offset(btf, name, path)?;
    if !bits.is_multiple_of(8) {
        bail!("struct {name}.{} is a bitfield", path.join("."));
    }
    Ok(bits / 8)
}

/// Bit offset of `path` inside `struct name` (bitfields included: for a
/// one-bit flag such as `msi_desc.pci.msi_attrib.can_mask`).
pub fn bit_offset(btf: &Btf, name: &str, path: &[&str]) -> Result<u32> {
    let mut ty = find_struct(btf, name)?;
    let mut bits = 0u32;
    for (i, field) in path.iter().enumerate() {
        let (off, member_ty) = member(btf, &ty, field)
            .with_context(|| format!("struct {name}: no field {}", path[..=i].join(".")))?;
        bits += off;
        ty = member_ty;
    }
    Ok(bits)
}

/// Value of enumerator `item` of `enum name`.
pub fn enum_value(btf: &Btf, name: &str, item: &str) -> Result<u32> {
    for t in btf
        .resolve_types_by_name(name)
        .map_err(|e| anyhow!("enum {name}: {e}"))?
    {
        if let Type::Enum(e) = t {
            for m in &e.members {
                if btf.resolve_name(m).ok().as_deref() == Some(item) {
                    return Ok(m.val());
                }
            }
        }
    }
    bail!("enum {name} has no {item}")
}

fn find_struct(btf: &Btf, name: &str) -> Result<Type> {
    btf.resolve_types_by_name(name)
        .map_err(|e| anyhow!("struct {name}: {e}"))?
        .into_iter()
        .find(|t| matches!(t, Type::Struct(s) if !s.members.is_empty()))
        .ok_or_else(|| anyhow!("struct {name} not in BTF"))
}

/// Strips typedefs and qualifiers.
fn concrete(btf: &Btf, mut t: Type) -> Result<Type> {
    for _ in 0..16 {
        t = match &t {
            Type::Typedef(x) => btf.resolve_chained_type(x),
            Type::Const(x) => btf.resolve_chained_type(x),
            Type::Volatile(x) => btf.resolve_chained_type(x),
            Type::Restrict(x) => btf.resolve_chained_type(x),
            Type::TypeTag(x) => btf.resolve_chained_type(x),
            _ => return Ok(t),
        }
        .map_err(|e| anyhow!("{e}"))?;
    }
    bail!("type chain too deep")
}

/// Finds `field` in a struct/union, looking into anonymous members; returns
/// its bit offset and type.
fn member(btf: &Btf, ty: &Type, field: &str) -> Result<(u32, Type)> {
    let members = match concrete(btf, ty.clone())? {
        Type::Struct(s) => s.members,
        Type::Union(u) => u.members,
        other => bail!("{} is not a struct or union", other.name()),
    };
    for m in &members {
        let name = btf.resolve_name(m).unwrap_or_default();
        let mty = btf.resolve_chained_type(m).map_err(|e| anyhow!("{e}"))?;
        if name == field {
            return Ok((m.bit_offset(), mty));
        }
        if name.is_empty() {
            if let Ok((off, t)) = member(btf, &mty, field) {
                return Ok((m.bit_offset() + off, t));
            }
        }
    }
    bail!("no field {field}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads this machine's own BTF: the offsets vfio-trace needs from
    /// vmlinux must resolve on any kernel with BTF.
    #[test]
    fn vmlinux_offsets_resolve_on_this_kernel() {
        if !Path::new(VMLINUX).exists() {
            eprintln!("SKIPPED: no {VMLINUX}");
            return;
        }
        let btf = vmlinux().unwrap();
        // struct device embeds kobj; kobject.name is a pointer.
        let name = offset(&btf, "device", &["kobj", "name"]).unwrap();
        assert_eq!(
            name,
            offset(&btf, "device", &["kobj"]).unwrap()
                + offset(&btf, "kobject", &["name"]).unwrap()
        );
        // struct msi_msg: address_lo/hi/data sit in anonymous unions.
        assert_eq!(offset(&btf, "msi_msg", &["address_lo"]).unwrap(), 0);
        assert_eq!(offset(&btf, "msi_msg", &["address_hi"]).unwrap(), 4);
        assert_eq!(offset(&btf, "msi_msg", &["data"]).unwrap(), 8);
        assert!(offset(&btf, "msi_desc", &["dev"]).is_ok());
        assert!(offset(&btf, "msi_desc", &["msi_index"]).is_ok());
        assert!(offset(&btf, "pci_dev", &["dev"]).unwrap() > 0);
        assert!(offset(&btf, "iommu_resv_region", &["length"]).is_ok());
        assert!(enum_value(&btf, "iommu_resv_type", "IOMMU_RESV_SW_MSI").is_ok());
        // The mask probes' fields: pointers and ints, and one-bit flags.
        assert!(offset(&btf, "msi_desc", &["irq"]).is_ok());
        assert!(offset(&btf, "irq_data", &["common"]).is_ok());
        assert!(offset(&btf, "irq_common_data", &["msi_desc"]).is_ok());
        let attrib = offset(&btf, "msi_desc", &["pci", "msi_attrib"]).unwrap() * 8;
        for flag in ["is_msix", "can_mask", "is_virtual"] {
            let b = bit_offset(&btf, "msi_desc", &["pci", "msi_attrib", flag]).unwrap();
            assert!((attrib..attrib + 32).contains(&b), "{flag} at bit {b}");
        }
        assert!(offset(&btf, "msi_desc", &["pci", "msi_attrib", "can_mask"]).is_err());
        assert!(offset(&btf, "device", &["no_such_field"]).is_err());
        assert!(offset(&btf, "no_such_struct_xyz", &["a"]).is_err());
    }
}
