//! Fuzz target: the Dictionary reader and writer.
//!
//! Invariants: no panic on any input; every entry with a non-empty key, unescaped and written
//! back by `DictionaryBuilder`, reads back as the same keys and values in the same order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::dictionary::{Dictionary, DictionaryBuilder, NETCONF_CAPACITY};

fuzz_target!(|data: &[u8]| {
    let dict = Dictionary::new(data);
    let mut builder = DictionaryBuilder::new(NETCONF_CAPACITY);
    let mut written = Vec::new();
    for entry in dict.entries() {
        let value = entry.value();
        if let Ok(key) = std::str::from_utf8(entry.key)
            && builder.add_bytes(key, &value).is_ok()
        {
            written.push((key.to_owned(), value.into_owned()));
        }
        if let Ok(key) = std::str::from_utf8(entry.key) {
            let _ = dict.get_u64_hex(key);
            let _ = dict.get_i64_hex(key);
            let _ = dict.get_bool(key);
            let _ = dict.get_str(key);
            let _ = dict.get_address(key);
        }
    }
    let bytes = builder.finish();
    let again = Dictionary::parse(&bytes, NETCONF_CAPACITY).expect("our output fits");
    let read: Vec<(String, Vec<u8>)> = again
        .entries()
        .map(|e| {
            let key = String::from_utf8(e.key.to_vec()).expect("keys we wrote are UTF-8");
            (key, e.value().into_owned())
        })
        .collect();
    assert_eq!(read, written);
});
