//! Request decoding as the broker does it: header, then the body of whichever API and version
//! the header names. Must never panic or allocate beyond the input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use runnel_protocol::frame::decode_request;

fuzz_target!(|data: &[u8]| {
    let _ = decode_request(Bytes::copy_from_slice(data));
});
