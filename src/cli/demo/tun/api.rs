//! The daemons' control API, reached from outside their namespaces: each request runs on a
//! short-lived thread that enters the daemon's network namespace and talks to
//! `127.0.0.1:<port>` there with the CLI's HTTP client (bounded in size and time).

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use crate::cli::client::http::{Endpoint, Method};

/// Where one daemon's API listens.
#[derive(Clone, Debug)]
pub(super) struct Api {
    pub(super) namespace: String,
    pub(super) port: u16,
    pub(super) token: String,
}

impl Api {
    /// `GET path`, answering the JSON body of a 2xx answer.
    pub(super) fn get(&self, path: &str) -> Result<Value, String> {
        self.call(Method::Get, path, None)
    }

    /// `POST path` with a JSON body, answering the JSON body of a 2xx answer.
    pub(super) fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call(Method::Post, path, Some(body.to_string()))
    }

    /// One request on a thread inside the namespace (sockets belong to the namespace of the
    /// thread that opens them); `Err` names the request and why it failed (no answer, or
    /// not 2xx).
    fn call(&self, method: Method, path: &str, body: Option<String>) -> Result<Value, String> {
        let what = format!("{} {path} in {}", method.as_str(), self.namespace);
        let namespace = self.namespace.clone();
        let endpoint = Endpoint {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: self.port,
            token: self.token.clone(),
        };
        let path_owned = path.to_owned();
        let worker = std::thread::Builder::new()
            .name("ztrs-demo-api".to_owned())
            .spawn(move || {
                ztrs_platform::netns::enter(&namespace).map_err(|e| e.to_string())?;
                endpoint
                    .request(method, &path_owned, body.as_deref())
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("cannot start an API thread: {e}"))?;
        let response = worker
            .join()
            .map_err(|_| "the API thread panicked".to_owned())?
            .map_err(|e| format!("{what}: {e}"))?;
        if !(200..300).contains(&response.status) {
            return Err(format!(
                "{what}: HTTP {}: {}",
                response.status,
                response.body.trim()
            ));
        }
        serde_json::from_str(&response.body)
            .map_err(|e| format!("{what}: answer is not JSON ({e})"))
    }
}
