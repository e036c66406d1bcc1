//! The moon verbs: `listmoons` (the `/moon` array as JSON), `orbit <world id> <seed>`
//! (`POST /moon/<id>` with `{"seed": "<seed>"}`, `200 orbit OK`) and `deorbit <world id>`
//! (`DELETE /moon/<id>`, `200 deorbit OK`).

use serde_json::json;

use super::http::Method;
use super::output::{self, BAD_ARGUMENTS, OK, Status};
use super::session::Session;

/// A non-zero 64-bit hex number (a world id or a seed address), as the reference accepts.
pub(crate) fn nonzero_hex(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 16
        && u64::from_str_radix(text, 16).is_ok_and(|value| value != 0)
}

/// `listmoons`: the moons as JSON, with or without `-j`.
pub(crate) fn listmoons(session: &Session) -> Status {
    match session.get_json("listmoons", "/moon") {
        Ok(moons) => {
            output::out(&format!("{}\n", output::dump(&moons)));
            OK
        }
        Err(code) => code,
    }
}

/// `orbit <world id> <seed>`.
pub(crate) fn orbit(session: &Session, world_id: &str, seed: &str) -> Status {
    if !nonzero_hex(world_id) || !nonzero_hex(seed) {
        output::err("invalid format: orbit <world ID> <seed> (both non-zero hex)\n");
        return BAD_ARGUMENTS;
    }
    let body = json!({ "seed": seed }).to_string();
    match session.call(
        "orbit",
        Method::Post,
        &format!("/moon/{world_id}"),
        Some(&body),
    ) {
        Ok(_) => {
            output::out("200 orbit OK\n");
            OK
        }
        Err(code) => code,
    }
}

/// `deorbit <world id>`.
pub(crate) fn deorbit(session: &Session, world_id: &str) -> Status {
    if !nonzero_hex(world_id) {
        output::err("invalid format: deorbit <world ID> (non-zero hex)\n");
        return BAD_ARGUMENTS;
    }
    match session.call(
        "deorbit",
        Method::Delete,
        &format!("/moon/{world_id}"),
        None,
    ) {
        Ok(response) => {
            if session.json {
                output::out_body(&response.body);
            } else {
                output::out("200 deorbit OK\n");
            }
            OK
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_ids_and_seeds() {
        assert!(nonzero_hex("000000deadbeef00"));
        assert!(nonzero_hex("deadbeef00"));
        assert!(!nonzero_hex("0000000000"));
        assert!(!nonzero_hex(""));
        assert!(!nonzero_hex("xyz"));
        assert!(!nonzero_hex("00000000000000001"));
    }
}
