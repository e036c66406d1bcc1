//! Certificates of membership and the other credentials against the reference vectors: the
//! `com_serialized` COM (A signs for B), the `C` and `COO` values of the controller-built
//! netconf, and the COMs/COOs real nodes stored in the two captures.

mod common;

use std::path::PathBuf;

use ztrs::crypto::Identity;
use ztrs::wire::com::{CertificateOfMembership, MAX_QUALIFIERS};
use ztrs::wire::credentials::{CertificateOfOwnership, Credential, THING_IPV4, parse_list};
use ztrs::wire::{Error, NetworkId};

fn a_and_b() -> (Identity, Identity) {
    let v = common::wire_vectors();
    let a: Identity = v["A_secret"].parse().expect("A parses");
    let b: Identity = v["B_secret"].parse().expect("B parses");
    (a, b)
}

fn vector_com() -> (Vec<u8>, CertificateOfMembership) {
    let bytes = common::unhex(&common::wire_vectors()["com_serialized"]);
    let com = CertificateOfMembership::parse_exact(&bytes).expect("com_serialized parses");
    (bytes, com)
}

/// The value of `key` in a raw Dictionary (section 7.1), unescaped. Enough of the codec for
/// these tests; the real one is `ztrs::wire::dictionary`.
fn dictionary_value(dict: &[u8], key: &str) -> Option<Vec<u8>> {
    for entry in dict.split(|&b| b == b'\n' || b == b'\r') {
        let Some(eq) = entry.iter().position(|&b| b == b'=') else {
            continue;
        };
        if &entry[..eq] != key.as_bytes() {
            continue;
        }
        let mut out = Vec::new();
        let mut escaped = false;
        for &b in &entry[eq + 1..] {
            if escaped {
                out.push(match b {
                    b'0' => 0,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b'e' => b'=',
                    other => other,
                });
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == 0 {
                break;
            } else {
                out.push(b);
            }
        }
        return Some(out);
    }
    None
}

#[test]
fn com_vector_parses_and_verifies() {
    let (a, b) = a_and_b();
    let (bytes, com) = vector_com();
    assert!(com.verify(&a), "signed by A, the controller of its network");
    assert!(!com.verify(&b));
    assert_eq!(com.signed_by(), Some(a.address()));
    assert_eq!(com.issued_to().to_string(), "608938c440");
    assert_eq!(com.issued_to(), b.address());
    assert_eq!(com.network_id().controller(), a.address());
    assert_eq!(com.qualifiers().len(), 7);
    // Qualifiers 3-6 are the first 32 bytes of B's public key hash.
    let hash = common::unhex(&common::wire_vectors()["B_publicKeyHash_sha384"]);
    assert_eq!(hash.as_slice(), b.public_key_hash().as_slice());
    for (i, q) in com.qualifiers()[3..].iter().enumerate() {
        assert_eq!(q.id, 3 + i as u64);
        let mut word = [0u8; 8];
        word.copy_from_slice(&hash[i * 8..i * 8 + 8]);
        assert_eq!(q.value, u64::from_be_bytes(word));
        assert_eq!(q.max_delta, u64::MAX);
    }
    assert_eq!(com.to_bytes(), bytes, "re-emit is byte-identical");
    assert_eq!(com.signed_message(), &bytes[3..3 + 7 * 24]);
}

#[test]
fn issuing_reproduces_the_vector_byte_for_byte() {
    let (a, b) = a_and_b();
    let (bytes, vector) = vector_com();
    let mut ours = CertificateOfMembership::issue(
        vector.timestamp(),
        vector.timestamp_max_delta(),
        vector.network_id(),
        &b.to_public(),
    );
    assert!(ours.sign(&a));
    assert_eq!(ours.to_bytes(), bytes);
    assert_eq!(ours, vector);
}

#[test]
fn agreement_with_the_vector() {
    let (a, b) = a_and_b();
    let (_, theirs) = vector_com();
    let ts = theirs.timestamp();
    let delta = theirs.timestamp_max_delta();
    let nwid = theirs.network_id();
    let delta_i = i64::try_from(delta).unwrap();
    let ours = |ts: i64, nwid: NetworkId| {
        let mut c = CertificateOfMembership::issue(ts, delta, nwid, &a);
        assert!(c.sign(&a));
        c
    };
    assert!(theirs.agrees_with(&ours(ts + 1000, nwid), &b));
    assert!(
        theirs.agrees_with(&ours(ts - delta_i, nwid), &b),
        "delta inclusive"
    );
    assert!(theirs.agrees_with(&ours(ts + delta_i, nwid), &b));
    assert!(
        !theirs.agrees_with(&ours(ts + delta_i + 1, nwid), &b),
        "beyond delta"
    );
    assert!(!theirs.agrees_with(&ours(ts - delta_i - 1, nwid), &b));
    assert!(
        !theirs.agrees_with(&ours(ts, NetworkId(nwid.0 ^ 1)), &b),
        "other network"
    );
    assert!(
        !theirs.agrees_with(&ours(ts, nwid), &a),
        "hash of a different identity"
    );
}

#[test]
fn truncations_and_extra_qualifiers_are_rejected() {
    let (bytes, _) = vector_com();
    for len in 0..bytes.len() {
        assert!(
            CertificateOfMembership::parse(&bytes[..len]).is_err(),
            "truncated to {len}"
        );
        assert!(CertificateOfMembership::parse_exact(&bytes[..len]).is_err());
    }
    // An eighth qualifier inserted without raising the count: trailing bytes.
    let mut extra = bytes.clone();
    let qualifier = [0u8, 0, 0, 0, 0, 0, 0, 9].repeat(3);
    extra.splice(3 + 7 * 24..3 + 7 * 24, qualifier.iter().copied());
    assert!(CertificateOfMembership::parse_exact(&extra).is_err());
    // The count raised to 9: over the cap.
    let mut nine = bytes.clone();
    nine[1..3].copy_from_slice(&((MAX_QUALIFIERS + 1) as u16).to_be_bytes());
    assert_eq!(
        CertificateOfMembership::parse(&nine),
        Err(Error::TooLarge("COM qualifiers (more than 8)"))
    );
    // One trailing byte.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(CertificateOfMembership::parse_exact(&trailing).is_err());
}

#[test]
fn netconf_com_and_coo_verify_with_the_controller() {
    let (a, b) = a_and_b();
    let dict = common::unhex(&common::netconf_vectors()["netconf_dict"]);
    let c = dictionary_value(&dict, "C").expect("netconf has C");
    let com = CertificateOfMembership::parse_exact(&c).expect("C parses");
    assert!(com.verify(&a));
    assert_eq!(com.issued_to(), b.address());
    assert_eq!(com.network_id(), NetworkId(0x7c2dfee12c000001));
    // Max delta = the netconf's `ctmd` (0x1b7740 = 30 min).
    assert_eq!(com.timestamp_max_delta(), 1_800_000);
    assert_eq!(com.to_bytes(), c, "re-emit is byte-identical");

    let coo_bytes = dictionary_value(&dict, "COO").expect("netconf has COO");
    let coos: Vec<CertificateOfOwnership> = parse_list(&coo_bytes, 4).expect("COO parses");
    assert_eq!(coos.len(), 1);
    let coo = &coos[0];
    assert!(coo.verify(&a));
    assert!(!coo.verify(&b));
    assert_eq!(coo.issued_to, b.address());
    assert_eq!(coo.network_id, NetworkId(0x7c2dfee12c000001));
    assert_eq!(coo.things.len(), 1);
    assert_eq!(coo.things[0].thing_type, THING_IPV4);
    assert!(coo.owns_ip("10.147.17.5".parse().unwrap()));
    assert_eq!(coo.credential_timestamp(), com.timestamp());
    let mut out = Vec::new();
    coo.emit(&mut out);
    assert_eq!(out, coo_bytes, "re-emit is byte-identical");
}

fn capture(dir: &str) -> PathBuf {
    common::vectors_dir().join(dir)
}

fn read_capture(dir: &str, rel: &str) -> Vec<u8> {
    let path = capture(dir).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()))
}

#[test]
fn captured_netconfs_carry_agreeing_coms() {
    for dir in ["zerotierone-1.14.1-capture", "zerotierone-1.14.1-capture-2"] {
        let nwid = String::from_utf8(read_capture(dir, "nwid")).unwrap();
        let nwid = nwid.trim();
        let controller: Identity = String::from_utf8(read_capture(dir, "root/identity.public"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut members = Vec::new();
        for node in ["a", "b"] {
            let id: Identity =
                String::from_utf8(read_capture(dir, &format!("{node}/identity.public")))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
            let conf = read_capture(dir, &format!("{node}/networks.d/{nwid}.conf"));
            let com = CertificateOfMembership::parse_exact(&dictionary_value(&conf, "C").unwrap())
                .unwrap_or_else(|e| panic!("{dir}/{node} COM: {e}"));
            assert!(com.verify(&controller), "{dir}/{node} COM verifies");
            assert_eq!(com.issued_to(), id.address());
            assert_eq!(com.network_id().to_string(), nwid);
            assert_eq!(com.to_bytes(), dictionary_value(&conf, "C").unwrap());
            if let Some(coo) = dictionary_value(&conf, "COO") {
                let coos: Vec<CertificateOfOwnership> = parse_list(&coo, 4).unwrap();
                assert!(!coos.is_empty());
                for c in &coos {
                    assert!(c.verify(&controller), "{dir}/{node} COO verifies");
                    assert_eq!(c.issued_to, id.address());
                }
            }
            members.push((id, com));
        }
        let (a, com_a) = &members[0];
        let (b, com_b) = &members[1];
        assert!(com_b.agrees_with(com_a, b), "{dir}: a accepts b");
        assert!(com_a.agrees_with(com_b, a), "{dir}: b accepts a");
        assert!(!com_b.agrees_with(com_a, a), "{dir}: b's COM is not a's");
    }
}
