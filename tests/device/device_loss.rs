//! A lost device (here destroyed with `Device::destroy`, as a driver reset or a crash would
//! lose it) surfaces as an error that names the adapter: never a hang, never a panic.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::sync::mpsc;
use std::time::Duration;

use bfrope::{Direction, Error, Gpu, Positions, RopeCall, RopeShape, RopeTable, TableSpec};

/// A device of its own (the other tests' shared one stays alive).
fn own_gpu() -> Option<Gpu> {
    common::gpu()?;
    Some(Gpu::new_blocking(None).expect("a second device on the adapter"))
}

fn assert_names_adapter(e: &Error, gpu: &Gpu) {
    let msg = e.to_string();
    assert!(
        matches!(e, Error::DeviceLost(_) | Error::Gpu(_)),
        "a lost device is DeviceLost or Gpu, got: {msg}"
    );
    assert!(
        msg.contains(&gpu.adapter().info.name),
        "the error names the adapter {:?}: {msg}",
        gpu.adapter().info.name
    );
}

#[test]
fn device_loss_before_a_call_is_an_error_naming_the_adapter() {
    let Some(gpu) = own_gpu() else { return };
    let shape = RopeShape::new(1, 8, 2, 8).unwrap();
    let table = RopeTable::build(&TableSpec::new(8, 8)).unwrap();
    let x = vec![0x3F80u16; shape.elements()];
    gpu.device().destroy();
    let positions = Positions::Offset(0);
    let e = gpu
        .apply_blocking(&RopeCall::new(shape.into(), &positions, &table), &x)
        .unwrap_err();
    assert!(matches!(e, Error::DeviceLost(_)), "{e}");
    assert_names_adapter(&e, &gpu);
    assert!(gpu.check_alive().is_err());
}

#[test]
fn device_destroyed_mid_run_ends_in_an_error_not_a_hang() {
    let Some(gpu) = own_gpu() else { return };
    // Pieces of 4 MiB, over and over, until the device goes away under them.
    let shape = RopeShape::new(1, 512, 32, 128).unwrap();
    let table = RopeTable::build(&TableSpec::new(128, 512)).unwrap();
    let x = bfrope::conformance::random_bf16(9, shape.elements());
    let (tx, rx) = mpsc::channel();
    let worker = gpu.clone();
    let (started_tx, started_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let positions = Positions::Offset(0);
        let call = RopeCall::new(shape.into(), &positions, &table);
        let mut rotator = worker.rotator_blocking(&table).unwrap();
        let mut out = vec![0u16; x.len()];
        let mut calls = 0u32;
        let result = loop {
            let r = rotator.apply_into_blocking(&call, &x, &mut out);
            calls += 1;
            if calls == 2 {
                let _ = started_tx.send(());
            }
            if r.is_err() || calls > 100_000 {
                break r;
            }
        };
        let _ = tx.send((result, calls));
    });
    started_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("two calls finished");
    gpu.device().destroy();
    let (result, calls) = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the worker returns instead of hanging after the device is destroyed");
    let e = result.expect_err("calls after the loss fail");
    eprintln!("device destroyed after {calls} calls: {e}");
    assert_names_adapter(&e, &gpu);
}

/// Polls two futures on one thread until both are done, interleaving them at every await
/// (what a browser does with two calls in flight).
fn join_on_one_thread<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(&mut cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(&mut cx) {
                rb = Some(v);
            }
        }
        if let (Some(_), Some(_)) = (&ra, &rb) {
            return (ra.unwrap(), rb.unwrap());
        }
        std::thread::yield_now();
    }
}

/// Two calls in flight on one `Gpu` and one thread take turns (the browser's case: wgpu panics
/// on error scopes popped out of order): the turnstile neither deadlocks nor mixes results.
/// Natively a call only suspends while it waits for its turn, so this checks the handover.
#[test]
fn device_calls_interleaved_on_one_thread_take_turns() {
    let Some(gpu) = own_gpu() else { return };
    let shape = RopeShape::new(2, 64, 4, 32).unwrap();
    let table = RopeTable::build(&TableSpec::new(32, 64)).unwrap();
    let x = bfrope::conformance::random_bf16(3, shape.elements());
    let positions = Positions::Offset(0);
    let forward = RopeCall::new(shape.into(), &positions, &table);
    let inverse = forward.with_direction(Direction::Inverse);
    let want = bfrope::cpu::apply(&forward, &x).unwrap();
    let back = bfrope::cpu::apply(&inverse, &x).unwrap();
    for _ in 0..5 {
        let (a, b) = join_on_one_thread(gpu.apply(&forward, &x), gpu.apply(&inverse, &x));
        assert_eq!(a.unwrap(), want);
        assert_eq!(b.unwrap(), back);
    }
}
