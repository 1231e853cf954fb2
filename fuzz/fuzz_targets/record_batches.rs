//! The record-batch layer on arbitrary bytes: validation, iteration and bounded decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runnel_protocol::records;

fuzz_target!(|data: &[u8]| {
    let _ = records::validate_batches(data);
    for batch in records::batches(data) {
        let Ok((_, bytes)) = batch else { break };
        let _ = records::decode_records(bytes, 1 << 20);
    }
});
