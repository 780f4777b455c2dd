//! Random bytes for what must be unguessable (an invite's token) or unique (an
//! organization's id, a seat change's request id): the runtime's `crypto.getRandomValues`
//! in the worker, the operating system's generator natively.

/// `N` random bytes; `None` only when the platform has no generator to ask.
pub fn bytes<const N: usize>() -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    fill(&mut buf).then_some(buf)
}

#[cfg(target_arch = "wasm32")]
fn fill(buf: &mut [u8]) -> bool {
    use js_sys::{Function, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    let mut run = || -> Result<(), JsValue> {
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
        let f: Function = Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))?.dyn_into()?;
        let arr = Uint8Array::new_with_length(buf.len() as u32);
        f.call1(&crypto, &arr)?;
        arr.copy_to(buf);
        Ok(())
    };
    run().is_ok()
}

#[cfg(not(target_arch = "wasm32"))]
fn fill(buf: &mut [u8]) -> bool {
    use std::io::Read;
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf)).is_ok()
}

/// A version 4 UUID from 16 random bytes.
pub fn uuid() -> Option<String> {
    Some(uuid_of(bytes::<16>()?, 4))
}

/// The UUID of `version` (4: random, 8: made from other data) written from 16 bytes, its
/// version and variant bits set.
pub fn uuid_of(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (super::uuid().unwrap(), super::uuid().unwrap());
        assert_ne!(a, b);
        assert!(crate::state::is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "4");
    }
}
