//! Fuzzes the certificate of membership parser: never panics, and whatever parses re-emits to
//! the exact bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::com::CertificateOfMembership;

fuzz_target!(|data: &[u8]| {
    if let Ok((com, used)) = CertificateOfMembership::parse(data) {
        let bytes = com.to_bytes();
        assert_eq!(bytes.as_slice(), &data[..used]);
        assert_eq!(CertificateOfMembership::parse_exact(&bytes), Ok(com));
    }
});
