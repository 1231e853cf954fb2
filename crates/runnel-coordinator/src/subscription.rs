//! Just enough of the consumer protocol's subscription (`ConsumerProtocolSubscription`, the
//! member metadata of protocol type `consumer`) to know the subscribed topics. Everything
//! else in the metadata stays opaque.

/// Topics named in a consumer subscription, or `None` when the bytes do not parse. Every
/// version (0–3) starts with an int16 version and a non-flexible array of strings.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = metadata;
    let _version = take_i16(&mut buf)?;
    let count = take_i32(&mut buf)?;
    if count < 0 {
        return None;
    }
    // Each topic takes at least its 2-byte length: bound the count by the bytes left.
    if count as usize > buf.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = take_i16(&mut buf)?;
        if len < 0 || len as usize > buf.len() {
            return None;
        }
        let (name, rest) = buf.split_at(len as usize);
        topics.push(String::from_utf8(name.to_vec()).ok()?);
        buf = rest;
    }
    Some(topics)
}

fn take_i16(buf: &mut &[u8]) -> Option<i16> {
    let (head, rest) = buf.split_first_chunk::<2>()?;
    *buf = rest;
    Some(i16::from_be_bytes(*head))
}

fn take_i32(buf: &mut &[u8]) -> Option<i32> {
    let (head, rest) = buf.split_first_chunk::<4>()?;
    *buf = rest;
    Some(i32::from_be_bytes(*head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_topics() {
        let mut md = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        md.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // user data null
        assert_eq!(subscribed_topics(&md), Some(vec!["a".to_string(), "bc".to_string()]));
        assert_eq!(subscribed_topics(&[0, 1, 0, 0, 0, 9]), None);
        assert_eq!(subscribed_topics(&[0]), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = subscribed_topics(&bytes);
        }
    }
}
