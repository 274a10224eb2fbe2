//! Stale presence after a crash, one node, no Redis: a vgate SIGKILLed and restarted on a
//! broker that keeps retained messages publishes offline (reason `gateway_restart`) the
//! vehicles that were online and did not come back within the grace period, and leaves the
//! ones that did online. Measured from outside: the retained `{p}/v1/{vid}/status` a new
//! platform client receives.

mod support;

use std::time::Duration;

use jt808::Version;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(15);

/// The retained presence of `phone` a new subscriber gets: (online, reason).
async fn retained(port: u16, phone: &str) -> (bool, String) {
    let mut sub = Subscriber::connect(port, &[&format!("vgate/v1/{phone}/status")]).await;
    let r = sub.next_on("/status", WAIT).await;
    assert!(r.retain, "a retained presence");
    (
        r.json["data"]["online"].as_bool().unwrap_or(false),
        r.json["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_gateway_publishes_offline_after_the_grace_the_vehicles_that_did_not_come_back() {
    let Some(m) = Mosquitto::start() else { return };
    let opts = VgateOptions {
        mqtt_url: Some(m.url()),
        extra_env: vec![("VGATE_CLUSTER__RESTART_GRACE_S".into(), "3".into())],
        ..Default::default()
    };
    let mut vgate = Vgate::start(opts.clone());
    let (back, gone) = ("013920000001", "013920000002");
    let _a = support::online_terminal(vgate.addr("jt808"), back, Version::V2013).await;
    let _b = support::online_terminal(vgate.addr("jt808"), gone, Version::V2013).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(retained(m.port, gone).await, (true, "login".into()));
    vgate.kill();
    drop((_a, _b));
    // Killed: nothing said the vehicles left.
    assert_eq!(
        retained(m.port, gone).await,
        (true, "login".into()),
        "stale before the restart"
    );
    let dir = std::mem::replace(&mut vgate.data_dir, tempfile::tempdir().unwrap());
    let vgate = Vgate::start_in(opts, dir);
    // One vehicle comes back within the grace period.
    let _a = support::online_terminal(vgate.addr("jt808"), back, Version::V2013).await;
    assert!(
        vgate.wait_log(
            "published offline (gateway_restart)",
            Duration::from_secs(20)
        ),
        "the grace period ends"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        retained(m.port, gone).await,
        (false, "gateway_restart".into())
    );
    assert_eq!(
        retained(m.port, back).await,
        (true, "login".into()),
        "the one that came back stays online"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_leaves_nothing_to_clear_at_the_next_start() {
    let Some(m) = Mosquitto::start() else { return };
    let opts = VgateOptions {
        mqtt_url: Some(m.url()),
        extra_env: vec![("VGATE_CLUSTER__RESTART_GRACE_S".into(), "1".into())],
        ..Default::default()
    };
    let mut vgate = Vgate::start(opts.clone());
    let phone = "013920000003";
    let t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(vgate.terminate().success());
    drop(t);
    assert_eq!(retained(m.port, phone).await, (false, "shutdown".into()));
    let journal = vgate.data_dir.path().join(gateway::stale::JOURNAL);
    assert!(
        gateway::stale::read(&journal).unwrap().is_empty(),
        "no vehicle left online in the journal"
    );
    let dir = std::mem::replace(&mut vgate.data_dir, tempfile::tempdir().unwrap());
    let vgate = Vgate::start_in(opts, dir);
    assert!(
        !vgate.wait_log("did not stop cleanly", Duration::from_secs(3)),
        "nothing stale after a clean stop"
    );
    assert_eq!(retained(m.port, phone).await, (false, "shutdown".into()));
}
