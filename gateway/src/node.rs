//! This node's identity: the `gateway` field of events and the `{node}` topic level.

/// The node id: `VGATE_NODE_ID`, else the host name, made topic-safe.
pub fn default_node_id() -> String {
    let raw = std::env::var("VGATE_NODE_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    sanitize(&raw)
}

/// Replaces every character outside `[A-Za-z0-9_-]` with `-` (an MQTT topic level must not
/// hold `/`, `+`, `#`), and falls back to `vgate` when nothing is left.
pub fn sanitize(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "vgate".to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_and_wildcards_become_dashes() {
        assert_eq!(sanitize("gw.example/1+#"), "gw-example-1--");
        assert_eq!(sanitize(""), "vgate");
    }
}
