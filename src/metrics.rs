//! The VM's counters and gauges: ids defined once per VM, request counts summed locally and
//! published on the root context's tick, list-size gauges.

use std::cell::RefCell;
use std::collections::HashMap;

use api_warden_core::lists;
use api_warden_core::pipeline::Runtime;
use api_warden_core::stats::{self, Counter};
use proxy_wasm::types::MetricType;

use crate::host::{self, HostStore};

/// Counter and gauge ids, defined once per VM. Request counters are summed locally and flushed
/// to the host on the root context's tick (at most a second late), so a request pays no metric
/// host calls.
pub(crate) struct Stats {
    ids: HashMap<Counter, u32>,
    pending: RefCell<[u64; Counter::ALL.len()]>,
    /// List-size gauges, in the order of [`stats::list_gauge_names`].
    gauges: Vec<Option<u32>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            ids: HashMap::new(),
            pending: RefCell::new([0; Counter::ALL.len()]),
            gauges: Vec::new(),
        }
    }
}

impl Stats {
    pub(crate) fn new() -> Stats {
        let ids = Counter::ALL
            .iter()
            .filter_map(|c| host::define_metric(MetricType::Counter, c.name()).map(|id| (*c, id)))
            .collect();
        let gauges = stats::list_gauge_names()
            .iter()
            .map(|n| host::define_metric(MetricType::Gauge, n))
            .collect();
        Stats {
            ids,
            pending: RefCell::new([0; Counter::ALL.len()]),
            gauges,
        }
    }

    /// Count locally; [`Stats::flush`] publishes.
    pub(crate) fn count(&self, c: Counter) {
        if let Some(n) = self.pending.borrow_mut().get_mut(c as usize) {
            *n += 1;
        }
    }

    /// Publish the locally counted increments.
    pub(crate) fn flush(&self) {
        let pending = std::mem::replace(&mut *self.pending.borrow_mut(), [0; Counter::ALL.len()]);
        for (c, n) in Counter::ALL.iter().zip(pending) {
            self.inc(*c, n);
        }
        crate::host_calls::publish();
    }

    /// Publish the list sizes (every worker publishes the same process-wide values).
    pub(crate) fn publish_list_sizes(&self, rt: &Runtime) {
        let (meta, _) = lists::Meta::load(&HostStore);
        for (id, (_, value)) in self
            .gauges
            .iter()
            .zip(stats::list_gauges(&meta, &rt.config_lists))
        {
            if let Some(id) = id {
                host::record_metric(*id, value);
            }
        }
    }
    pub(crate) fn inc(&self, c: Counter, by: u64) {
        if by > 0 {
            if let Some(id) = self.ids.get(&c) {
                host::increment_metric(*id, by as i64);
            }
        }
    }
}
