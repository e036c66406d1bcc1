//! Fuzz target: the HTTP proxy's request-head parsing.
//!
//! Invariants: no panic; the head end lies inside the input and a scan resumed three bytes
//! before any earlier stopping point finds the same end; the origin-form head generated for
//! an absolute-form request parses again, is origin-form (so never mistaken for a proxy
//! request), ends in `Connection: close` and carries no proxy credentials.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::netstack::front::http_proxy::parse::{self, HeadError, ProxyRequest};

fuzz_target!(|data: &[u8]| {
    let Some(end) = parse::find_head_end(data, 0) else {
        return;
    };
    assert!(end <= data.len());
    for stop in [end / 2, end.saturating_sub(1)] {
        if parse::find_head_end(&data[..stop], 0).is_none() {
            assert_eq!(
                parse::find_head_end(data, stop.saturating_sub(3)),
                Some(end)
            );
        }
    }
    let Ok(head) = parse::parse_request_head(&data[..end]) else {
        return;
    };
    for (_, value) in &head.headers {
        let _ = parse::basic_credentials(value);
    }
    if let Ok(ProxyRequest::Forward {
        authority, path, ..
    }) = parse::classify(&head)
    {
        let rewritten = parse::origin_head(&head, &authority, &path);
        assert_eq!(parse::find_head_end(&rewritten, 0), Some(rewritten.len()));
        let reparsed = parse::parse_request_head(&rewritten).expect("origin head parses");
        assert_eq!(reparsed.header("connection"), Some("close"));
        assert!(reparsed.header("proxy-authorization").is_none());
        assert_eq!(parse::classify(&reparsed), Err(HeadError::NotAProxyRequest));
    }
});
