//! A mock [`Host`](super::Host) for native tests: an in-memory store that several mock hosts
//! (VMs) can share, a clock the test sets, recorded HTTP calls the test answers, and collected
//! counters.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::{Clock, HttpCalls, Metrics, Store};
use crate::call::{CallAnswer, CallRequest};
use crate::error::{Error, Result};
use crate::lists::MemStore;
use crate::stats::Counter;

/// One mock VM's host.
#[derive(Default)]
pub(crate) struct MockHost {
    store: Rc<MemStore>,
    now: Cell<u64>,
    next_token: Cell<u32>,
    /// Dispatched calls not answered yet, oldest first.
    calls: RefCell<Vec<(u32, CallRequest)>>,
    /// Every call dispatched, in order.
    pub(crate) sent: RefCell<Vec<CallRequest>>,
    /// When set, `dispatch` fails with this host error.
    pub(crate) fail_dispatch: RefCell<Option<String>>,
    counters: RefCell<HashMap<Counter, u64>>,
}

impl MockHost {
    /// A host with its own empty store, at time `now`.
    pub(crate) fn new(now: u64) -> MockHost {
        let h = MockHost::default();
        h.now.set(now);
        h
    }

    /// Another VM of the same process: shares this host's store, own clock and calls.
    pub(crate) fn sharing(&self) -> MockHost {
        let h = MockHost::new(self.now.get());
        MockHost {
            store: self.store.clone(),
            ..h
        }
    }

    pub(crate) fn set_now(&self, now: u64) {
        self.now.set(now);
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }

    /// Calls waiting for an answer.
    pub(crate) fn pending(&self) -> usize {
        self.calls.borrow().len()
    }

    /// Take the oldest unanswered call (its token and request).
    pub(crate) fn take_call(&self) -> Option<(u32, CallRequest)> {
        let mut c = self.calls.borrow_mut();
        if c.is_empty() {
            None
        } else {
            Some(c.remove(0))
        }
    }

    /// A counter's total so far.
    pub(crate) fn count(&self, c: Counter) -> u64 {
        self.counters.borrow().get(&c).copied().unwrap_or(0)
    }
}

/// An answer with `status` and `body` (read whole).
pub(crate) fn answer(status: Option<u16>, body: &[u8]) -> CallAnswer {
    CallAnswer {
        status,
        headers: Vec::new(),
        body: body.to_vec(),
        body_size: body.len(),
    }
}

impl Store for MockHost {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.store.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.store.set(key, value, cas)
    }
}

impl Clock for MockHost {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
}

impl HttpCalls for MockHost {
    fn dispatch(&self, call: &CallRequest) -> Result<u32> {
        if let Some(e) = self.fail_dispatch.borrow().as_ref() {
            return Err(Error::Host(e.clone()));
        }
        let t = self.next_token.get() + 1;
        self.next_token.set(t);
        self.calls.borrow_mut().push((t, call.clone()));
        self.sent.borrow_mut().push(call.clone());
        Ok(t)
    }
}

impl Metrics for MockHost {
    fn increment(&self, counter: Counter, n: u64) {
        if n > 0 {
            *self.counters.borrow_mut().entry(counter).or_default() += n;
        }
    }
}
