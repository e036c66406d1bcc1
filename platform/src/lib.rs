//! `ztrs-platform`: the only crate of ztrs that touches the operating system directly.
//!
//! It will own TUN devices, interface addresses/routes/MTU (rtnetlink on Linux), UDP batching
//! (recvmmsg/sendmmsg) and privilege handling. Everything above it is portable. It is empty
//! until the dataplane issues need it: the foundation (identities, crypto, codecs) is pure.
