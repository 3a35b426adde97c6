//! libFuzzer target: one input is a COMPOUND's arguments, decoded and run through the
//! server (see `dittofs_fuzz::Harness`).
#![no_main]

use std::sync::OnceLock;

static HARNESS: OnceLock<dittofs_fuzz::Harness> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(dittofs_fuzz::Harness::new).run(data);
});
