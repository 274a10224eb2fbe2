//! The changes of the vendored rumqttc (vendor/rumqttc/VENDORED.md) that a test can see,
//! against a real mosquitto: requests already queued are taken together (one write), within
//! the inflight window, also those queued by tasks ready at the same time (change 1); and
//! requests still queued when a connection breaks are neither lost nor sent outside the
//! inflight window after the reconnect (change 2), nor are those in flight dropped when the
//! restarted broker has no session (change 3).

mod common;

use std::time::Duration;

use common::{Mosquitto, HANG_GUARD};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS};
use tokio::sync::mpsc;

macro_rules! need_mosquitto {
    ($name:literal) => {
        if !common::mosquitto_available($name) {
            return;
        }
    };
}

fn options(port: u16, inflight: u16) -> MqttOptions {
    let mut o = MqttOptions::new("vendored-rumqttc", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5))
        .set_inflight(inflight);
    o
}

/// Polls until the CONNACK.
async fn connected(ev: &mut EventLoop) {
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            if let Ok(Event::Incoming(Incoming::ConnAck(_))) = ev.poll().await {
                return;
            }
        }
    })
    .await
    .expect("connected in time");
}

#[tokio::test]
async fn queued_publishes_are_taken_together_up_to_the_inflight_window() {
    need_mosquitto!("queued_publishes_are_taken_together");
    let m = Mosquitto::start_at(0, None);
    let (client, mut ev) = AsyncClient::new(options(m.port, 3), 10);
    connected(&mut ev).await;
    for i in 0..5u8 {
        client
            .try_publish("t/batch", QoS::AtLeastOnce, false, vec![i])
            .expect("room in the channel");
    }
    // One poll takes the requests: the first is returned, the others it wrote with it wait
    // as events. The window is 3, so 2 stay in the channel.
    let first = ev.poll().await.expect("poll");
    assert!(
        matches!(first, Event::Outgoing(Outgoing::Publish(1))),
        "{first:?}"
    );
    let taken: Vec<_> = ev.state.events.iter().cloned().collect();
    assert_eq!(
        taken.len(),
        2,
        "written with the first, as events: {taken:?}"
    );
    assert!(
        taken
            .iter()
            .all(|e| matches!(e, Event::Outgoing(Outgoing::Publish(2 | 3)))),
        "{taken:?}"
    );
    // The other two go once PUBACKs open the window; all five are acknowledged.
    let mut acks = 0;
    tokio::time::timeout(HANG_GUARD, async {
        while acks < 5 {
            if let Event::Incoming(Incoming::PubAck(_)) = ev.poll().await.expect("poll") {
                acks += 1;
            }
        }
    })
    .await
    .expect("five PUBACKs in time");
}

#[tokio::test]
async fn publishes_queued_when_the_connection_breaks_are_all_acknowledged_after_it() {
    need_mosquitto!("publishes_queued_when_the_connection_breaks");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let (client, mut ev) = AsyncClient::new(options(port, 2), 128);
    connected(&mut ev).await;
    let (acks_tx, mut acks) = mpsc::unbounded_channel();
    let (conns_tx, mut conns) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(a))) => {
                    let _ = acks_tx.send(a.pkid);
                }
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    let _ = conns_tx.send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });

    // The broker stops answering: 2 publishes fill the window, 98 wait in the channel.
    m.signal("STOP");
    const N: usize = 100;
    for i in 0..N {
        client
            .publish("t/queued", QoS::AtLeastOnce, false, vec![i as u8])
            .await
            .expect("queued");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The connection breaks with all of them unacknowledged.
    m.kill();
    let m = Mosquitto::start_at(port, None);
    tokio::time::timeout(HANG_GUARD, conns.recv())
        .await
        .expect("reconnected in time")
        .expect("poller alive");
    // Right after the reconnect the broker is slow to acknowledge.
    m.signal("STOP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.signal("CONT");

    // Upstream moves the 98 to its replay list, sent without flow control: they collide with
    // the 2 replayed packet ids and all but one collided publish are dropped.
    let mut got = 0;
    while got < N {
        tokio::time::timeout(HANG_GUARD, acks.recv())
            .await
            .unwrap_or_else(|_| panic!("only {got} of {N} publishes acknowledged"))
            .expect("poller alive");
        got += 1;
    }
}

/// Tasks that become ready together and each publish one message (vehicle sessions woken by
/// one read of the reactor) have their publishes written together. On a worker, the task a
/// send wakes runs next (tokio's LIFO slot), so without the yield before a lone write the
/// event loop would write each publish alone, one syscall (and one TCP segment) each.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn publishes_of_tasks_ready_together_are_written_together() {
    need_mosquitto!("publishes_of_tasks_ready_together");
    let m = Mosquitto::start_at(0, None);
    let (client, mut ev) = AsyncClient::new(options(m.port, 64), 64);
    connected(&mut ev).await;
    const N: usize = 16;
    let (batches_tx, mut batches) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut acks = 0;
        while acks < N {
            match ev.poll().await.expect("poll") {
                // The first publish of a write: the others written with it wait as events.
                Event::Outgoing(Outgoing::Publish(_)) => {
                    let with = ev
                        .state
                        .events
                        .iter()
                        .filter(|e| matches!(e, Event::Outgoing(Outgoing::Publish(_))));
                    let _ = batches_tx.send(1 + with.count());
                    // Drain the rest of this write's events before the next one.
                    while let Some(Event::Outgoing(Outgoing::Publish(_))) =
                        ev.state.events.front().cloned()
                    {
                        ev.state.events.pop_front();
                    }
                }
                Event::Incoming(Incoming::PubAck(_)) => acks += 1,
                _ => {}
            }
        }
    });
    // Let the event loop wait for requests, then make N publishers ready at once: spawned
    // from a task on the worker, they are all in its queue before any of them runs.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = client.clone();
    tokio::spawn(async move {
        for i in 0..N {
            let c = c.clone();
            tokio::spawn(async move {
                c.publish("t/ready", QoS::AtLeastOnce, false, vec![i as u8])
                    .await
                    .expect("queued");
            });
        }
    })
    .await
    .expect("spawner");
    let mut sizes = Vec::new();
    while sizes.iter().sum::<usize>() < N {
        let size = tokio::time::timeout(HANG_GUARD, batches.recv())
            .await
            .expect("every publish written in time")
            .expect("poller alive");
        sizes.push(size);
    }
    assert!(
        sizes.len() <= 2,
        "{N} publishes of tasks ready together took {} writes: {sizes:?}",
        sizes.len()
    );
}
