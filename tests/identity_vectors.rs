//! Identities from `../shared/vectors/reference/`: string forms, proof of work, signatures and
//! key agreement reproduce the reference exactly.

mod common;

use ztrs::crypto::Identity;

#[test]
fn reference_identities_validate_and_sign() {
    for n in 1..=3 {
        let secret_text = common::read_reference(&format!("id{n}.secret"));
        let public_text = common::read_reference(&format!("id{n}.public"));
        let id: Identity = secret_text.parse().expect("secret identity parses");
        assert!(id.has_secret());
        assert_eq!(
            id.to_secret_string(),
            secret_text,
            "secret string round-trips exactly"
        );
        assert_eq!(
            id.to_public_string(),
            public_text,
            "public string round-trips exactly"
        );
        assert!(id.locally_validate(), "id{n} passes the proof of work");
        for (msg, sig) in [
            ("msg.txt", format!("id{n}.msg.sig")),
            ("empty.txt", format!("id{n}.empty.sig")),
        ] {
            let msg = std::fs::read(common::reference_path(msg)).unwrap();
            let expected = common::read_reference(&sig);
            let ours = id.sign(&msg).unwrap();
            assert_eq!(
                ztrs::hex::encode(&ours),
                expected.trim(),
                "id{n} signature of {sig}"
            );
            let public: Identity = public_text.parse().unwrap();
            assert!(public.verify(&msg, &ours));
            let mut bad = ours;
            bad[5] ^= 1;
            assert!(!public.verify(&msg, &bad));
        }
    }
}

#[test]
fn shared_key_matches_reference_both_ways() {
    let v = common::wire_vectors();
    let a: Identity = v["A_secret"].parse().unwrap();
    let b: Identity = v["B_secret"].parse().unwrap();
    let ab = a.agree(&b.to_public()).unwrap();
    let ba = b.agree(&a.to_public()).unwrap();
    assert_eq!(ztrs::hex::encode(ab.as_bytes()), v["shared_key_48_A_to_B"]);
    assert_eq!(ztrs::hex::encode(ba.as_bytes()), v["shared_key_48_B_to_A"]);
}

#[test]
fn binary_form_matches_reference() {
    let v = common::wire_vectors();
    let a: Identity = v["A_secret"].parse().unwrap();
    let mut out = Vec::new();
    a.emit_binary_public(&mut out);
    assert_eq!(ztrs::hex::encode(&out), v["A_public_binary"]);
    let (parsed, used) = Identity::parse_binary(&out).unwrap();
    assert_eq!(used, ztrs::crypto::BINARY_PUBLIC_LEN);
    assert_eq!(parsed, a.to_public());
    assert!(!parsed.has_secret());
}
