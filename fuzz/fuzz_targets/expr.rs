//! Arbitrary text at the debugger's `print` prompt: the expression parser,
//! format prefixes, and evaluation against a paused XDP program with BTF.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<bpfrr_fuzz::ExprFixture> = OnceLock::new();
    let fixture = FIXTURE.get_or_init(bpfrr_fuzz::ExprFixture::new);
    fixture.print(&String::from_utf8_lossy(data));
});
