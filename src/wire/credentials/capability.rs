//! Capability: a controller-signed set of extra rules a member may present to peers, with a
//! chain of custody (the controller signs it over to the member; 1.x never transfers further).
//!
//! ```text
//! u64 nwid | i64 ts | u32 id | u16 rule count (<= 64) | rules (section 7.4)
//! u8 max custody chain length (1..=7)
//! custody entries { 5 to | 5 from | u8 1 | u16 96 | 96 signature }, ended by a zero `to`
//! u16 additional fields length + bytes
//! ```
//!
//! Every custody signature covers the same message: the fields up to the chain length byte,
//! without the chain itself.

use super::{Credential, CredentialType, emit_signature, read_signature, skip_additional_fields};
use crate::crypto::Identity;
use crate::crypto::c25519::SIGNATURE_LEN;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::rules::{MAX_CAPABILITY_RULES, Rule, emit_rules, read_rules};
use crate::wire::{Address, Error, NetworkId, Result};

/// Longest chain of custody (`ZT_MAX_CAPABILITY_CUSTODY_CHAIN_LENGTH`).
pub const MAX_CUSTODY_CHAIN_LENGTH: u8 = 7;

/// One link of the chain: `from` handed the capability to `to` and signed that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustodyEntry {
    /// Never zero: a zero `to` ends the chain on the wire.
    pub to: Address,
    pub from: Address,
    pub signature: [u8; SIGNATURE_LEN],
}

/// Outcome of checking a chain of custody.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainVerification {
    /// Every link is signed by its holder, starting with the network's controller.
    Valid,
    /// The chain is empty, does not start at the controller, is broken, or a signature fails.
    Invalid,
    /// The identity of this signer is needed (WHOIS it, then check again).
    NeedIdentity(Address),
}

/// A capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    pub network_id: NetworkId,
    pub timestamp: i64,
    pub id: u32,
    /// At most [`MAX_CAPABILITY_RULES`]; emit writes no more than that.
    pub rules: Vec<Rule>,
    /// 1..=[`MAX_CUSTODY_CHAIN_LENGTH`]; 1 means not transferable.
    pub max_custody_chain_length: u8,
    /// At most `max_custody_chain_length` entries.
    pub custody: Vec<CustodyEntry>,
}

impl Capability {
    /// An unsigned capability; `max_custody_chain_length` is clamped to 1..=7 as in the
    /// reference, and rules beyond [`MAX_CAPABILITY_RULES`] are dropped.
    pub fn new(
        network_id: NetworkId,
        timestamp: i64,
        id: u32,
        max_custody_chain_length: u8,
        mut rules: Vec<Rule>,
    ) -> Capability {
        rules.truncate(MAX_CAPABILITY_RULES);
        Capability {
            network_id,
            timestamp,
            id,
            rules,
            max_custody_chain_length: max_custody_chain_length.clamp(1, MAX_CUSTODY_CHAIN_LENGTH),
            custody: Vec::new(),
        }
    }

    /// The last holder in the chain of custody (zero address if unsigned).
    pub fn issued_to(&self) -> Address {
        self.custody.last().map_or(Address::default(), |e| e.to)
    }

    fn chain_limit(&self) -> usize {
        usize::from(self.max_custody_chain_length.min(MAX_CUSTODY_CHAIN_LENGTH))
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Capability> {
        let network_id = NetworkId(r.u64("capability network id")?);
        let timestamp = r.i64("capability timestamp")?;
        let id = r.u32("capability id")?;
        let rule_count = usize::from(r.u16("capability rule count")?);
        if rule_count > MAX_CAPABILITY_RULES {
            return Err(Error::TooLarge("capability rules (more than 64)"));
        }
        let rules = read_rules(r, rule_count)?;
        if rules.len() != rule_count {
            return Err(Error::Truncated("capability rules"));
        }
        let max_custody_chain_length = r.u8("capability max custody chain length")?;
        if max_custody_chain_length == 0 || max_custody_chain_length > MAX_CUSTODY_CHAIN_LENGTH {
            return Err(Error::Malformed(
                "capability max custody chain length (1-7)",
            ));
        }
        let mut custody = Vec::new();
        loop {
            let to = Address::from_bytes(&r.array("capability custody to")?);
            if to.to_u64() == 0 {
                break;
            }
            if custody.len() >= usize::from(max_custody_chain_length) {
                return Err(Error::TooLarge("capability custody chain"));
            }
            custody.push(CustodyEntry {
                to,
                from: Address::from_bytes(&r.array("capability custody from")?),
                signature: read_signature(r)?,
            });
        }
        skip_additional_fields(r)?;
        Ok(Capability {
            network_id,
            timestamp,
            id,
            rules,
            max_custody_chain_length,
            custody,
        })
    }

    /// Parses one capability at the start of `buf`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Capability, usize)> {
        let mut r = Reader::new(buf);
        let cap = Self::read(&mut r)?;
        Ok((cap, r.position()))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        self.put_fields(out);
        let chain = self
            .custody
            .iter()
            .take(self.chain_limit())
            .take_while(|e| e.to.to_u64() != 0);
        for entry in chain {
            out.put_bytes(&entry.to.to_bytes());
            out.put_bytes(&entry.from.to_bytes());
            emit_signature(&entry.signature, out);
        }
        out.put_bytes(&[0u8; 5]);
        out.put_u16(0);
    }

    fn put_fields(&self, out: &mut Vec<u8>) {
        let rules = self
            .rules
            .get(..MAX_CAPABILITY_RULES)
            .unwrap_or(&self.rules);
        out.put_u64(self.network_id.0);
        out.put_i64(self.timestamp);
        out.put_u32(self.id);
        // At most 64 rules are written, so the count fits.
        out.put_u16(rules.len() as u16);
        emit_rules(rules, out);
        out.put_u8(self.max_custody_chain_length);
    }

    /// The bytes every custody signature covers (7.7; the chain itself is left out).
    pub fn signed_message(&self) -> Vec<u8> {
        super::signed_message(|out| self.put_fields(out))
    }

    /// Appends a custody entry `from -> to` signed by `from`; `false` (unchanged) without a
    /// secret or when the chain is full.
    pub fn sign(&mut self, from: &Identity, to: Address) -> bool {
        if to.to_u64() == 0 || self.custody.len() >= self.chain_limit() {
            return false;
        }
        match from.sign(&self.signed_message()) {
            Some(signature) => {
                self.custody.push(CustodyEntry {
                    to,
                    from: from.address(),
                    signature,
                });
                true
            }
            None => false,
        }
    }

    /// Checks the chain as the reference does: the first link must come from the network's
    /// controller, each later link from the previous holder, and every signature must verify
    /// with the identity `identity_of` returns for its signer.
    pub fn verify_chain(
        &self,
        mut identity_of: impl FnMut(Address) -> Option<Identity>,
    ) -> ChainVerification {
        let Some(first) = self.custody.first() else {
            return ChainVerification::Invalid;
        };
        if first.from != self.network_id.controller() {
            return ChainVerification::Invalid;
        }
        let message = self.signed_message();
        let chain = self
            .custody
            .iter()
            .take(usize::from(MAX_CUSTODY_CHAIN_LENGTH));
        let mut previous_to: Option<Address> = None;
        for entry in chain {
            if previous_to.is_some_and(|p| p != entry.from) {
                return ChainVerification::Invalid;
            }
            let Some(signer) = identity_of(entry.from) else {
                return ChainVerification::NeedIdentity(entry.from);
            };
            if signer.address() != entry.from || !signer.verify(&message, &entry.signature) {
                return ChainVerification::Invalid;
            }
            previous_to = Some(entry.to);
        }
        ChainVerification::Valid
    }

    /// True iff the chain is valid with `controller` as its only signer (what a controller
    /// issues: one link from the controller to the member).
    pub fn verify(&self, controller: &Identity) -> bool {
        let found = |a: Address| (a == controller.address()).then(|| controller.clone());
        self.verify_chain(found) == ChainVerification::Valid
    }
}

impl Credential for Capability {
    const TYPE: CredentialType = CredentialType::Capability;
    fn read_from(r: &mut Reader<'_>) -> Result<Self> {
        Capability::read(r)
    }
    fn emit_to(&self, out: &mut Vec<u8>) {
        self.emit(out);
    }
    fn credential_network_id(&self) -> NetworkId {
        self.network_id
    }
    fn credential_timestamp(&self) -> i64 {
        self.timestamp
    }
    fn credential_id(&self) -> u32 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::wire::rules::RuleKind;
    use crate::wire::rules::tests::arb_rule;
    use proptest::prelude::*;

    const NWID: NetworkId = NetworkId(0x7c2dfee12c000001);

    fn sample() -> Capability {
        Capability::new(
            NWID,
            1_700_000_000_000,
            3,
            1,
            vec![Rule::new(RuleKind::MatchEthertype(0x0800)), Rule::accept()],
        )
    }

    #[test]
    fn sign_verify_and_layout() {
        let (a, b) = identities();
        let mut cap = sample();
        assert!(!cap.verify(&a), "unsigned");
        assert!(!cap.sign(&a.to_public(), b.address()));
        assert!(cap.sign(&a, b.address()));
        assert!(!cap.sign(&a, b.address()), "chain of length 1 is full");
        assert!(cap.verify(&a));
        assert!(!cap.verify(&b));
        assert_eq!(cap.issued_to(), b.address());
        let mut out = Vec::new();
        cap.emit(&mut out);
        let rules_len = 4 + 2;
        assert_eq!(out.len(), 22 + rules_len + 1 + (10 + 3 + 96) + 5 + 2);
        assert_eq!(Capability::parse(&out).unwrap(), (cap.clone(), out.len()));
        for len in 0..out.len() {
            assert!(Capability::parse(&out[..len]).is_err(), "{len}");
        }
        let mut forged = cap.clone();
        forged.rules.pop();
        assert!(!forged.verify(&a));
    }

    #[test]
    fn chains() {
        let (a, b) = identities();
        let mut cap = Capability::new(NWID, 1, 1, 3, Vec::new());
        assert!(cap.sign(&a, b.address()));
        assert!(cap.sign(&b, Address::from_u64(0x1122334455)));
        let lookup = |addr: Address| {
            [a.clone(), b.clone()]
                .into_iter()
                .find(|i| i.address() == addr)
        };
        assert_eq!(cap.verify_chain(lookup), ChainVerification::Valid);
        assert_eq!(
            cap.verify_chain(|x| (x == a.address()).then(|| a.clone())),
            ChainVerification::NeedIdentity(b.address())
        );
        // A broken chain: the second link is not from the first link's holder.
        let mut broken = cap.clone();
        broken.custody[1].from = Address::from_u64(0x99);
        assert_eq!(broken.verify_chain(lookup), ChainVerification::Invalid);
        // A chain that does not start at the controller.
        let mut rogue = Capability::new(NWID, 1, 1, 3, Vec::new());
        assert!(rogue.sign(&b, a.address()));
        assert_eq!(rogue.verify_chain(lookup), ChainVerification::Invalid);
    }

    #[test]
    fn caps_are_enforced() {
        let (a, b) = identities();
        let mut cap = sample();
        cap.sign(&a, b.address());
        let mut out = Vec::new();
        cap.emit(&mut out);
        // Rule count above 64.
        let mut bad = out.clone();
        bad[20..22].copy_from_slice(&65u16.to_be_bytes());
        assert!(matches!(Capability::parse(&bad), Err(Error::TooLarge(_))));
        // Chain length byte 0 and 8.
        let mccl_at = 22 + 6;
        for v in [0u8, 8] {
            let mut bad = out.clone();
            bad[mccl_at] = v;
            assert!(matches!(Capability::parse(&bad), Err(Error::Malformed(_))));
        }
        // More custody entries than the declared chain length.
        let mut long = Capability::new(NWID, 1, 1, 2, Vec::new());
        long.sign(&a, b.address());
        long.sign(&b, a.address());
        let mut out = Vec::new();
        long.emit(&mut out);
        out[22] = 1;
        assert!(matches!(Capability::parse(&out), Err(Error::TooLarge(_))));
    }

    fn arb_capability() -> impl Strategy<Value = Capability> {
        (
            (any::<u64>(), any::<i64>(), any::<u32>()),
            proptest::collection::vec(arb_rule(), 0..8),
            1..=MAX_CUSTODY_CHAIN_LENGTH,
            proptest::collection::vec(
                (arb_nonzero_address(), arb_address(), arb_signature()),
                0..=usize::from(MAX_CUSTODY_CHAIN_LENGTH),
            ),
        )
            .prop_map(|((n, timestamp, id), rules, mccl, custody)| Capability {
                network_id: NetworkId(n),
                timestamp,
                id,
                rules,
                max_custody_chain_length: mccl,
                custody: custody
                    .into_iter()
                    .take(usize::from(mccl))
                    .map(|(to, from, signature)| CustodyEntry {
                        to,
                        from,
                        signature,
                    })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok((cap, _)) = Capability::parse(&bytes) {
                let mut out = Vec::new();
                cap.emit(&mut out);
                prop_assert_eq!(Capability::parse(&out).unwrap().0, cap);
            }
        }

        #[test]
        fn round_trip(cap in arb_capability()) {
            let mut out = Vec::new();
            cap.emit(&mut out);
            prop_assert_eq!(Capability::parse(&out).unwrap(), (cap, out.len()));
        }
    }
}
