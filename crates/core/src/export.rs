//! The analytics export: the [`Exporter`] buffer (records queue per worker VM and leave in
//! batches, a JSON array or an OTLP logs request ([`otlp`]) as `analytics.format` says; failures are retried with backoff, the buffer is bounded, oldest dropped
//! first and counted) and the [`ExportDriver`] that sends one batch at a time through [`Host`],
//! the next as soon as one is answered, and flushes what is buffered at shutdown. Nothing here can
//! block or delay a client request. No host calls here: the adapter hands over the answers.

use std::collections::VecDeque;

use crate::call::{CallAnswer, CallRequest};
use crate::host::Host;
use crate::services::{AnalyticsSettings, ExportFormat};
use crate::stats::Counter;

pub mod otlp;

const MIN_BACKOFF_MS: u64 = 100;
const MAX_BACKOFF_MS: u64 = 30_000;

/// Per-VM export state.
#[derive(Debug)]
pub struct Exporter {
    format: ExportFormat,
    batch_size: usize,
    max_buffered: usize,
    flush_interval_ms: u64,
    buf: VecDeque<String>,
    in_flight: Option<Vec<String>>,
    /// When the last batch left (`None`: the next one may leave at once).
    last_flush_ms: Option<u64>,
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
            format: s.format,
            batch_size: s.batch_size.max(1),
            max_buffered: s.max_buffered.max(1),
            flush_interval_ms: s.flush_interval_ms.max(1),
            buf: VecDeque::new(),
            in_flight: None,
            last_flush_ms: None,
            retry_at_ms: 0,
            backoff_ms: MIN_BACKOFF_MS,
            dropped: 0,
        }
    }

    /// Adopt reloaded settings (batch size, flush interval, bound) and keep the buffered
    /// records; records beyond a smaller bound are dropped, oldest first, and counted.
    pub fn reconfigure(&mut self, s: &AnalyticsSettings) {
        self.format = s.format;
        self.batch_size = s.batch_size.max(1);
        self.max_buffered = s.max_buffered.max(1);
        self.flush_interval_ms = s.flush_interval_ms.max(1);
        self.trim();
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

    /// The next batch to send now, as a body in the configured format, if one is due: nothing in
    /// flight, not backing off, and either a full batch waits or the flush interval has passed.
    pub fn due(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        if self.in_flight.is_some() || self.buf.is_empty() || now_ms < self.retry_at_ms {
            return None;
        }
        let next_flush_ms = self
            .last_flush_ms
            .map_or(0, |t| t.saturating_add(self.flush_interval_ms));
        if self.buf.len() < self.batch_size && now_ms < next_flush_ms {
            return None;
        }
        let n = self.buf.len().min(self.batch_size);
        let batch: Vec<String> = self.buf.drain(..n).collect();
        let body = match self.format {
            ExportFormat::Json => json_array(&batch),
            ExportFormat::Otlp => otlp::logs_body(&batch, now_ms),
        };
        self.in_flight = Some(batch);
        self.last_flush_ms = Some(now_ms);
        Some(body)
    }

    /// At shutdown: the next batch whatever the flush interval or the backoff.
    pub fn due_final(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        self.last_flush_ms = None;
        self.retry_at_ms = 0;
        self.due(now_ms)
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
        self.last_flush_ms = None;
        self.retry_at_ms = now_ms.saturating_add(self.backoff_ms);
        self.backoff_ms = (self.backoff_ms * 2).min(MAX_BACKOFF_MS);
        BatchResult {
            sent: 0,
            retried: true,
        }
    }
}

/// Records (JSON texts) as one JSON array.
fn json_array(batch: &[String]) -> Vec<u8> {
    let mut body = Vec::with_capacity(batch.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, r) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r.as_bytes());
    }
    body.push(b']');
    body
}

/// The POST of one batch (a JSON array or an OTLP logs request) to the collector; `None` when no collector is configured.
pub fn batch_request(s: &AnalyticsSettings, body: Vec<u8>) -> Option<CallRequest> {
    let cluster = s.cluster.as_deref()?;
    let c = CallRequest::new("POST", cluster, &s.authority, &s.path, s.timeout_ms)
        .header("content-type", "application/json");
    Some(
        s.headers
            .iter()
            .fold(c, |c, (k, v)| c.header(k, v))
            .body(body),
    )
}

/// What an answer meant to the [`ExportDriver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Not the driver's call.
    NotOurs,
    /// Counted; the next batch was sent if one was due.
    Handled,
    /// The shutdown flush is over: tell the host the root context is done.
    Done,
}

/// Sends the [`Exporter`]'s batches: one in flight at a time, the next as soon as one is
/// answered, everything buffered at shutdown.
#[derive(Debug, Default)]
pub struct ExportDriver {
    token: Option<u32>,
    /// `on_done` was called: send what is buffered, then report done.
    shutting_down: bool,
}

impl ExportDriver {
    /// Whether `token` is the batch in flight.
    pub fn owns(&self, token: u32) -> bool {
        self.token == Some(token)
    }

    /// Whether a batch is in flight.
    pub fn in_flight(&self) -> bool {
        self.token.is_some()
    }

    /// Count dropped records and send the next batch if one is due and none is in flight. A
    /// batch that cannot be dispatched is put back and retried with backoff.
    pub fn flush(
        &mut self,
        host: &impl Host,
        ex: Option<&mut Exporter>,
        s: &AnalyticsSettings,
        now_ms: u64,
    ) {
        self.send(host, ex, s, now_ms, false);
    }

    fn send(
        &mut self,
        host: &impl Host,
        ex: Option<&mut Exporter>,
        s: &AnalyticsSettings,
        now_ms: u64,
        at_shutdown: bool,
    ) {
        let Some(ex) = ex else { return };
        if s.cluster.is_none() {
            return;
        }
        host.increment(Counter::ExportRecordsDropped, ex.take_dropped());
        if self.token.is_some() {
            return;
        }
        let body = if at_shutdown {
            ex.due_final(now_ms)
        } else {
            ex.due(now_ms)
        };
        let Some(call) = body.and_then(|body| batch_request(s, body)) else {
            return;
        };
        match host.dispatch(&call) {
            Ok(t) => self.token = Some(t),
            Err(e) => {
                log::debug!("api-warden: export not sent: {e}");
                ex.finish(false, now_ms);
                host.increment(Counter::ExportBatchesRetried, 1);
            }
        }
    }

    /// The answer to a call: count the batch, then send the next one (during shutdown: the
    /// next one whatever the interval, or report [`Answered::Done`]).
    pub fn on_answer(
        &mut self,
        host: &impl Host,
        mut ex: Option<&mut Exporter>,
        s: &AnalyticsSettings,
        token: u32,
        answer: &CallAnswer,
    ) -> Answered {
        if !self.owns(token) {
            return Answered::NotOurs;
        }
        self.token = None;
        let ok = answer.is_success();
        if let Some(ex) = ex.as_deref_mut() {
            let r = ex.finish(ok, host.now_ms());
            host.increment(Counter::ExportRecordsSent, r.sent);
            host.increment(Counter::ExportBatchesRetried, u64::from(r.retried));
        }
        if self.shutting_down {
            if !ok || !self.flush_final(host, ex, s) {
                return Answered::Done;
            }
        } else {
            // A full batch waiting leaves now, not at the next tick.
            self.flush(host, ex, s, host.now_ms());
        }
        Answered::Handled
    }

    /// `on_done`: send what is buffered; true while a batch is in flight (the host must wait for
    /// [`Answered::Done`]).
    pub fn shutdown(
        &mut self,
        host: &impl Host,
        ex: Option<&mut Exporter>,
        s: &AnalyticsSettings,
    ) -> bool {
        self.shutting_down = true;
        self.flush_final(host, ex, s)
    }

    /// During shutdown: send the next batch whatever the interval; true when one is in flight.
    fn flush_final(
        &mut self,
        host: &impl Host,
        ex: Option<&mut Exporter>,
        s: &AnalyticsSettings,
    ) -> bool {
        if self.token.is_none() {
            self.send(host, ex, s, host.now_ms(), true);
        }
        self.token.is_some()
    }
}

#[cfg(test)]
mod tests;
