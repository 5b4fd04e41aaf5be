//! The analytics exporter's buffer: records queue per worker VM and leave in JSON-array batches;
//! failures are retried with backoff, the buffer is bounded (oldest dropped first, counted), and
//! nothing here can block or delay a client request. Pure: the adapter dispatches the batches.

use std::collections::VecDeque;

use crate::services::AnalyticsSettings;

const MIN_BACKOFF_MS: u64 = 100;
const MAX_BACKOFF_MS: u64 = 30_000;

/// Per-VM export state.
#[derive(Debug)]
pub struct Exporter {
    batch_size: usize,
    max_buffered: usize,
    flush_interval_ms: u64,
    buf: VecDeque<String>,
    in_flight: Option<Vec<String>>,
    next_flush_ms: u64,
    retry_at_ms: u64,
    backoff_ms: u64,
    /// Records dropped since the last [`Exporter::take_dropped`].
    dropped: u64,
}

/// What a finished batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchResult {
    pub sent: u64,
    pub retried: bool,
}

impl Exporter {
    /// A new, empty exporter.
    pub fn new(s: &AnalyticsSettings) -> Exporter {
        Exporter {
            batch_size: s.batch_size.max(1),
            max_buffered: s.max_buffered.max(1),
            flush_interval_ms: s.flush_interval_ms.max(1),
            buf: VecDeque::new(),
            in_flight: None,
            next_flush_ms: 0,
            retry_at_ms: 0,
            backoff_ms: MIN_BACKOFF_MS,
            dropped: 0,
        }
    }

    /// Queue one record (JSON text); the oldest record is dropped when the buffer is full.
    pub fn push(&mut self, record: String) {
        self.buf.push_back(record);
        self.trim();
    }

    fn trim(&mut self) {
        let in_flight = self.in_flight.as_ref().map_or(0, Vec::len);
        while self.buf.len() + in_flight > self.max_buffered {
            if self.buf.pop_front().is_none() {
                break;
            }
            self.dropped += 1;
        }
    }

    /// Records waiting (not counting an in-flight batch).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Is a batch in flight?
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Dropped records since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// The next batch to send now, as a JSON array body, if one is due: nothing in flight, not
    /// backing off, and either a full batch waits or the flush interval has passed.
    pub fn due(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        if self.in_flight.is_some() || self.buf.is_empty() || now_ms < self.retry_at_ms {
            return None;
        }
        if self.buf.len() < self.batch_size && now_ms < self.next_flush_ms {
            return None;
        }
        let n = self.buf.len().min(self.batch_size);
        let batch: Vec<String> = self.buf.drain(..n).collect();
        let mut body = Vec::with_capacity(batch.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, r) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(r.as_bytes());
        }
        body.push(b']');
        self.in_flight = Some(batch);
        self.next_flush_ms = now_ms.saturating_add(self.flush_interval_ms);
        Some(body)
    }

    /// The in-flight batch finished (`ok`: the collector answered 2xx).
    pub fn finish(&mut self, ok: bool, now_ms: u64) -> BatchResult {
        let Some(batch) = self.in_flight.take() else {
            return BatchResult {
                sent: 0,
                retried: false,
            };
        };
        if ok {
            self.backoff_ms = MIN_BACKOFF_MS;
            self.retry_at_ms = 0;
            return BatchResult {
                sent: batch.len() as u64,
                retried: false,
            };
        }
        for r in batch.into_iter().rev() {
            self.buf.push_front(r);
        }
        self.trim();
        self.next_flush_ms = 0;
        self.retry_at_ms = now_ms.saturating_add(self.backoff_ms);
        self.backoff_ms = (self.backoff_ms * 2).min(MAX_BACKOFF_MS);
        BatchResult {
            sent: 0,
            retried: true,
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn settings(batch: usize, max: usize) -> AnalyticsSettings {
        AnalyticsSettings {
            batch_size: batch,
            max_buffered: max,
            flush_interval_ms: 1000,
            ..AnalyticsSettings::default()
        }
    }

    #[test]
    fn batches_when_full_or_on_interval() {
        let mut e = Exporter::new(&settings(2, 100));
        e.push("{\"a\":1}".into());
        assert_eq!(
            e.due(0).as_deref(),
            Some(&b"[{\"a\":1}]"[..]),
            "first flush is due at once"
        );
        assert!(e.finish(true, 0).sent == 1);
        e.push("1".into());
        assert_eq!(e.due(10), None, "interval not passed, batch not full");
        e.push("2".into());
        e.push("3".into());
        assert_eq!(e.due(10).as_deref(), Some(&b"[1,2]"[..]));
        assert_eq!(e.due(20), None, "one batch in flight at a time");
        assert_eq!(
            e.finish(true, 20),
            BatchResult {
                sent: 2,
                retried: false
            }
        );
        assert_eq!(e.due(1500).as_deref(), Some(&b"[3]"[..]));
    }

    #[test]
    fn failures_retry_with_backoff_in_order() {
        let mut e = Exporter::new(&settings(10, 100));
        for i in 0..3 {
            e.push(i.to_string());
        }
        assert!(e.due(0).is_some());
        assert!(e.finish(false, 0).retried);
        assert_eq!(e.due(50), None, "backing off");
        assert_eq!(e.due(100).as_deref(), Some(&b"[0,1,2]"[..]));
        assert!(e.finish(false, 100).retried);
        assert_eq!(e.due(250), None, "backoff doubled");
        assert!(e.due(300).is_some());
        assert_eq!(e.finish(true, 300).sent, 3);
    }

    #[test]
    fn bounded_buffer_drops_oldest_and_counts() {
        let mut e = Exporter::new(&settings(2, 3));
        for i in 0..5 {
            e.push(i.to_string());
        }
        assert_eq!(e.buffered(), 3);
        assert_eq!(e.take_dropped(), 2);
        assert_eq!(e.due(0).as_deref(), Some(&b"[2,3]"[..]));
        e.push("5".into());
        e.push("6".into());
        assert_eq!(
            e.take_dropped(),
            2,
            "in-flight records count against the bound"
        );
        e.finish(false, 0);
        assert_eq!(e.buffered(), 3);
    }
}
