//! Counter structs as JSON objects `{"name": value, ...}` for `/ztrs/counters`. The node's
//! frame and network counters have no serde support, so they are destructured here field by
//! field: a counter added to them later breaks this build until it is listed, instead of
//! silently missing from the API.

use serde_json::{Map, Value};

use crate::node::{FrameCounters, NetworkCounters};

/// `(name, value)` pairs as a JSON object.
pub(crate) fn counter_object(pairs: impl Iterator<Item = (&'static str, u64)>) -> Value {
    Value::Object(
        pairs
            .map(|(name, value)| (name.to_owned(), Value::from(value)))
            .collect::<Map<String, Value>>(),
    )
}

/// Destructures `$value` of type `$kind` completely (no `..`) into a JSON object.
macro_rules! every_field {
    ($value:expr, $kind:ident { $($field:ident),* $(,)? }) => {{
        let $kind { $($field),* } = $value;
        counter_object([$((stringify!($field), $field)),*].into_iter())
    }};
}

/// The frame layer's counters.
pub(crate) fn frame_counters(counters: &FrameCounters) -> Value {
    every_field!(
        *counters,
        FrameCounters {
            tags_accepted,
            tags_refused,
            unicast_sent,
            multicast_sent,
            delivered,
            local_malformed,
            local_not_configured,
            local_too_large,
            local_bridging_unsupported,
            local_unknown_destination,
            broadcast_disabled,
            dropped_by_rules_outbound,
            dropped_by_rules_inbound,
            unknown_network,
            membership_refused,
            bad_mac,
            multicast_refused,
            credentials_sent,
            coms_accepted,
            coms_refused,
            revocations_accepted,
            revocations_refused,
            credentials_rate_limited,
            likes_recorded,
            likes_refused,
            likes_sent,
            gathers_sent,
            gathers_answered,
            multicast_unsent,
        }
    )
}

/// The network layer's counters (config requests, chunks, controller answers).
pub(crate) fn network_counters(counters: &NetworkCounters) -> Value {
    every_field!(
        *counters,
        NetworkCounters {
            config_requests_sent,
            config_requests_failed,
            configs_accepted,
            configs_rejected,
            chunks_rejected,
            not_from_controller,
            unknown_network,
            pushes_acknowledged,
            configs_pushed,
            requests_answered,
            requests_refused,
            requests_ignored,
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_named_with_its_value() {
        let frames = FrameCounters {
            bad_mac: 3,
            multicast_unsent: 7,
            ..FrameCounters::default()
        };
        let json = frame_counters(&frames);
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 29);
        assert_eq!(object["bad_mac"], 3);
        assert_eq!(object["multicast_unsent"], 7);
        assert_eq!(object["delivered"], 0);

        let networks = NetworkCounters {
            requests_ignored: 5,
            ..NetworkCounters::default()
        };
        let json = network_counters(&networks);
        assert_eq!(json.as_object().unwrap().len(), 12);
        assert_eq!(json["requests_ignored"], 5);
    }

    #[test]
    fn pairs_become_an_object() {
        let json = counter_object([("a", 1), ("b", 2)].into_iter());
        assert_eq!(json, serde_json::json!({"a": 1, "b": 2}));
    }
}
