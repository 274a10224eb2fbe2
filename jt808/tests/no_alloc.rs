//! A location report costs no allocation in the steady state: body decode, normalize
//! into a kept list ([`jt808::Normalizer`]), and JSON into a reused buffer. Counted by a
//! global allocator that counts the allocations of the thread that asks it to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use codecs::{Data, EventContext};
use jt808::{Encryption, Header, Message, Normalizer, Version};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread's locals may be gone while it exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|n| n.get())
}

fn header(msg_id: u16, version: Version) -> Header {
    Header {
        msg_id,
        version,
        protocol_version: 1,
        phone: "018876638972".into(),
        serial: 229,
        encryption: Encryption::None,
        package: None,
    }
}

type State = (EventContext, Normalizer, Vec<codecs::Event>, Vec<u8>);

/// Decode + normalize + JSON of `body` `n` times with everything reused; the JSON bytes.
fn run(h: &Header, body: &[u8], n: usize, st: &mut State) {
    let (ctx, norm, events, out) = st;
    for _ in 0..n {
        let msg = Message::decode(h, std::hint::black_box(body)).expect("decodes");
        events.clear();
        norm.normalize_into(h.version, h, &msg, ctx, events);
        for e in events.iter() {
            out.clear();
            e.write_json(out);
        }
    }
}

#[test]
fn a_location_report_is_decoded_normalized_and_written_without_allocating() {
    // EMQX t_case04 (fixtures/jt808/emqx-0200-case04.json): items 0x01, 0x25 vehicle
    // signals, 0x2A IO status, 0x2B analog, 0x30, 0x31; and a 2019 report with alarm bits
    // set (emergency, overspeed, tyre pressure warning), a load state and items 0x04, 0x11,
    // 0x12, 0x13, 0x25.
    let case04 = hex::decode(
        "000000000004000001317a6706936851000e00000027171019193538010400003fb2030200002504000000002a0200002b040000000030011f310100",
    )
    .expect("hex");
    let mut busy = case04.get(..28).expect("basic information").to_vec();
    busy.splice(0..8, [0, 0x01, 0, 0b11, 0, 0x44, 0x03, 0x02]);
    busy.extend_from_slice(&[
        0x04, 2, 0, 9, 0x11, 5, 1, 0, 0, 0, 7, 0x12, 6, 1, 0, 0, 0, 8, 1,
    ]);
    busy.extend_from_slice(&[0x13, 7, 0, 0, 0, 2, 0, 34, 1, 0x25, 4, 0, 0, 0x12, 0x34]);
    for (h, body) in [
        (header(0x0200, Version::V2013), &case04),
        (header(0x0200, Version::V2019), &busy),
    ] {
        let ctx = EventContext::now("node-1");
        let mut st = (ctx, Normalizer::new(), Vec::new(), Vec::new());
        // Warm up: the kept list and buffer grow, the vehicle id is made once.
        run(&h, body, 10, &mut st);
        let n = allocations(|| run(&h, body, 1000, &mut st));
        assert_eq!(n, 0, "allocations in 1000 reports of {}", hex::encode(body));
        // What was measured is a full location event.
        let json: serde_json::Value = serde_json::from_slice(&st.3).expect("json");
        assert_eq!(json["type"], "location");
        assert_eq!(json["vehicle_id"], "018876638972");
        let Some(Data::Location(l)) = st.2.first().map(|e| &e.data) else {
            panic!("no location")
        };
        assert!(l.more.vehicle_signals.is_some() && l.io_status.is_some() == (body == &case04));
        if body == &busy {
            assert_eq!(
                l.alarms,
                vec!["emergency", "overspeed", "tyre_pressure_warning"]
            );
            assert_eq!(json["data"]["alarms"][2], "tyre_pressure_warning");
            assert_eq!(json["data"]["load_state"], 3);
        }
    }
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations(|| {
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
}
