//! The in-flight slots of the calls a connection issues (`Config::max_in_flight`).
//!
//! Taking a slot and giving it back are one atomic operation each, so a call that finds a slot
//! free (the usual case) takes no lock. Only callers that find none left wait, on a [`Notify`];
//! a slot given back wakes one of them. (A `tokio::sync::Semaphore` takes a mutex on every
//! release.) Waiting is not strictly first come, first served: a caller that arrives as a slot is
//! freed may take it before a waiter that was woken for it, which then waits again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use tokio::sync::Notify;

/// A connection's in-flight slots.
pub(crate) struct Slots {
    limit: usize,
    used: AtomicUsize,
    /// Callers waiting for a slot: a slot given back wakes one only if there are any.
    waiting: AtomicUsize,
    freed: Notify,
    closed: AtomicBool,
}

/// A slot taken; dropping it gives it back.
pub(crate) struct Slot<'a>(&'a Slots);

/// The slots are closed: the connection is.
#[derive(Debug)]
pub(crate) struct Closed;

impl Slots {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Takes a slot if one is free, without waiting.
    pub(crate) fn try_take(&self) -> Option<Slot<'_>> {
        // Sequentially consistent, as the giving back and `waiting` are: a waiter that counted
        // itself in and then found no slot is seen by whoever frees one next.
        self.used.fetch_update(SeqCst, SeqCst, |n| (n < self.limit).then_some(n + 1)).ok()?;
        Some(Slot(self))
    }

    /// Takes a slot, waiting until one is free.
    ///
    /// # Errors
    /// [`Closed`] once the slots are closed.
    ///
    /// # Cancel safety
    /// Cancel safe: a wake-up meant for a dropped waiter passes to another.
    pub(crate) async fn take(&self) -> Result<Slot<'_>, Closed> {
        self.waiting.fetch_add(1, SeqCst);
        let _waiting = Waiting(self);
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            // Registered before looking, so a slot freed after the look wakes this waiter.
            freed.as_mut().enable();
            if self.closed.load(SeqCst) {
                return Err(Closed);
            }
            if let Some(slot) = self.try_take() {
                return Ok(slot);
            }
            freed.await;
        }
    }

    /// How many slots are taken.
    pub(crate) fn used(&self) -> usize {
        self.used.load(SeqCst)
    }

    /// Closes the slots: waiters and later `take`s fail; `try_take` still works, so callers
    /// check the connection first.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.freed.notify_waiters();
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let slots = self.0;
        slots.used.fetch_sub(1, SeqCst);
        if slots.waiting.load(SeqCst) > 0 {
            slots.freed.notify_one();
        }
    }
}

/// Counts a caller out of `waiting` however its wait ends.
struct Waiting<'a>(&'a Slots);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// Polls `future` once, with a waker that does nothing.
    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn no_more_than_the_limit_are_taken() {
        let slots = Slots::new(2);
        let a = slots.try_take().unwrap();
        let _b = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        assert_eq!(slots.used(), 2);
        drop(a);
        assert_eq!(slots.used(), 1);
        assert!(slots.try_take().is_some());
    }

    #[test]
    fn a_slot_given_back_goes_to_a_waiter() {
        let slots = Slots::new(1);
        let held = slots.try_take().unwrap();
        let mut waiter = std::pin::pin!(slots.take());
        assert!(poll_once(waiter.as_mut()).is_pending());
        drop(held);
        let Poll::Ready(Ok(slot)) = poll_once(waiter.as_mut()) else { panic!("the waiter has no slot") };
        assert_eq!(slots.used(), 1);
        assert_eq!(slots.waiting.load(SeqCst), 0);
        drop(slot);
        assert_eq!(slots.used(), 0);
    }

    #[test]
    fn a_wake_up_for_a_dropped_waiter_passes_to_the_next() {
        let slots = Slots::new(1);
        let held = slots.try_take().unwrap();
        let mut first = Box::pin(slots.take());
        let mut second = std::pin::pin!(slots.take());
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        // The slot's wake-up goes to the first waiter, which is dropped without taking it.
        drop(held);
        drop(first);
        assert!(matches!(poll_once(second.as_mut()), Poll::Ready(Ok(_))));
    }

    #[test]
    fn closing_ends_the_waits() {
        let slots = Slots::new(1);
        let _held = slots.try_take().unwrap();
        let mut waiter = std::pin::pin!(slots.take());
        assert!(poll_once(waiter.as_mut()).is_pending());
        slots.close();
        assert!(matches!(poll_once(waiter.as_mut()), Poll::Ready(Err(Closed))));
        assert!(matches!(poll_once(std::pin::pin!(slots.take())), Poll::Ready(Err(Closed))));
    }
}
