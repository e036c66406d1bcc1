//! Fuzzes the tag, certificate of ownership, capability and revocation parsers (the first
//! byte picks one): never panics, and whatever parses re-parses equal after emit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::credentials::{Capability, CertificateOfOwnership, Revocation, Tag};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            if let Ok((tag, _)) = Tag::parse(data) {
                let mut out = Vec::new();
                tag.emit(&mut out);
                assert_eq!(Tag::parse(&out), Ok((tag, out.len())));
            }
        }
        1 => {
            if let Ok((coo, _)) = CertificateOfOwnership::parse(data) {
                let mut out = Vec::new();
                coo.emit(&mut out);
                assert_eq!(CertificateOfOwnership::parse(&out), Ok((coo, out.len())));
            }
        }
        2 => {
            if let Ok((cap, _)) = Capability::parse(data) {
                let mut out = Vec::new();
                cap.emit(&mut out);
                assert_eq!(Capability::parse(&out), Ok((cap, out.len())));
            }
        }
        _ => {
            if let Ok((rev, _)) = Revocation::parse(data) {
                let mut out = Vec::new();
                rev.emit(&mut out);
                assert_eq!(Revocation::parse(&out), Ok((rev, out.len())));
            }
        }
    }
});
