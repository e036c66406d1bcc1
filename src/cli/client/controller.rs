//! `ztrs controller ...`: the node's own network controller over the `/controller/...`
//! API. Networks: `create [json]`, `list`, `show`, `set <json>`, `delete`; members:
//! `list`, `show`, `authorize`, `deauthorize`. Lines follow the CLI's `200 <verb> ...`
//! style; objects print as JSON; `-j` prints every answer as JSON.

use serde_json::Value;

use super::http::Method;
use super::networks::is_network_id;
use super::output::{self, BAD_ARGUMENTS, OK, Status};
use super::session::Session;

/// `controller network ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum NetworkCommand {
    /// Create a network with a random id under this node's address; prints its id
    Create {
        /// Network fields as a JSON object, e.g. '{"name":"lab","private":true}'
        fields: Option<String>,
    },
    /// List the controller's network ids
    List,
    /// Print a network object
    Show { nwid: String },
    /// Change fields of a network (a JSON object)
    Set { nwid: String, fields: String },
    /// Delete a network and its members
    Delete { nwid: String },
}

/// `controller member ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MemberCommand {
    /// List a network's members with their revisions
    List { nwid: String },
    /// Print a member object
    Show { nwid: String, address: String },
    /// Authorize a member (creating its record if needed)
    Authorize { nwid: String, address: String },
    /// Deauthorize a member
    Deauthorize { nwid: String, address: String },
}

/// `controller ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ControllerCommand {
    /// Networks of this node's controller
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Members of a controller network
    #[command(subcommand)]
    Member(MemberCommand),
}

fn is_address(text: &str) -> bool {
    text.len() == 10 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks that `text` is a JSON object and returns it compact, or prints why not.
fn json_object(text: &str) -> Result<String, Status> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value.to_string()),
        Ok(_) => {
            output::err("invalid fields: expected a JSON object\n");
            Err(BAD_ARGUMENTS)
        }
        Err(e) => {
            output::err(&format!("invalid fields: {e}\n"));
            Err(BAD_ARGUMENTS)
        }
    }
}

fn check_network(nwid: &str) -> Result<(), Status> {
    if is_network_id(nwid) {
        Ok(())
    } else {
        output::out("invalid network id\n");
        Err(BAD_ARGUMENTS)
    }
}

fn check_member(nwid: &str, address: &str) -> Result<(), Status> {
    check_network(nwid)?;
    if is_address(address) {
        Ok(())
    } else {
        output::out("invalid member address\n");
        Err(BAD_ARGUMENTS)
    }
}

/// Runs a controller verb.
pub(crate) fn run(session: &Session, command: &ControllerCommand) -> Status {
    let result = match command {
        ControllerCommand::Network(network) => run_network(session, network),
        ControllerCommand::Member(member) => run_member(session, member),
    };
    result.err().unwrap_or(OK)
}

/// Prints `value` as JSON with `-j`, else `line`.
fn answer(session: &Session, value: &Value, line: String) {
    if session.json {
        output::out(&format!("{}\n", output::dump(value)));
    } else {
        output::out(&line);
    }
}

fn run_network(session: &Session, command: &NetworkCommand) -> Result<(), Status> {
    match command {
        NetworkCommand::Create { fields } => {
            let body = json_object(fields.as_deref().unwrap_or("{}"))?;
            let verb = "network create";
            let created =
                session.send_json(verb, Method::Post, "/controller/network", Some(&body))?;
            let nwid = output::json_text(created.get("id"), "-");
            answer(session, &created, format!("200 {verb} {nwid}\n"));
        }
        NetworkCommand::List => {
            let verb = "network list";
            let list = session.get_json(verb, "/controller/network")?;
            let lines: String = list
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|nwid| format!("200 {verb} {}\n", output::json_text(Some(nwid), "-")))
                .collect();
            answer(session, &list, lines);
        }
        NetworkCommand::Show { nwid } => {
            check_network(nwid)?;
            let network =
                session.get_json("network show", &format!("/controller/network/{nwid}"))?;
            output::out(&format!("{}\n", output::dump(&network)));
        }
        NetworkCommand::Set { nwid, fields } => {
            check_network(nwid)?;
            let body = json_object(fields)?;
            let verb = "network set";
            let path = format!("/controller/network/{nwid}");
            let network = session.send_json(verb, Method::Post, &path, Some(&body))?;
            answer(session, &network, format!("200 {verb} OK\n"));
        }
        NetworkCommand::Delete { nwid } => {
            check_network(nwid)?;
            let verb = "network delete";
            let path = format!("/controller/network/{nwid}");
            let response = session.call(verb, Method::Delete, &path, None)?;
            if session.json {
                output::out_body(&response.body);
            } else {
                output::out(&format!("200 {verb} OK\n"));
            }
        }
    }
    Ok(())
}

/// The `member list` lines for a `{"<address>": revision}` object, sorted by address.
pub(crate) fn format_member_list(members: &Value) -> String {
    let mut entries: Vec<(&String, &Value)> = members
        .as_object()
        .map(|object| object.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
        .into_iter()
        .map(|(address, revision)| {
            format!(
                "200 member list {address} {}\n",
                output::json_text(Some(revision), "-")
            )
        })
        .collect()
}

fn run_member(session: &Session, command: &MemberCommand) -> Result<(), Status> {
    match command {
        MemberCommand::List { nwid } => {
            check_network(nwid)?;
            let path = format!("/controller/network/{nwid}/member");
            let members = session.get_json("member list", &path)?;
            answer(session, &members, format_member_list(&members));
        }
        MemberCommand::Show { nwid, address } => {
            check_member(nwid, address)?;
            let path = format!("/controller/network/{nwid}/member/{address}");
            let member = session.get_json("member show", &path)?;
            output::out(&format!("{}\n", output::dump(&member)));
        }
        MemberCommand::Authorize { nwid, address } => {
            set_authorized(session, nwid, address, true)?;
        }
        MemberCommand::Deauthorize { nwid, address } => {
            set_authorized(session, nwid, address, false)?;
        }
    }
    Ok(())
}

fn set_authorized(
    session: &Session,
    nwid: &str,
    address: &str,
    authorized: bool,
) -> Result<(), Status> {
    check_member(nwid, address)?;
    let verb = if authorized {
        "member authorize"
    } else {
        "member deauthorize"
    };
    let path = format!("/controller/network/{nwid}/member/{address}");
    let body = serde_json::json!({ "authorized": authorized }).to_string();
    let member = session.send_json(verb, Method::Post, &path, Some(&body))?;
    answer(session, &member, format!("200 {verb} OK\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_list_is_sorted() {
        assert_eq!(
            format_member_list(&json!({"bbbbbbbbbb": 3, "aaaaaaaaaa": 1})),
            "200 member list aaaaaaaaaa 1\n200 member list bbbbbbbbbb 3\n"
        );
        assert_eq!(format_member_list(&json!([])), "");
    }

    #[test]
    fn fields_must_be_an_object() {
        assert_eq!(
            json_object(r#"{ "name": "x" }"#).unwrap(),
            r#"{"name":"x"}"#
        );
        assert_eq!(json_object("[1]").unwrap_err(), BAD_ARGUMENTS);
        assert_eq!(json_object("{").unwrap_err(), BAD_ARGUMENTS);
        assert!(is_address("a1b2c3d4e5"));
        assert!(!is_address("a1b2c3d4e"));
    }
}
