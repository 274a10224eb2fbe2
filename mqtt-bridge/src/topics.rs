//! Topic names (contract §2), built in one place so no other file formats a topic.
//!
//! Uplink: `{p}/v1/{vid}/{type}` (`cmd_result` on `cmd/result`) and the gateway's own
//! `{p}/gateway/{node}/status`. Downlink subscriptions: `{p}/v1/+/cmd` and
//! `{p}/broadcast/+/cmd`, parsed back into a [`Target`].

use codecs::EventKind;

use crate::BridgeError;

/// Who a downstream command is for, from the topic it arrived on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `{p}/v1/{vid}/cmd`: one vehicle.
    Vehicle(String),
    /// `{p}/broadcast/{group}/cmd`: every vehicle of a group (`all`, `jt808`, `gbt32960`, named).
    Group(String),
}

/// The topics of one gateway: a prefix and a node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    node: String,
    /// Cluster mode: the shared subscription group of the command filters.
    share: Option<String>,
}

impl Topics {
    /// Topics under `prefix` (`{p}`) for gateway node `node`.
    pub fn new(prefix: &str, node: &str) -> Self {
        Topics {
            prefix: prefix.trim_end_matches('/').to_owned(),
            node: node.to_owned(),
            share: None,
        }
    }

    /// The same topics, with the command filters taken as shared subscription `group`
    /// (`$share/{group}/...`: the broker gives each command to one subscriber of the group).
    /// Commands still arrive on their own topics, so [`Topics::parse_command`] is unchanged.
    pub fn shared(mut self, group: &str) -> Self {
        self.share = Some(group.to_owned());
        self
    }

    /// `{p}/v1/{vid}/{suffix}` for an event of `kind`; refuses ids that are not one topic level.
    pub fn event(&self, vid: &str, kind: EventKind) -> Result<String, BridgeError> {
        codecs::vehicle_id::validate(vid).map_err(|_| BridgeError::BadVehicleId(vid.to_owned()))?;
        Ok(format!("{}/v1/{vid}/{}", self.prefix, kind.topic_suffix()))
    }

    /// `{p}/gateway/{node}/status`, the gateway's retained presence (and last will).
    pub fn gateway_status(&self) -> String {
        format!("{}/gateway/{}/status", self.prefix, self.node)
    }

    /// `{p}/gateway/{node}/cmd/result`: results that cannot go on a vehicle's topic (a
    /// command for an impossible vehicle id, a broadcast to an unknown group).
    pub fn gateway_results(&self) -> String {
        format!("{}/gateway/{}/cmd/result", self.prefix, self.node)
    }

    /// The two command subscriptions: `{p}/v1/+/cmd` and `{p}/broadcast/+/cmd`.
    pub fn command_filters(&self) -> [String; 2] {
        let share = self
            .share
            .as_ref()
            .map(|g| format!("$share/{g}/"))
            .unwrap_or_default();
        [
            format!("{share}{}/v1/+/cmd", self.prefix),
            format!("{share}{}/broadcast/+/cmd", self.prefix),
        ]
    }

    /// The target of a command topic, or `None` when the topic is not one of ours.
    pub fn parse_command(&self, topic: &str) -> Option<Target> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        let mut levels = rest.split('/');
        let (kind, name, cmd, end) = (
            levels.next()?,
            levels.next()?,
            levels.next()?,
            levels.next(),
        );
        if cmd != "cmd" || end.is_some() || name.is_empty() {
            return None;
        }
        match kind {
            "v1" => Some(Target::Vehicle(name.to_owned())),
            "broadcast" => Some(Target::Group(name.to_owned())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_topics_follow_the_contract() {
        let t = Topics::new("vgate", "node-1");
        let topic = |k| t.event("013800138000", k).expect("valid id");
        assert_eq!(topic(EventKind::Location), "vgate/v1/013800138000/location");
        assert_eq!(topic(EventKind::Status), "vgate/v1/013800138000/status");
        assert_eq!(
            topic(EventKind::CmdResult),
            "vgate/v1/013800138000/cmd/result"
        );
        assert_eq!(t.gateway_status(), "vgate/gateway/node-1/status");
        assert_eq!(
            t.command_filters(),
            ["vgate/v1/+/cmd", "vgate/broadcast/+/cmd"]
        );
        assert_eq!(
            t.clone().shared("vgate").command_filters(),
            [
                "$share/vgate/vgate/v1/+/cmd",
                "$share/vgate/vgate/broadcast/+/cmd"
            ]
        );
    }

    #[test]
    fn vehicle_id_with_a_topic_separator_is_refused() {
        let t = Topics::new("vgate", "n");
        assert_eq!(
            t.event("a/b", EventKind::Location),
            Err(BridgeError::BadVehicleId("a/b".into()))
        );
        assert!(t.event("+", EventKind::Location).is_err());
    }

    #[test]
    fn command_topics_parse_into_targets_and_others_do_not() {
        let t = Topics::new("fleet/vgate", "n");
        assert_eq!(
            t.parse_command("fleet/vgate/v1/LSVAB123/cmd"),
            Some(Target::Vehicle("LSVAB123".into()))
        );
        assert_eq!(
            t.parse_command("fleet/vgate/broadcast/jt808/cmd"),
            Some(Target::Group("jt808".into()))
        );
        assert_eq!(t.parse_command("fleet/vgate/v1/X/cmd/result"), None);
        assert_eq!(t.parse_command("fleet/vgate/v1/X/location"), None);
        assert_eq!(t.parse_command("other/v1/X/cmd"), None);
        assert_eq!(t.parse_command("fleet/vgatev1/X/cmd"), None);
        assert_eq!(t.parse_command("fleet/vgate/v1//cmd"), None);
    }
}
