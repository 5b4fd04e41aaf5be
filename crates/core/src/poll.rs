//! The attack-list poll: one worker VM per interval wins a lease in shared data and fetches the
//! list, following `next` page paths; the feed is replaced only when the last page arrives, and
//! any failure keeps the last good list. Driven by the root context through [`Host`]; the
//! adapter only hands over the call answers. No host calls here.

use crate::call::{CallAnswer, CallRequest};
use crate::host::{Host, Store};
use crate::lists::{self, Feed};
use crate::services::AttackListSettings;
use crate::stats::Counter;

/// Shared-data key electing the worker that polls the attack list: `[due_ms u64][owner u64]`.
pub const POLL_KEY: &str = "aw:poll";

/// Most pages one attack-list poll follows.
pub const MAX_FEED_PAGES: u32 = 1000;

/// Claim this interval's poll for the VM `vm_token`: succeed only if the due time has passed and
/// our CAS write of the next due time wins (first writes are verified, as the host cannot
/// create-if-absent).
pub fn claim_poll(store: &impl Store, vm_token: u64, now_ms: u64, interval_ms: u64) -> bool {
    let (cur, cas) = store.get(POLL_KEY);
    let due = cur
        .as_deref()
        .and_then(|b| b.get(..8))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    if now_ms < due {
        return false;
    }
    let mut v = now_ms.saturating_add(interval_ms).to_le_bytes().to_vec();
    v.extend_from_slice(&vm_token.to_le_bytes());
    if !store.set(POLL_KEY, &v, Some(cas.unwrap_or(0))) {
        return false;
    }
    cas.is_some() || store.get(POLL_KEY).0.as_deref() == Some(&v[..])
}

/// The GET of one page of the attack list (the configured path, or a page's `next`).
pub fn page_request(a: &AttackListSettings, path: &str) -> CallRequest {
    a.headers.iter().fold(
        CallRequest::new("GET", &a.cluster, &a.authority, path, a.timeout_ms)
            .header("accept", "application/json"),
        |c, (k, v)| c.header(k, v),
    )
}

/// Pages of a paginated attack list read so far.
#[derive(Debug, Default)]
struct Partial {
    feed: Feed,
    skipped: usize,
    pages: u32,
}

/// One VM's attack-list poller.
#[derive(Debug)]
pub struct Poller {
    /// Random per-VM identity for the poll election.
    vm_token: u64,
    /// The page request in flight.
    token: Option<u32>,
    partial: Option<Partial>,
}

/// The feed a finished poll stored: (generation, entries, skipped).
type Loaded = (u32, usize, usize);

impl Poller {
    /// A poller for the VM `vm_token` (a random per-VM value).
    pub fn new(vm_token: u64) -> Poller {
        Poller {
            vm_token,
            token: None,
            partial: None,
        }
    }

    /// Whether `token` is this poller's call.
    pub fn owns(&self, token: u32) -> bool {
        self.token == Some(token)
    }

    /// Whether a page request is in flight.
    pub fn in_flight(&self) -> bool {
        self.token.is_some()
    }

    /// On the root context's tick: start a poll if one is configured, none is in flight and this
    /// VM wins this interval's election.
    pub fn tick(&mut self, host: &impl Host, settings: Option<&AttackListSettings>, now_ms: u64) {
        let Some(a) = settings else {
            return;
        };
        if self.token.is_some()
            || !claim_poll(
                host,
                self.vm_token,
                now_ms,
                a.interval_s.saturating_mul(1000),
            )
        {
            return;
        }
        self.partial = None;
        if let Err(e) = self.request_page(host, a, &a.path) {
            log::warn!("api-warden: attack-list poll not sent: {e}");
            host.increment(Counter::AttackListPollsFailed, 1);
        }
    }

    fn request_page(
        &mut self,
        host: &impl Host,
        a: &AttackListSettings,
        path: &str,
    ) -> Result<(), String> {
        let t = host
            .dispatch(&page_request(a, path))
            .map_err(|e| e.to_string())?;
        self.token = Some(t);
        Ok(())
    }

    /// The answer to a call: returns false when `token` is not this poller's. Follows `next`,
    /// or stores the whole feed on the last page, or keeps the last good list on a failure; the
    /// outcome is logged and counted.
    pub fn on_answer(
        &mut self,
        host: &impl Host,
        settings: Option<&AttackListSettings>,
        token: u32,
        answer: &CallAnswer,
    ) -> bool {
        if !self.owns(token) {
            return false;
        }
        self.token = None;
        let Some(a) = settings else {
            self.partial = None;
            return true;
        };
        let result = match self.read_page(host, a, answer) {
            Ok(None) => return true,
            Ok(Some(loaded)) => Ok(loaded),
            Err(e) => Err(e),
        };
        self.partial = None;
        match result {
            Ok((generation, n, skipped)) => {
                log::info!(
                    "api-warden: attack list loaded: {n} entries (generation {generation}, {skipped} skipped)"
                );
                host.increment(Counter::AttackListPollsOk, 1);
            }
            Err(e) => {
                log::warn!("api-warden: attack-list poll failed, keeping the last good list: {e}");
                host.increment(Counter::AttackListPollsFailed, 1);
            }
        }
        true
    }

    /// One page: `Ok(None)` when the next page was requested, `Ok(Some(..))` when the feed was
    /// replaced.
    fn read_page(
        &mut self,
        host: &impl Host,
        a: &AttackListSettings,
        answer: &CallAnswer,
    ) -> Result<Option<Loaded>, String> {
        match answer.status {
            Some(200) => {}
            Some(s) => return Err(format!("status {s}")),
            None => return Err("no response (timeout or connection failure)".to_string()),
        }
        if answer.body_size > a.max_body_bytes {
            return Err(format!(
                "body of {} bytes exceeds max_body_bytes {}",
                answer.body_size, a.max_body_bytes
            ));
        }
        let (page, skipped, next) = Feed::parse_page(&answer.body)?;
        let mut partial = self.partial.take().unwrap_or_default();
        partial.feed.merge(page);
        partial.skipped += skipped;
        let pages = partial.pages;
        match next {
            Some(n) if !n.starts_with('/') => Err(format!(
                "page {} has a next that is not a path: {n:?}",
                pages + 1
            )),
            Some(_) if pages + 1 >= MAX_FEED_PAGES => {
                Err(format!("more than {MAX_FEED_PAGES} pages"))
            }
            Some(n) => {
                // Keep what we have and fetch the next page; replace only at the end.
                partial.pages += 1;
                self.partial = Some(partial);
                self.request_page(host, a, &n)
                    .map(|()| None)
                    .map_err(|e| format!("requesting page {}: {e}", pages + 2))
            }
            None => lists::replace_feed(host, &partial.feed)
                .map(|g| Some((g, partial.feed.len(), partial.skipped)))
                .map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
