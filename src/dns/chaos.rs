//! chaos: the CHAOS-class TXT names operators of anycast nodes ask
//! (`dig CH TXT id.server`): `id.server.` and `hostname.bind.` give
//! `server.nsid`, `version.bind.` and `version.server.` give
//! `server.version`. Unset, or any other CHAOS name: REFUSED, as a server
//! that serves no CHAOS zone answers.

use hickory_proto::rr::RecordType;

use crate::config::ServerConfig;

/// What a CHAOS query gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chaos<'c> {
    /// One TXT record (for TXT and ANY).
    Text(&'c str),
    /// The name is answered, but not with this type: NOERROR, no records.
    NoData,
    Refused,
}

/// The answer for `name` (lower case, fully qualified) and `qtype` in
/// class CH.
pub fn answer<'c>(server: &'c ServerConfig, name: &str, qtype: RecordType) -> Chaos<'c> {
    let text = match name {
        "id.server." | "hostname.bind." => server.nsid.as_deref(),
        "version.bind." | "version.server." => server.version.as_deref(),
        _ => None,
    };
    match (text, qtype) {
        (None, _) => Chaos::Refused,
        (Some(t), RecordType::TXT | RecordType::ANY) => Chaos::Text(t),
        (Some(_), _) => Chaos::NoData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::path::Path;

    fn server(extra: &str) -> ServerConfig {
        let text = format!("[server]\ndns_listen = [\"127.0.0.1:5353\"]\n{extra}\n");
        parse(&text, Path::new("g.toml"), Path::new("."), "")
            .unwrap_or_else(|e| panic!("{e}"))
            .0
            .server
    }

    #[test]
    fn names_map_to_nsid_and_version() {
        let s = server("nsid = \"fra1\"\nversion = \"geosteer 1\"");
        assert_eq!(
            answer(&s, "id.server.", RecordType::TXT),
            Chaos::Text("fra1")
        );
        assert_eq!(
            answer(&s, "hostname.bind.", RecordType::ANY),
            Chaos::Text("fra1")
        );
        assert_eq!(
            answer(&s, "version.bind.", RecordType::TXT),
            Chaos::Text("geosteer 1")
        );
        assert_eq!(
            answer(&s, "version.server.", RecordType::TXT),
            Chaos::Text("geosteer 1")
        );
        assert_eq!(answer(&s, "id.server.", RecordType::A), Chaos::NoData);
        assert_eq!(answer(&s, "authors.bind.", RecordType::TXT), Chaos::Refused);
    }

    #[test]
    fn unset_keys_refuse() {
        let s = server("");
        for name in [
            "id.server.",
            "hostname.bind.",
            "version.bind.",
            "version.server.",
        ] {
            assert_eq!(answer(&s, name, RecordType::TXT), Chaos::Refused, "{name}");
        }
        let s = server("nsid = \"fra1\"");
        assert_eq!(answer(&s, "version.bind.", RecordType::TXT), Chaos::Refused);
        assert_eq!(
            answer(&s, "id.server.", RecordType::TXT),
            Chaos::Text("fra1")
        );
    }
}
