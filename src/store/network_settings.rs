//! Per-network local settings, `networks.d/<nwid>.local.conf`: what the local side lets a
//! network's controller change on this host. The file is `key=value` lines as the reference
//! writes them (`allowManaged=1`, ...); unknown keys and malformed lines are ignored, so a
//! file from a newer version still loads.

/// What a network may configure here (the reference's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSettings {
    /// Apply managed addresses and routes at all.
    pub allow_managed: bool,
    /// Allow managed addresses and routes that are globally routable (not private ranges).
    pub allow_global: bool,
    /// Allow the network to set a default route.
    pub allow_default: bool,
    /// Allow the network to set DNS (recorded; DNS configuration is not applied yet).
    #[serde(rename = "allowDNS")]
    pub allow_dns: bool,
}

impl Default for NetworkSettings {
    fn default() -> NetworkSettings {
        NetworkSettings {
            allow_managed: true,
            allow_global: false,
            allow_default: false,
            allow_dns: false,
        }
    }
}

impl NetworkSettings {
    /// Parses the file's text; anything unrecognised keeps its default.
    pub fn parse(text: &str) -> NetworkSettings {
        let mut settings = NetworkSettings::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = match value.trim() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => continue,
            };
            match key.trim() {
                "allowManaged" => settings.allow_managed = value,
                "allowGlobal" => settings.allow_global = value,
                "allowDefault" => settings.allow_default = value,
                "allowDNS" => settings.allow_dns = value,
                _ => {}
            }
        }
        settings
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let bit = |b: bool| if b { 1 } else { 0 };
        format!(
            "allowManaged={}\nallowGlobal={}\nallowDefault={}\nallowDNS={}\n",
            bit(self.allow_managed),
            bit(self.allow_global),
            bit(self.allow_default),
            bit(self.allow_dns)
        )
    }
}
