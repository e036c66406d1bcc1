//! Unit tests of the forward-spec syntax (`-L`, `-R`, and the `L:` / `R:` form of
//! `FromStr` / `Display`) and of `Target` parsing, good and bad, with their messages.

use std::net::SocketAddr;

use super::{AddressError, ForwardSpec, Target};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn local_specs() {
    let cases = [
        (
            "8080:example.com:80",
            "127.0.0.1:8080",
            Target::Name("example.com".into(), 80),
        ),
        (
            "0.0.0.0:8080:10.0.0.5:22",
            "0.0.0.0:8080",
            Target::Addr(addr("10.0.0.5:22")),
        ),
        (
            "[::1]:8080:[fd00::1]:80",
            "[::1]:8080",
            Target::Addr(addr("[fd00::1]:80")),
        ),
        ("*:1:h:2", "0.0.0.0:1", Target::Name("h".into(), 2)),
        (":1:h:2", "0.0.0.0:1", Target::Name("h".into(), 2)),
        (
            "localhost:65535:h:65535",
            "127.0.0.1:65535",
            Target::Name("h".into(), 65535),
        ),
    ];
    for (spec, bind, target) in cases {
        let expected = ForwardSpec::Local {
            bind: addr(bind),
            target,
        };
        assert_eq!(ForwardSpec::parse_local(spec), Ok(expected), "{spec}");
    }
}

#[test]
fn remote_specs_default_to_every_managed_address() {
    assert_eq!(
        ForwardSpec::parse_remote("80:localhost:8080"),
        Ok(ForwardSpec::Remote {
            listen: addr("0.0.0.0:80"),
            target: Target::Name("localhost".into(), 8080),
        })
    );
    assert_eq!(
        ForwardSpec::parse_remote("[fd00::5]:80:127.0.0.1:8080"),
        Ok(ForwardSpec::Remote {
            listen: addr("[fd00::5]:80"),
            target: Target::Addr(addr("127.0.0.1:8080")),
        })
    );
}

#[test]
fn bad_specs_name_the_problem() {
    let local_cases = [
        ("0:h:80", "listening port: port 0 is not allowed"),
        (
            "8080:h:70000",
            "target port: port 70000 is out of range 1-65535",
        ),
        ("8080:h:http", "target port: \"http\" is not a port number"),
        ("8080::80", "target host: empty host"),
        ("8080:h", "expected [bind_address:]port:host:hostport"),
        ("a:b:c:d:e", "found 5 ':'-separated fields"),
        ("[::1:8080:h:80", "unclosed '['"),
        ("[10.0.0.1]:8080:h:80", "only IPv6 addresses go in brackets"),
        (
            "8080:[example.com]:80",
            "only IPv6 addresses go in brackets",
        ),
        (
            "example.com:8080:h:80",
            "must be an IP address, localhost or '*'",
        ),
        ("8080:bad host:80", "target host: invalid host"),
        ("8080:h:", "target port: missing port"),
    ];
    for (spec, problem) in local_cases {
        let error = ForwardSpec::parse_local(spec).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(problem), "{spec}: {message}");
        assert!(message.contains(spec), "{message} should quote the spec");
    }
    let error = ForwardSpec::parse_remote("localhost:80:h:80").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("network address \"localhost\" must be an IP address or '*'")
    );
}

#[test]
fn display_and_from_str_round_trip() {
    let specs = [
        ForwardSpec::parse_local("[::1]:8080:[fd00::1]:80").unwrap(),
        ForwardSpec::parse_local("8080:example.com:80").unwrap(),
        ForwardSpec::parse_remote("2222:127.0.0.1:22").unwrap(),
    ];
    for spec in specs {
        let text = spec.to_string();
        assert_eq!(text.parse::<ForwardSpec>(), Ok(spec), "{text}");
    }
    assert_eq!(
        ForwardSpec::parse_local("8080:example.com:80")
            .unwrap()
            .to_string(),
        "L:127.0.0.1:8080:example.com:80"
    );
    assert!("X:1:h:2".parse::<ForwardSpec>().is_err());
}

#[test]
fn targets_parse_and_display() {
    assert_eq!(
        "h.example:443".parse(),
        Ok(Target::Name("h.example".into(), 443))
    );
    assert_eq!(
        "[fd00::1]:80".parse(),
        Ok(Target::Addr(addr("[fd00::1]:80")))
    );
    assert_eq!("10.0.0.1:80".parse(), Ok(Target::Addr(addr("10.0.0.1:80"))));
    assert_eq!(
        "fd00::1:80".parse::<Target>(),
        Err(AddressError::UnbracketedIpv6("fd00::1:80".into()))
    );
    assert_eq!(
        "h".parse::<Target>(),
        Err(AddressError::MissingPort("h".into()))
    );
    assert_eq!(":80".parse::<Target>(), Err(AddressError::EmptyHost));
    assert_eq!("h:00080".parse(), Ok(Target::Name("h".into(), 80)));
    assert_eq!("h:000".parse::<Target>(), Err(AddressError::PortZero));
    assert_eq!(
        "h:99999999999999999999".parse::<Target>(),
        Err(AddressError::PortOutOfRange("99999999999999999999".into()))
    );
    assert_eq!(
        "a..b:1".parse::<Target>(),
        Err(AddressError::InvalidHost("a..b".into()))
    );
    assert_eq!(Target::Name("h".into(), 1).to_string(), "h:1");
    assert_eq!(Target::Addr(addr("[::1]:2")).to_string(), "[::1]:2");
    let long_label = format!("{}.com:1", "a".repeat(64));
    assert!(long_label.parse::<Target>().is_err());
}
