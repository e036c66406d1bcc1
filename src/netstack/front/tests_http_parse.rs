//! Unit tests of the HTTP proxy's parsing: head delimiting, request lines and fields,
//! CONNECT and absolute-form classification, the origin-form head and Basic credentials.

use super::Target;
use super::http_proxy::parse::{
    self, HeadError, ProxyRequest, basic_credentials, classify, find_head_end, origin_head,
    parse_request_head,
};

fn classify_text(head: &str) -> Result<ProxyRequest, HeadError> {
    classify(&parse_request_head(head.as_bytes())?)
}

#[test]
fn head_end_is_found_with_crlf_or_bare_lf_and_across_resumed_scans() {
    let head = b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\nbody";
    assert_eq!(find_head_end(head, 0), Some(head.len() - 4));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest", 0), Some(16));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    assert_eq!(find_head_end(b"", 0), None);
    // Resuming three bytes before the previous end still finds a terminator that straddles.
    let full = b"GET / HTTP/1.1\r\n\r\n";
    assert_eq!(find_head_end(&full[..16], 0), None);
    assert_eq!(find_head_end(full, 16 - 3), Some(full.len()));
    assert_eq!(find_head_end(full, 1000), None);
}

#[test]
fn connect_requests_name_their_target() {
    let request =
        classify_text("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    let expected = Target::Name("example.com".into(), 443);
    assert_eq!(request, Ok(ProxyRequest::Connect { target: expected }));
    let v6 = classify_text("CONNECT [fd00::1]:22 HTTP/1.1\r\n\r\n");
    let expected = Target::Addr("[fd00::1]:22".parse().unwrap());
    assert_eq!(v6, Ok(ProxyRequest::Connect { target: expected }));
    assert!(matches!(
        classify_text("CONNECT example.com HTTP/1.1\r\n\r\n"),
        Err(HeadError::BadTarget(_))
    ));
    assert!(matches!(
        classify_text("CONNECT example.com:0 HTTP/1.1\r\n\r\n"),
        Err(HeadError::BadTarget(_))
    ));
}

#[test]
fn absolute_form_requests_split_into_target_authority_and_path() {
    let request = classify_text("GET http://Example.com:8080/a/b?c=d#frag HTTP/1.1\r\n\r\n");
    assert_eq!(
        request,
        Ok(ProxyRequest::Forward {
            target: Target::Name("Example.com".into(), 8080),
            authority: "Example.com:8080".into(),
            path: "/a/b?c=d".into(),
        })
    );
    let no_path = classify_text("HEAD HTTP://10.0.0.1?q HTTP/1.0\r\n\r\n");
    assert_eq!(
        no_path,
        Ok(ProxyRequest::Forward {
            target: Target::Addr("10.0.0.1:80".parse().unwrap()),
            authority: "10.0.0.1".into(),
            path: "/?q".into(),
        })
    );
    let v6 = classify_text("GET http://[fd00::2]/ HTTP/1.1\r\n\r\n").unwrap();
    let ProxyRequest::Forward { target, .. } = v6 else {
        panic!("not a forward");
    };
    assert_eq!(target, Target::Addr("[fd00::2]:80".parse().unwrap()));
}

#[test]
fn refused_forms_and_their_statuses() {
    let cases = [
        (
            "GET https://example.com/ HTTP/1.1\r\n\r\n",
            HeadError::HttpsAbsoluteForm,
            400,
        ),
        (
            "GET ftp://example.com/ HTTP/1.1\r\n\r\n",
            HeadError::UnsupportedScheme,
            400,
        ),
        (
            "GET /index.html HTTP/1.1\r\n\r\n",
            HeadError::NotAProxyRequest,
            405,
        ),
        (
            "OPTIONS * HTTP/1.1\r\n\r\n",
            HeadError::NotAProxyRequest,
            405,
        ),
        (
            "GET http:///x HTTP/1.1\r\n\r\n",
            HeadError::MissingHost,
            400,
        ),
        (
            "GET http://:80/x HTTP/1.1\r\n\r\n",
            HeadError::MissingHost,
            400,
        ),
        (
            "GET http://u:p@host/ HTTP/1.1\r\n\r\n",
            HeadError::UserInfoInUri,
            400,
        ),
        (
            "GET http://host/ HTTP/2\r\n\r\n",
            HeadError::UnsupportedVersion,
            505,
        ),
        (
            "GET http://host/ FTP/1.0\r\n\r\n",
            HeadError::MalformedRequestLine,
            400,
        ),
        (
            "GET  http://host/ HTTP/1.1\r\n\r\n",
            HeadError::MalformedRequestLine,
            400,
        ),
        (
            "GET http://host/\r\n\r\n",
            HeadError::MalformedRequestLine,
            400,
        ),
        (
            "G(T http://host/ HTTP/1.1\r\n\r\n",
            HeadError::MalformedRequestLine,
            400,
        ),
        (
            "GET http://host/ HTTP/1.1\r\nNo colon\r\n\r\n",
            HeadError::MalformedHeader,
            400,
        ),
        (
            "GET http://host/ HTTP/1.1\r\nBad Name: x\r\n\r\n",
            HeadError::MalformedHeader,
            400,
        ),
        (
            "GET http://host/ HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            HeadError::ObsoleteFolding,
            400,
        ),
        (
            "GET http://host/ HTTP/1.1\r\nA: b\rc\r\n\r\n",
            HeadError::MalformedHeader,
            400,
        ),
    ];
    for (head, error, status) in cases {
        assert_eq!(classify_text(head), Err(error.clone()), "{head:?}");
        assert_eq!(error.status(), status);
    }
    assert!(matches!(
        classify_text("GET http://bad_host!/ HTTP/1.1\r\n\r\n"),
        Err(HeadError::BadTarget(_))
    ));
    assert_eq!(
        parse_request_head(b"GET \xFF HTTP/1.1\r\n\r\n"),
        Err(HeadError::NotUtf8)
    );
}

#[test]
fn fields_are_trimmed_and_found_case_insensitively() {
    let head = parse_request_head(b"GET http://h/ HTTP/1.1\r\nX-One:  spaced \t\r\nx-two:\r\n\r\n")
        .unwrap();
    assert_eq!(head.header("x-one"), Some("spaced"));
    assert_eq!(head.header("X-TWO"), Some(""));
    assert_eq!(head.header("missing"), None);
}

#[test]
fn the_origin_head_drops_hop_by_hop_fields_and_closes() {
    let head = parse_request_head(
        b"PUT http://h:81/p HTTP/1.1\r\nHost: other\r\nConnection: Upgrade, content-length\r\n\
          Upgrade: x\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\n\
          Keep-Alive: 5\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n",
    )
    .unwrap();
    let rewritten = String::from_utf8(origin_head(&head, "h:81", "/p")).unwrap();
    assert_eq!(
        rewritten,
        "PUT /p HTTP/1.1\r\nHost: h:81\r\nContent-Length: 3\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn basic_credentials_decode() {
    // "alice:s3cret", "a:" and "user:pa:ss" (the password may contain ':').
    assert_eq!(
        basic_credentials("Basic YWxpY2U6czNjcmV0"),
        Some((b"alice".to_vec(), b"s3cret".to_vec()))
    );
    assert_eq!(
        basic_credentials("basic YTo="),
        Some((b"a".to_vec(), Vec::new()))
    );
    assert_eq!(
        basic_credentials("BASIC YTo"),
        Some((b"a".to_vec(), Vec::new()))
    );
    assert_eq!(
        basic_credentials("Basic dXNlcjpwYTpzcw=="),
        Some((b"user".to_vec(), b"pa:ss".to_vec()))
    );
    assert_eq!(basic_credentials("Bearer YWxpY2U6czNjcmV0"), None);
    assert_eq!(basic_credentials("Basic !!!!"), None);
    assert_eq!(basic_credentials("Basic YWxpY2U="), None, "no colon");
    assert_eq!(basic_credentials("Basic YWxpY2U6czNjcmV0==="), None);
    assert_eq!(basic_credentials("Basic"), None);
}

#[test]
fn the_head_limit_is_16_kib() {
    assert_eq!(parse::MAX_HEAD_BYTES, 16 * 1024);
}
