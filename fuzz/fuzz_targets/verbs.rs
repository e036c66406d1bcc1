//! Fuzzes every verb payload codec through `parse_payload`: the first input byte picks the
//! verb (low 5 bits), the rest is the payload. Parsing never panics; whatever parses re-emits
//! to bytes that parse again to the same representation and re-emit identically. The HELLO
//! moon tail parser gets the payload too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::Verb;
use ztrs::wire::verbs::{HelloMoons, parse_payload};

fuzz_target!(|data: &[u8]| {
    let Some((&verb_byte, payload)) = data.split_first() else {
        return;
    };
    let verb = Verb::from_byte(verb_byte);
    if let Ok(parsed) = parse_payload(verb, payload) {
        assert_eq!(parsed.verb(), verb);
        let mut once = Vec::new();
        parsed.emit(&mut once);
        let again = parse_payload(verb, &once).expect("emitted payload parses");
        let mut twice = Vec::new();
        again.emit(&mut twice);
        assert_eq!(once, twice, "emit is a fixed point");
        // After one normalization the representation itself is stable.
        let third = parse_payload(verb, &twice).expect("re-emitted payload parses");
        assert_eq!(third, again);
    }
    if let Ok(moons) = HelloMoons::parse(payload) {
        let mut out = Vec::new();
        moons.emit(&mut out);
        assert_eq!(HelloMoons::parse(&out), Ok(moons));
    }
});
