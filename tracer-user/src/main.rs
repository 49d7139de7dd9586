fn main() {
    let bytes = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));
    let mut ebpf = aya::Ebpf::load(bytes).unwrap();
    for (name, p) in ebpf.programs_mut() {
        println!("{name}");
        let tp: &mut aya::programs::TracePoint = p.try_into().unwrap();
        tp.load().unwrap();
    }
}
