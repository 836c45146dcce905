//! Benchmark: opening a large trace and reading its first invocation (being written).
fn main() {}
