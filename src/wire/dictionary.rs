//! Dictionary (section 7.1): the `key=value` text format of netconf, request metadata, SSO
//! error info and remote traces.
//!
//! [`Dictionary`] is a zero-copy reader over the bytes as received: entries end at LF or CR,
//! the whole string ends at the first NUL, the first entry with a key wins, and values are
//! unescaped (`\0 \r \n \e`, `\X` -> `X`) only when asked for. [`DictionaryBuilder`] writes
//! the reference's canonical form (escaped values, integers as 16 lowercase hex digits,
//! addresses as 10, booleans as `1`/`0`, LF between entries) under a caller-given capacity.

use std::borrow::Cow;

use super::{Address, Error, Result};

/// Capacity of a netconf dictionary (`ZT_NETWORKCONFIG_DICT_CAPACITY`), terminating NUL
/// included: the content is at most one byte shorter.
pub const NETCONF_CAPACITY: usize = 484_520;
/// Capacity of NETWORK_CONFIG_REQUEST metadata.
pub const METADATA_CAPACITY: usize = 1024;

/// The reference reads typed values (integers, addresses) through a 128-byte buffer, so only
/// the first 127 unescaped bytes of such a value count.
const TYPED_VALUE_PREFIX: usize = 127;

/// A read-only view over a dictionary's bytes (up to, not including, the first NUL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dictionary<'a> {
    data: &'a [u8],
}

/// One `key=value` entry; the value is still escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub raw_value: &'a [u8],
}

impl<'a> Entry<'a> {
    /// The value with escapes resolved (borrowed when it holds no backslash).
    pub fn value(&self) -> Cow<'a, [u8]> {
        unescape(self.raw_value)
    }
}

impl<'a> Dictionary<'a> {
    /// A view over `bytes`, which end at the first NUL if any (a C string, as stored). No
    /// capacity check: use [`Dictionary::parse`] for input from the network or disk.
    pub fn new(bytes: &'a [u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Dictionary {
            data: bytes.get(..end).unwrap_or(bytes),
        }
    }

    /// Like [`Dictionary::new`], but the content must fit a buffer of `capacity` bytes with
    /// its terminating NUL (so at most `capacity - 1` bytes), else [`Error::TooLarge`].
    pub fn parse(bytes: &'a [u8], capacity: usize) -> Result<Self> {
        let dict = Self::new(bytes);
        if dict.data.len() >= capacity {
            return Err(Error::TooLarge("dictionary"));
        }
        Ok(dict)
    }

    /// The content bytes (no NUL).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Every well-formed entry in order, duplicates included; lines without `=` are skipped.
    pub fn entries(&self) -> Entries<'a> {
        Entries { rest: self.data }
    }

    /// The escaped value of the first entry named `key`.
    pub fn raw(&self, key: &str) -> Option<&'a [u8]> {
        let key = key.as_bytes();
        self.entries().find(|e| e.key == key).map(|e| e.raw_value)
    }

    /// True if some entry is named `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// The unescaped value of the first entry named `key`.
    pub fn get(&self, key: &str) -> Option<Cow<'a, [u8]>> {
        self.raw(key).map(unescape)
    }

    /// The unescaped value as text; invalid UTF-8 is replaced (U+FFFD).
    pub fn get_str(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).map(|v| match v {
            Cow::Borrowed(b) => String::from_utf8_lossy(b),
            Cow::Owned(b) => Cow::Owned(
                String::from_utf8(b)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        })
    }

    /// An unsigned hex integer with `strtoull(value, 16)` semantics: leading whitespace, an
    /// optional sign (`-` negates modulo 2^64), an optional `0x`, then as many hex digits as
    /// there are (overflow saturates at `u64::MAX`, no digits yields 0). `None` if the key is
    /// missing or its value is empty (the reference then uses its default).
    pub fn get_u64_hex(&self, key: &str) -> Option<u64> {
        let value = self.typed_value(key)?;
        let (negative, magnitude) = parse_hex_magnitude(&value);
        Some(match magnitude {
            Some(m) if negative => m.wrapping_neg(),
            Some(m) => m,
            None => u64::MAX,
        })
    }

    /// A signed hex integer with `strtoll(value, 16)` semantics (written as `-` and the
    /// magnitude); overflow saturates at `i64::MIN` / `i64::MAX`.
    pub fn get_i64_hex(&self, key: &str) -> Option<i64> {
        let value = self.typed_value(key)?;
        let (negative, magnitude) = parse_hex_magnitude(&value);
        Some(match (negative, magnitude) {
            (false, Some(m)) => i64::try_from(m).unwrap_or(i64::MAX),
            (false, None) => i64::MAX,
            (true, Some(m)) if m <= i64::MIN.unsigned_abs() => 0i64.wrapping_sub_unsigned(m),
            (true, _) => i64::MIN,
        })
    }

    /// A node address: the hex integer's low 40 bits, as the reference's `Address(getUI())`.
    pub fn get_address(&self, key: &str) -> Option<Address> {
        self.get_u64_hex(key).map(Address::from_u64)
    }

    /// A boolean: true if the value starts with `1`, `t` or `T`; an empty value is false.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.raw(key).map(|raw| {
            let first = unescape(raw.get(..2).unwrap_or(raw));
            matches!(first.first(), Some(b'1' | b't' | b'T'))
        })
    }

    /// The first [`TYPED_VALUE_PREFIX`] unescaped bytes of a non-empty value.
    fn typed_value(&self, key: &str) -> Option<Vec<u8>> {
        let raw = self.raw(key)?;
        let value: Vec<u8> = Unescape::new(raw).take(TYPED_VALUE_PREFIX).collect();
        (!value.is_empty()).then_some(value)
    }
}

/// Iterator over the entries of a [`Dictionary`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        while !self.rest.is_empty() {
            let end = self
                .rest
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(self.rest.len());
            let (line, tail) = self.rest.split_at(end);
            self.rest = tail.get(1..).unwrap_or(&[]);
            if let Some(eq) = line.iter().position(|&b| b == b'=') {
                let (key, value) = line.split_at(eq);
                return Some(Entry {
                    key,
                    raw_value: value.get(1..).unwrap_or(&[]),
                });
            }
        }
        None
    }
}

/// Iterator resolving the escapes of a raw value byte by byte (no allocation).
#[derive(Clone, Debug)]
pub struct Unescape<'a> {
    raw: std::slice::Iter<'a, u8>,
}

impl<'a> Unescape<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Unescape { raw: raw.iter() }
    }
}

impl Iterator for Unescape<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.raw.next()?;
        if b != b'\\' {
            return Some(b);
        }
        // A backslash at the very end escapes nothing and is dropped, as in the reference.
        Some(match *self.raw.next()? {
            b'0' => 0,
            b'r' => b'\r',
            b'n' => b'\n',
            b'e' => b'=',
            other => other,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.raw.len();
        (left / 2, Some(left))
    }
}

/// Resolves the escapes of a raw value; borrowed when there are none.
pub fn unescape(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.contains(&b'\\') {
        Cow::Owned(Unescape::new(raw).collect())
    } else {
        Cow::Borrowed(raw)
    }
}

/// Splits `strtoull`-style input into (negative, magnitude); `None` magnitude = overflow.
fn parse_hex_magnitude(value: &[u8]) -> (bool, Option<u64>) {
    let mut rest = value;
    while let [b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r', tail @ ..] = rest {
        rest = tail;
    }
    let negative = matches!(rest.first(), Some(b'-'));
    if let [b'-' | b'+', tail @ ..] = rest {
        rest = tail;
    }
    // "0x" is a prefix only if a hex digit follows; otherwise "0" is the whole number.
    if let [b'0', b'x' | b'X', d, ..] = rest
        && d.is_ascii_hexdigit()
    {
        rest = rest.get(2..).unwrap_or(&[]);
    }
    let mut acc = Some(0u64);
    for &b in rest {
        let Some(digit) = char::from(b).to_digit(16) else {
            break;
        };
        acc = acc
            .and_then(|a| a.checked_mul(16))
            .and_then(|a| a.checked_add(u64::from(digit)));
    }
    (negative, acc)
}

/// Writes a dictionary in the reference's canonical form, refusing to grow past a capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DictionaryBuilder {
    buf: Vec<u8>,
    capacity: usize,
}

impl DictionaryBuilder {
    /// An empty dictionary whose content must stay below `capacity` bytes (room for the NUL),
    /// e.g. [`NETCONF_CAPACITY`] or [`METADATA_CAPACITY`].
    pub fn new(capacity: usize) -> Self {
        DictionaryBuilder {
            buf: Vec::new(),
            capacity,
        }
    }

    /// Appends `key=value`, escaping the value. The key must be non-empty and free of NUL,
    /// CR, LF and `=` ([`Error::Malformed`]); if the entry would not fit, nothing is written
    /// and [`Error::TooLarge`] is returned.
    pub fn add_bytes(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let key = key.as_bytes();
        if key.is_empty() || key.iter().any(|b| matches!(b, 0 | b'\r' | b'\n' | b'=')) {
            return Err(Error::Malformed("dictionary key"));
        }
        let escapes = value.iter().filter(|&&b| needs_escape(b)).count();
        let separator = usize::from(!self.buf.is_empty());
        let needed = separator + key.len() + 1 + value.len() + escapes;
        if self.buf.len().saturating_add(needed) >= self.capacity {
            return Err(Error::TooLarge("dictionary"));
        }
        self.buf.reserve(needed);
        if separator == 1 {
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(key);
        self.buf.push(b'=');
        for &b in value {
            match b {
                0 => self.buf.extend_from_slice(b"\\0"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'=' => self.buf.extend_from_slice(b"\\e"),
                other => self.buf.push(other),
            }
        }
        Ok(())
    }

    pub fn add_str(&mut self, key: &str, value: &str) -> Result<()> {
        self.add_bytes(key, value.as_bytes())
    }

    /// An unsigned integer as 16 lowercase hex digits.
    pub fn add_u64(&mut self, key: &str, value: u64) -> Result<()> {
        self.add_str(key, &format!("{value:016x}"))
    }

    /// A signed integer: 16 hex digits, with `-` before the magnitude when negative.
    pub fn add_i64(&mut self, key: &str, value: i64) -> Result<()> {
        let magnitude = value.unsigned_abs();
        if value < 0 {
            self.add_str(key, &format!("-{magnitude:016x}"))
        } else {
            self.add_str(key, &format!("{magnitude:016x}"))
        }
    }

    /// An address as 10 lowercase hex digits.
    pub fn add_address(&mut self, key: &str, value: Address) -> Result<()> {
        self.add_str(key, &value.to_string())
    }

    /// A boolean as `1` or `0`.
    pub fn add_bool(&mut self, key: &str, value: bool) -> Result<()> {
        self.add_bytes(key, if value { b"1" } else { b"0" })
    }

    /// Content length so far (no NUL).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// A reader over what was written so far.
    pub fn as_dictionary(&self) -> Dictionary<'_> {
        Dictionary::new(&self.buf)
    }

    /// The dictionary bytes (no trailing NUL or LF).
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

fn needs_escape(b: u8) -> bool {
    matches!(b, 0 | b'\r' | b'\n' | b'\\' | b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_match_wins_and_separators() {
        let d = Dictionary::new(b"a=1\r\nb=2\nnokey\n=empty\na=3\rc=x\\ey\0d=hidden");
        assert_eq!(d.get("a").as_deref(), Some(&b"1"[..]));
        assert_eq!(d.get("b").as_deref(), Some(&b"2"[..]));
        assert_eq!(d.get("c").as_deref(), Some(&b"x=y"[..]));
        assert_eq!(d.get("d"), None, "content ends at the first NUL");
        assert_eq!(d.get("nokey"), None);
        assert_eq!(d.entries().count(), 5);
        assert!(matches!(d.get("a"), Some(Cow::Borrowed(_))));
        // Prefix of another key does not match.
        let d = Dictionary::new(b"nwid=1\nn=name");
        assert_eq!(d.get_str("n").as_deref(), Some("name"));
    }

    #[test]
    fn unescaping() {
        assert_eq!(&*unescape(b"\\0\\r\\n\\e\\\\\\A\\"), b"\0\r\n=\\A");
        assert_eq!(&*unescape(b"plain"), b"plain");
    }

    #[test]
    fn typed_values() {
        let d = Dictionary::new(
            b"u=0000000000000007\nbig=1ffffffffffffffff\nneg=-1\nhex=0x1F\nsp=  ab zz\n\
              junk=zz\nempty=\nt=true\nT=T\none=1\nzero=0\nf=false\neb=\nid=ff608938c440\n\
              i=-0000000000000010\nimin=-8000000000000000\nibig=-80000000000000001\nx0=0x",
        );
        assert_eq!(d.get_u64_hex("u"), Some(7));
        assert_eq!(d.get_u64_hex("big"), Some(u64::MAX));
        assert_eq!(d.get_u64_hex("neg"), Some(u64::MAX));
        assert_eq!(d.get_u64_hex("hex"), Some(0x1f));
        assert_eq!(d.get_u64_hex("sp"), Some(0xab));
        assert_eq!(d.get_u64_hex("junk"), Some(0));
        assert_eq!(d.get_u64_hex("x0"), Some(0));
        assert_eq!(d.get_u64_hex("empty"), None);
        assert_eq!(d.get_u64_hex("missing"), None);
        assert_eq!(d.get_bool("t"), Some(true));
        assert_eq!(d.get_bool("T"), Some(true));
        assert_eq!(d.get_bool("one"), Some(true));
        assert_eq!(d.get_bool("zero"), Some(false));
        assert_eq!(d.get_bool("f"), Some(false));
        assert_eq!(d.get_bool("eb"), Some(false));
        assert_eq!(d.get_bool("missing"), None);
        assert_eq!(d.get_address("id"), Some(Address::from_u64(0x608938c440)));
        assert_eq!(d.get_i64_hex("i"), Some(-16));
        assert_eq!(d.get_i64_hex("imin"), Some(i64::MIN));
        assert_eq!(d.get_i64_hex("ibig"), Some(i64::MIN));
        assert_eq!(d.get_i64_hex("big"), Some(i64::MAX));
    }

    #[test]
    fn typed_values_read_only_the_first_127_bytes() {
        let mut text = b"v=".to_vec();
        text.extend(std::iter::repeat_n(b'0', 127));
        text.push(b'5');
        assert_eq!(Dictionary::new(&text).get_u64_hex("v"), Some(0));
    }

    #[test]
    fn builder_writes_canonical_form() {
        let mut b = DictionaryBuilder::new(METADATA_CAPACITY);
        b.add_u64("v", 7).unwrap();
        b.add_bytes("B", &[0, 10, 13, b'=', b'\\', b'A']).unwrap();
        b.add_bool("t", true).unwrap();
        b.add_i64("i", -16).unwrap();
        b.add_address("id", Address::from_u64(0x608938c440))
            .unwrap();
        assert_eq!(
            b.as_bytes(),
            b"v=0000000000000007\nB=\\0\\n\\r\\e\\\\A\nt=1\ni=-0000000000000010\nid=608938c440"
        );
        let d = b.as_dictionary();
        assert_eq!(d.get_i64_hex("i"), Some(-16));
        assert_eq!(
            d.get("B").as_deref(),
            Some(&[0, 10, 13, b'=', b'\\', b'A'][..])
        );
        for bad in ["", "a=b", "a\nb", "a\rb", "a\0b"] {
            assert_eq!(b.add_u64(bad, 1), Err(Error::Malformed("dictionary key")));
        }
    }

    #[test]
    fn capacity_is_enforced() {
        // "k=" plus 5 bytes = 7; capacity 8 leaves room for the NUL.
        let mut b = DictionaryBuilder::new(8);
        assert_eq!(
            b.add_bytes("k", b"123456"),
            Err(Error::TooLarge("dictionary"))
        );
        assert!(b.is_empty());
        b.add_bytes("k", b"12345").unwrap();
        assert_eq!(b.add_bytes("x", b""), Err(Error::TooLarge("dictionary")));
        assert_eq!(b.len(), 7);
        // Escapes count towards the capacity.
        let mut b = DictionaryBuilder::new(8);
        assert!(b.add_bytes("k", b"\n\n\n").is_err());
        assert!(Dictionary::parse(&[b'a'; 8], 8).is_err());
        assert!(Dictionary::parse(&[b'a'; 7], 8).is_ok());
        assert!(Dictionary::parse(b"aaaaaaa\0bbbbbbbbb", 8).is_ok());
    }

    fn arb_key() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_]{1,8}"
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256),
                                        key in arb_key()) {
            let d = Dictionary::new(&bytes);
            for e in d.entries() {
                let _ = e.value();
            }
            let _ = d.get(&key);
            let _ = d.get_str(&key);
            let _ = d.get_u64_hex(&key);
            let _ = d.get_i64_hex(&key);
            let _ = d.get_bool(&key);
            let _ = d.get_address(&key);
        }

        #[test]
        fn values_round_trip(entries in proptest::collection::vec(
            (arb_key(), proptest::collection::vec(any::<u8>(), 0..64)), 0..12)) {
            let mut b = DictionaryBuilder::new(NETCONF_CAPACITY);
            for (k, v) in &entries {
                b.add_bytes(k, v).unwrap();
            }
            let bytes = b.finish();
            let d = Dictionary::parse(&bytes, NETCONF_CAPACITY).unwrap();
            prop_assert_eq!(d.entries().count(), entries.len());
            for (k, _) in &entries {
                let first = entries.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v.clone());
                prop_assert_eq!(d.get(k).map(|v| v.into_owned()), first);
            }
        }

        #[test]
        fn integers_round_trip(u in any::<u64>(), i in any::<i64>(), a in 0u64..(1 << 40), t in any::<bool>()) {
            let mut b = DictionaryBuilder::new(METADATA_CAPACITY);
            b.add_u64("u", u).unwrap();
            b.add_i64("i", i).unwrap();
            b.add_address("a", Address::from_u64(a)).unwrap();
            b.add_bool("t", t).unwrap();
            let d = b.as_dictionary();
            prop_assert_eq!(d.get_u64_hex("u"), Some(u));
            prop_assert_eq!(d.get_i64_hex("i"), Some(i));
            prop_assert_eq!(d.get_address("a"), Some(Address::from_u64(a)));
            prop_assert_eq!(d.get_bool("t"), Some(t));
        }
    }
}
