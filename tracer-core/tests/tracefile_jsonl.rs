//! The JSON Lines contract: one golden line per event kind. Field names may
//! be added, never renamed: a change here is a change of the user contract.

use tracer_core::export::to_jsonl_line;
use tracer_core::tracefile::synth::{all_kinds, sample_nodes};

const GOLDEN: &[&str] = &[
    r#"{"ts_ns":1000,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"vfio_set_iommu","container":18219251269649,"iommu_type":3,"errno":0}"#,
    r#"{"ts_ns":1500,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"vfio_iommu_info","container":18219251269649,"flags":3,"iova_pgsizes":1075843072,"iova_ranges":[{"start":0,"end":4276092927},{"start":4277141504,"end":549755813887}],"errno":0}"#,
    r#"{"ts_ns":2000,"node":"host","pid":4242,"tid":4243,"comm":"CPU 0/KVM","kind":"vfio_map_dma","container":18219251269649,"iova":268435456,"vaddr":139716164218880,"size":2097152,"flags":3,"errno":0}"#,
    r#"{"ts_ns":2100,"node":"host","pid":4242,"tid":4243,"comm":"CPU 0/KVM","kind":"vfio_pin","vaddr":139716164218880,"npages":512,"pfn":1193046}"#,
    r#"{"ts_ns":2200,"node":"host","pid":4242,"tid":4243,"comm":"CPU 0/KVM","kind":"iommu_map","domain":18446612682089119744,"iova":268435456,"paddr":4886716416,"size":2097152,"prot":3,"errno":0}"#,
    r#"{"ts_ns":2150,"node":"host","pid":4242,"tid":4244,"comm":"CPU 1/KVM","kind":"vfio_map_dma","container":18219251269649,"iova":4276092928,"vaddr":139715286138880,"size":4096,"flags":3,"errno":22}"#,
    r#"{"ts_ns":3000,"node":"host","pid":4242,"tid":4243,"comm":"CPU 0/KVM","kind":"vfio_unmap_dma","container":18219251269649,"iova":268435456,"size":2097152,"unmapped":0,"flags":0,"errno":0}"#,
    r#"{"ts_ns":3100,"node":"host","pid":4242,"tid":4243,"comm":"CPU 0/KVM","kind":"iommu_unmap","domain":18446612682089119744,"iova":268435456,"size":2097152,"unmapped":2097152}"#,
    r#"{"ts_ns":500,"node":"guest0","pid":1,"tid":1,"comm":"swapper/0","kind":"viommu_req","op":"probe","domain":0,"endpoint":8,"virt_start":0,"virt_end":0,"phys_start":0,"flags":0,"status":0,"resv":[{"subtype":1,"start":4276092928,"end":4277141503},{"subtype":0,"start":134217728,"end":135266303}]}"#,
    r#"{"ts_ns":600,"node":"guest0","pid":211,"tid":211,"comm":"kworker/u8:2","kind":"viommu_req","op":"map","domain":1,"endpoint":0,"virt_start":4294963200,"virt_end":4294967295,"phys_start":18630610944,"flags":3,"status":4,"resv":[]}"#,
    r#"{"ts_ns":700,"node":"host","pid":0,"tid":0,"comm":"","kind":"resv_region","group":12,"device":"0000:01:00.0","start":134217728,"end":135266303,"type":"sw_msi"}"#,
    r#"{"ts_ns":4000,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"vfio_set_irqs","device":"fd:23","index":2,"start":0,"count":3,"flags":36,"eventfds":[30,-1],"eventfds_truncated":true,"errno":0}"#,
    r#"{"ts_ns":4100,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"msi_vector","device":"0000:01:00.0","index":2,"vector":0,"eventfd":-1,"enabled":false}"#,
    r#"{"ts_ns":4200,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"msi_write","device":"0000:01:00.0","vector":1,"address":134217792,"data":16417}"#,
    r#"{"ts_ns":4250,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"msi_mask","device":"0000:01:00.0","index":2,"vector":1,"masked":true,"can_mask":true,"is_virtual":false}"#,
    r#"{"ts_ns":4260,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"msi_mask","device":"0000:01:00.0","index":1,"vector":0,"masked":false,"can_mask":null,"is_virtual":false}"#,
    r#"{"ts_ns":4300,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"msi_doorbell_map","device":"?","domain":18446612682089119744,"iova":134217728,"doorbell_paddr":134807552}"#,
    r#"{"ts_ns":4400,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"msi_cookie","domain":18446612682089119744,"base":134217728}"#,
    r#"{"ts_ns":800,"node":"host","pid":4242,"tid":4242,"comm":"qemu-system-x86","kind":"kvm_memslot","vm":18219251269644,"slot":65538,"gpa":4294967296,"size":0,"hva":139637976727552,"flags":1,"errno":-1}"#,
    r#"{"ts_ns":5000,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"ioas_map","iommufd":18468359372803,"ioas":1,"flags":6,"user_va":140733193388032,"length":65536,"iova":18446744073709486080,"errno":0}"#,
    r#"{"ts_ns":5100,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"ioas_unmap","iommufd":18468359372803,"ioas":1,"iova":18446744073709486080,"length":65536,"unmapped":65536,"errno":0}"#,
    r#"{"ts_ns":10,"node":"host","pid":0,"tid":0,"comm":"","kind":"probe_status","probe":"vfio_map_dma","attach":"kprobe:vfio_iommu_type1_ioctl","status":"missing_symbol","required":false,"reason":"module vfio_iommu_type1 not loaded; \"quoted\" ünïcode","hits":0}"#,
    r#"{"ts_ns":18446744073709551615,"node":"host","pid":0,"tid":0,"comm":"","kind":"drops","ring_full":1,"pending_full":2,"read_failed":3,"undecodable":18446744073709551615}"#,
    r#"{"ts_ns":9000,"node":"host","pid":0,"tid":0,"comm":"","kind":"stream_gap","cause":"lost mid-stream: connection reset by peer","dropped":0,"lost":12,"missing_batches":1}"#,
    r#"{"ts_ns":5300,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"iommufd_destroy","iommufd":18468359372803,"size":8,"id":7,"errno":0}"#,
    r#"{"ts_ns":5310,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"ioas_alloc","iommufd":18468359372803,"size":12,"flags":0,"out_ioas_id":2,"errno":0}"#,
    r#"{"ts_ns":5320,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"ioas_allow_iovas","iommufd":18468359372803,"size":24,"ioas_id":2,"num_iovas":2,"allowed_iovas":139637976731648,"iovas":[{"start":4096,"last":4294967295},{"start":4294967296,"last":18446744073709551615}],"errno":0}"#,
    r#"{"ts_ns":5330,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"ioas_copy","iommufd":18468359372803,"size":40,"flags":7,"dst_ioas_id":3,"src_ioas_id":2,"length":2097152,"dst_iova":1073741824,"src_iova":268435456,"out_dst_iova":1073741824,"errno":0}"#,
    r#"{"ts_ns":5340,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"ioas_iova_ranges","iommufd":18468359372803,"size":32,"ioas_id":2,"num_iovas":4,"allowed_iovas":139637976735744,"out_num_iovas":2,"out_iova_alignment":4096,"iovas":[{"start":0,"last":4276092927},{"start":4277141504,"last":281474976710655}],"errno":0}"#,
    r#"{"ts_ns":5350,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"iommufd_option","iommufd":18468359372803,"size":24,"option_id":1,"op":1,"object_id":2,"val64":0,"out_val64":1,"errno":0}"#,
    r#"{"ts_ns":5360,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"hwpt_alloc","iommufd":18468359372803,"size":48,"flags":0,"dev_id":1,"pt_id":4,"out_hwpt_id":5,"data_type":2,"data_len":16,"data_uptr":139637976739840,"fault_id":0,"data":[11,0,0,0,0,16,0,0,0,0,0,0,0,0,0,0],"ste":[17592186044427,0],"pgtbl_addr":0,"addr_width":0,"s1_flags":0,"errno":0}"#,
    r#"{"ts_ns":5370,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"iommufd_hw_info","iommufd":18468359372803,"size":40,"flags":0,"dev_id":1,"data_len":40,"data_uptr":139637976743936,"in_data_type":0,"out_data_len":24,"out_data_type":1,"out_max_pasid_log2":20,"out_capabilities":1,"data":[0,0,0,0,0,0,0,0,102,4,210,0,0,0,0,0],"errno":0}"#,
    r#"{"ts_ns":5380,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"hwpt_set_dirty_tracking","iommufd":18468359372803,"size":16,"flags":1,"hwpt_id":5,"errno":0}"#,
    r#"{"ts_ns":5390,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"hwpt_get_dirty_bitmap","iommufd":18468359372803,"size":48,"hwpt_id":5,"flags":0,"iova":268435456,"length":4194304,"page_size":4096,"data":139637976748032,"errno":0}"#,
    r#"{"ts_ns":5400,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"hwpt_invalidate","iommufd":18468359372803,"size":32,"hwpt_id":6,"data_uptr":139637976752128,"data_type":0,"entry_len":24,"entry_num":1,"out_entry_num":1,"entries":[[2147483648,16,1]],"errno":0}"#,
    r#"{"ts_ns":5410,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"fault_queue_alloc","iommufd":18468359372803,"size":16,"flags":0,"out_fault_id":8,"out_fault_fd":21,"errno":0}"#,
    r#"{"ts_ns":5420,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"ioas_map_file","iommufd":18468359372803,"size":40,"flags":6,"ioas_id":2,"fd":9,"start":0,"length":1073741824,"iova":0,"out_iova":2147483648,"errno":0}"#,
    r#"{"ts_ns":5430,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"viommu_alloc","iommufd":18468359372803,"size":40,"flags":0,"type":1,"dev_id":1,"hwpt_id":4,"out_viommu_id":9,"data_len":0,"data_uptr":0,"data":[],"errno":0}"#,
    r#"{"ts_ns":5440,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"vdevice_alloc","iommufd":18468359372803,"size":24,"viommu_id":9,"dev_id":1,"out_vdevice_id":10,"virt_id":8,"errno":0}"#,
    r#"{"ts_ns":5450,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"veventq_alloc","iommufd":18468359372803,"size":32,"flags":0,"viommu_id":9,"type":1,"veventq_depth":64,"out_veventq_id":11,"out_veventq_fd":22,"errno":0}"#,
    r#"{"ts_ns":5460,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"vfio_bind_iommufd","device":18468359372830,"argsz":16,"flags":0,"iommufd":20,"out_devid":1,"token_uuid_ptr":0,"errno":0}"#,
    r#"{"ts_ns":5470,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"vfio_attach_pt","device":18468359372830,"argsz":16,"flags":0,"pt_id":2,"out_pt_id":3,"pasid":0,"errno":0}"#,
    r#"{"ts_ns":5480,"node":"host","pid":4300,"tid":4301,"comm":"iommufd-test","kind":"vfio_detach_pt","device":18468359372830,"argsz":12,"flags":0,"pasid":0,"errno":0}"#,
];

#[test]
fn golden_line_per_kind() {
    let nodes = sample_nodes();
    let lines: Vec<String> = all_kinds()
        .iter()
        .map(|e| to_jsonl_line(e, &nodes))
        .collect();
    if std::env::var_os("PRINT_GOLDEN").is_some() {
        for l in &lines {
            println!("    r#\"{l}\"#,");
        }
    }
    assert_eq!(lines.len(), GOLDEN.len());
    for (line, golden) in lines.iter().zip(GOLDEN) {
        assert_eq!(line, golden);
    }
}

#[test]
fn every_line_starts_with_the_common_fields_and_parses() {
    let nodes = sample_nodes();
    for e in all_kinds() {
        let line = to_jsonl_line(&e, &nodes);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in ["ts_ns", "node", "pid", "tid", "comm", "kind"] {
            assert!(v.get(k).is_some(), "{k} missing in {line}");
        }
        assert!(line.starts_with(&format!("{{\"ts_ns\":{},\"node\":", e.ts_ns)));
        // The kind's own fields deserialize back to the same kind.
        let kind: tracer_core::event::EventKind = serde_json::from_value(v).unwrap();
        assert_eq!(kind, e.kind);
    }
}

#[test]
fn unknown_nodes_are_named_by_id() {
    let mut e = all_kinds()[0].clone();
    e.node = 9;
    assert!(to_jsonl_line(&e, &sample_nodes()).contains(r#""node":"node9""#));
}
