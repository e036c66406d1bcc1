//! Fuzzes the rules engine decoder: never panics, parse(emit(rules)) == rules, and the JSON
//! form of every known rule converts back without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::cursor::Reader;
use ztrs::wire::rules::{Rule, emit_rules, parse_rules, read_rules};

fuzz_target!(|data: &[u8]| {
    let _ = parse_rules(data);
    let mut r = Reader::new(data);
    if let Ok(rules) = read_rules(&mut r, usize::MAX) {
        let mut out = Vec::new();
        emit_rules(&rules, &mut out);
        assert_eq!(parse_rules(&out), Ok(rules.clone()));
        for rule in &rules {
            let _ = Rule::from_json(&rule.to_json());
        }
    }
});
