//! The frames of one read batch whose events wait, together, to be durable.
//!
//! A session reads the frames that are already there (buffered, or in the socket) back to
//! back, queues each frame's events as it reads it, and then waits once for all of them: one
//! broker round trip per batch instead of one per frame, which over a WAN link to the broker
//! would cap a vehicle at a few dozen frames a second. What a frame's answer needs (JT/T 808:
//! the header to answer; GB/T 32960: the frame, for an error flag) rides along as `M`.

use codecs::Event;
use futures::{FutureExt, Stream, StreamExt};

use codecs::event::PresenceReason;

use super::Flow;
use crate::sink::{Sink, SinkClosed};

/// Most frames in one batch; a longer run is settled and the next batch started.
pub const MAX_BATCH: usize = 64;

/// The next item of the read batch that began with `read` items: one `frames` yields without
/// waiting (already buffered, or in the socket), while the batch has room. `Some(None)`: the
/// stream ended.
pub fn ready_next<S: Stream + Unpin>(frames: &mut S, read: &mut usize) -> Option<Option<S::Item>> {
    if *read >= MAX_BATCH {
        return None;
    }
    let next = frames.next().now_or_never()?;
    *read += 1;
    Some(next)
}

/// Frames whose events are queued, in read order, with what their answers need.
pub struct Batch<M> {
    frames: Vec<Queued<M>>,
    deliveries: Vec<mqtt_bridge::Delivery>,
}

struct Queued<M> {
    meta: M,
    /// Every event of the frame was queued (none refused outright).
    queued: bool,
    /// How many of `deliveries` are this frame's events.
    events: usize,
}

impl<M> Default for Batch<M> {
    fn default() -> Self {
        Batch {
            frames: Vec::new(),
            deliveries: Vec::new(),
        }
    }
}

impl<M> Batch<M> {
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Whether the batch should be settled before another frame joins it.
    pub fn is_full(&self) -> bool {
        self.frames.len() >= MAX_BATCH
    }

    /// Queues a frame's events after the batch's. With `durable`, settling waits for them
    /// (the broker's PUBACK or the spool); without, queued is enough and nothing is kept.
    /// A closed sink (the gateway is stopping) closes the session.
    pub async fn queue(&mut self, sink: &Sink, events: Vec<Event>, durable: bool, meta: M) -> Flow {
        let before = self.deliveries.len();
        let Ok(queued) = sink.submit(events, &mut self.deliveries).await else {
            return Flow::Close(PresenceReason::Shutdown);
        };
        if !durable {
            self.deliveries.truncate(before);
        }
        let events = self.deliveries.len() - before;
        self.frames.push(Queued {
            meta,
            queued,
            events,
        });
        Flow::Continue
    }

    /// Takes the batch (an idle connection keeps no batch capacity) and waits for each
    /// frame's events in order: each frame's `meta` with whether all its events are durable
    /// (false: one was refused by the broker, or could not be queued at all).
    pub async fn settle(&mut self) -> Result<Vec<(M, bool)>, SinkClosed> {
        let Batch { frames, deliveries } = std::mem::take(self);
        let mut deliveries = deliveries.into_iter();
        let mut out = Vec::with_capacity(frames.len());
        for f in frames {
            let mut durable = f.queued;
            for d in deliveries.by_ref().take(f.events) {
                durable &= Sink::settle(d).await?;
            }
            out.push((f.meta, durable));
        }
        Ok(out)
    }
}
