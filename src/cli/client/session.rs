//! The CLI's connection to the local API: the reference switches (`-j`, `-D<home>`,
//! `-p<port>`, `-T<token>`, `-H<ip>`), how a missing port or token is found in the home
//! (`zerotier-one.port`, `authtoken.secret`, then `~/.zeroTierOneAuthToken`), and the
//! request helpers every verb uses, which print the reference's error lines and pick the
//! exit status when the service fails or cannot be reached.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::http::{Endpoint, Method, Response};
use super::output::{self, BAD_ARGUMENTS, FAILED, Status};
use crate::cli::files::read_bounded;
use crate::cli::service::DEFAULT_HOME;

/// Small files only: a port number or a 24-character token.
const MAX_SMALL_FILE: u64 = 4096;

/// The switches shared by every client verb.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectionArgs {
    /// Display full raw JSON output
    #[arg(short = 'j', global = true)]
    pub json: bool,
    /// ZeroTier home path for parameter auto-detect [default: /var/lib/zerotier-one]
    #[arg(short = 'D', value_name = "PATH", global = true)]
    pub home: Option<PathBuf>,
    /// HTTP port (default: auto, from <home>/zerotier-one.port)
    #[arg(short = 'p', value_name = "PORT", global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Authentication token (default: auto, from <home>/authtoken.secret)
    #[arg(short = 'T', value_name = "TOKEN", global = true)]
    pub token: Option<String>,
    /// API host address (default: 127.0.0.1)
    #[arg(short = 'H', value_name = "IP", hide = true, global = true)]
    pub host: Option<IpAddr>,
}

/// A resolved connection: where the API is, and how the caller wants answers shown.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub endpoint: Endpoint,
    pub json: bool,
}

impl Session {
    /// Resolves the port and token, reading the home for what the switches leave out.
    /// On failure prints the reference's message (prefixed with `program`) and gives 2.
    pub(crate) fn open(program: &str, args: &ConnectionArgs) -> Result<Session, Status> {
        let home = args
            .home
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
        let port = match args.port {
            Some(port) => port,
            None => read_port(&home).ok_or_else(|| {
                output::err(&format!(
                    "{program}: missing port and zerotier-one.port not found in {}\n",
                    home.display()
                ));
                BAD_ARGUMENTS
            })?,
        };
        let token = match args.token.clone().filter(|t| !t.is_empty()) {
            Some(token) => token,
            None => read_token(&home).ok_or_else(|| {
                output::err(&format!(
                    "{program}: authtoken.secret not found or readable in {} (try again as root)\n",
                    home.display()
                ));
                BAD_ARGUMENTS
            })?,
        };
        Ok(Session {
            endpoint: Endpoint {
                ip: args.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port,
                token,
            },
            json: args.json,
        })
    }

    /// Sends a request and returns the answer when it is a 200. Otherwise prints
    /// `<status> <verb> <body>` (or the connection failure) and gives 1.
    pub(crate) fn call(
        &self,
        verb: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Response, Status> {
        match self.endpoint.request(method, path, body) {
            Err(reason) => {
                output::out(&output::connect_error_text(self.endpoint.port, &reason));
                Err(FAILED)
            }
            Ok(response) if response.status == 200 => Ok(response),
            Ok(response) => {
                output::out(&output::http_error_line(
                    response.status,
                    verb,
                    &response.body,
                ));
                Err(FAILED)
            }
        }
    }

    /// `GET path`, parsed as JSON; errors are printed as by [`Session::call`], and an
    /// answer that is not JSON as `<status> <verb> invalid JSON response (<why>)`.
    pub(crate) fn get_json(&self, verb: &str, path: &str) -> Result<Value, Status> {
        let response = self.call(verb, Method::Get, path, None)?;
        parse_json(verb, &response)
    }

    /// A request with a JSON body whose answer is parsed as JSON.
    pub(crate) fn send_json(
        &self,
        verb: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Value, Status> {
        let response = self.call(verb, method, path, body)?;
        parse_json(verb, &response)
    }
}

/// Parses a 200 answer's body, printing the reference's error line when it is not JSON.
pub(crate) fn parse_json(verb: &str, response: &Response) -> Result<Value, Status> {
    serde_json::from_str(&response.body).map_err(|e| {
        output::out(&format!(
            "{} {verb} invalid JSON response ({e})\n",
            response.status
        ));
        FAILED
    })
}

/// The port in `<home>/zerotier-one.port`, if it holds a number in 1..=65535.
fn read_port(home: &Path) -> Option<u16> {
    let text = read_bounded(&home.join("zerotier-one.port"), MAX_SMALL_FILE).ok()?;
    let port: u16 = std::str::from_utf8(&text).ok()?.trim().parse().ok()?;
    (port != 0).then_some(port)
}

/// The token from `<home>/authtoken.secret`, else `~/.zeroTierOneAuthToken` (as the
/// reference does on Linux for users who keep a copy of the token).
fn read_token(home: &Path) -> Option<String> {
    let from_file = |path: PathBuf| -> Option<String> {
        let bytes = read_bounded(&path, MAX_SMALL_FILE).ok()?;
        let token = String::from_utf8(bytes).ok()?.trim().to_owned();
        (!token.is_empty()).then_some(token)
    };
    from_file(home.join("authtoken.secret")).or_else(|| {
        let user_home = std::env::var_os("HOME")?;
        from_file(Path::new(&user_home).join(".zeroTierOneAuthToken"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(home: &Path) -> ConnectionArgs {
        ConnectionArgs {
            json: false,
            home: Some(home.to_path_buf()),
            port: None,
            token: None,
            host: None,
        }
    }

    #[test]
    fn port_and_token_come_from_the_home() {
        let dir = std::env::temp_dir().join(format!("ztrs-cli-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Session::open("t", &args(&dir)).unwrap_err(), BAD_ARGUMENTS);
        std::fs::write(dir.join("zerotier-one.port"), "9994\n").unwrap();
        std::fs::write(dir.join("authtoken.secret"), "abc123\n").unwrap();
        let session = Session::open("t", &args(&dir)).unwrap();
        assert_eq!(session.endpoint.port, 9994);
        assert_eq!(session.endpoint.token, "abc123");
        assert_eq!(session.endpoint.ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        // Switches win over the files.
        let mut explicit = args(&dir);
        explicit.port = Some(1234);
        explicit.token = Some("tok".into());
        let session = Session::open("t", &explicit).unwrap();
        assert_eq!(
            (session.endpoint.port, session.endpoint.token.as_str()),
            (1234, "tok")
        );
        // A port file that is not a port is as good as none.
        std::fs::write(dir.join("zerotier-one.port"), "0").unwrap();
        assert_eq!(Session::open("t", &args(&dir)).unwrap_err(), BAD_ARGUMENTS);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
