//! Our VM (full speed and stepping with effects) against the rbpf crate's
//! interpreter on the same programs: `cargo bench -p bpfrr-replayer --bench vm`.
//!
//! The kernel's JIT as the physical reference needs the recorder (and
//! root): `cargo bench -p bpfrr-recorder --bench vm_vs_kernel` runs all of
//! this plus the kernel in one run. See BENCHMARKS.md.

mod workloads;

fn main() {
    let mut c = workloads::criterion();
    println!(
        "kernel reference: not in this bench (run `cargo bench -p bpfrr-recorder --bench vm_vs_kernel` as root)"
    );
    let rows = workloads::bench_all(&mut c, None);
    c.final_summary();
    workloads::print_summary(&rows);
}
