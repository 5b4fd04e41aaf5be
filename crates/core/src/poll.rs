//! The attack-list poll: one worker VM per interval wins a lease in shared data and fetches the
//! list, following `next` page paths; the feed is replaced only when the last page arrives, and
//! any failure keeps the last good list. Driven by the root context through [`Host`]; the
//! adapter only hands over the call answers. No host calls here.
//!
//! The last page does not write the feed at once: a 5,000,000-entry feed takes about a second
//! or two to write, and the worker that polled would serve no request meanwhile. It starts a
//! [`FeedWriter`] instead, and each tick runs one slice of about [`WRITE_SLICE_MS`] of it (the
//! adapter makes the tick short while [`Poller::writing`]); no poll starts meanwhile, and the
//! poll lease is kept past its due time so no other VM starts an overlapping one.
//!
//! Polls are conditional: the `ETag` and `Last-Modified` of the feed now stored are kept **per
//! process, in shared data** ([`VALIDATORS_KEY`]), not per VM, because the election hands each
//! interval to whichever worker wins it; per-VM validators would make every worker's first poll
//! a full download and a rewrite. They are written only after a complete successful poll of a
//! one-page feed (a paginated feed is always fetched whole: an unchanged first page says nothing
//! about the others), together with the feed generation they describe, and are used only while
//! that generation is still live. The first page is then sent with `If-None-Match` /
//! `If-Modified-Since`; a `304 Not Modified` leaves shared data untouched and counts as a
//! successful poll (`polls_ok`) and as `not_modified`.

use crate::call::{CallAnswer, CallRequest};
use crate::host::{Host, Store};
use crate::lists::{FeedBuilder, FeedWriter, Meta, Progress};
use crate::services::AttackListSettings;
use crate::stats::Counter;

/// Shared-data key electing the worker that polls the attack list: `[due_ms u64][owner u64]`.
pub const POLL_KEY: &str = "aw:poll";

/// Shared-data key of the validators of the stored feed (see the module documentation):
/// `[generation u32][etag len u16][etag][last-modified len u16][last-modified]`; empty = none.
pub const VALIDATORS_KEY: &str = "aw:poll:validators";

/// Longest `ETag` / `Last-Modified` value remembered (longer ones are not used).
const MAX_VALIDATOR_LEN: usize = 1024;

/// Most pages one attack-list poll follows.
pub const MAX_FEED_PAGES: u32 = 1000;

/// Work per slice of a feed write in a VM that serves requests, in ms of the host clock. Between
/// slices the worker serves what queued up, so a request waits about a slice at most. Each
/// pause costs more than the tick: measured on a busy 2-core machine (bench/load.py), the
/// worker lost about 8 ms per pause to other processes, and 20 ms slices made the write of
/// 5,000,000 entries a third slower (1.2 s to 1.6 s); 30 ms slices pay a fifth, and a wait of
/// 30 ms is still well under what parsing one 15 MB feed page takes (150–250 ms, one callback).
pub const WRITE_SLICE_MS: u64 = 30;

/// Work per slice in a VM that has served no request (the main thread's VM never does): its
/// pauses delay nobody, only the write, so it pauses seldom.
pub const IDLE_WRITE_SLICE_MS: u64 = 250;

/// While a feed is written, the poll lease is pushed one interval on once it is this close to
/// its due time (a write that outlasts the interval must not let another VM start a poll whose
/// write would overlap ours).
const LEASE_MARGIN_MS: u64 = 500;

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

/// Keep this VM's poll lease while it writes a feed: if `vm_token` still holds it and it is due
/// within [`LEASE_MARGIN_MS`], push it to `now_ms + interval_ms` (with CAS: a VM that claims it
/// meanwhile keeps it). Returns whether the lease was pushed.
pub fn keep_poll(store: &impl Store, vm_token: u64, now_ms: u64, interval_ms: u64) -> bool {
    let (cur, cas) = store.get(POLL_KEY);
    let (Some(cur), Some(cas)) = (cur, cas) else {
        return false;
    };
    let word = |i: usize| {
        cur.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let (Some(due), Some(owner)) = (word(0), word(8)) else {
        return false;
    };
    if owner != vm_token || now_ms.saturating_add(LEASE_MARGIN_MS) < due {
        return false;
    }
    let mut v = now_ms.saturating_add(interval_ms).to_le_bytes().to_vec();
    v.extend_from_slice(&vm_token.to_le_bytes());
    store.set(POLL_KEY, &v, Some(cas))
}

/// The GET of one page of the attack list (the configured path, or a page's `next`).
pub fn page_request(a: &AttackListSettings, path: &str) -> CallRequest {
    a.headers.iter().fold(
        CallRequest::new("GET", &a.cluster, &a.authority, path, a.timeout_ms)
            .header("accept", "application/json"),
        |c, (k, v)| c.header(k, v),
    )
}

/// The validators of a stored feed: its `ETag` and `Last-Modified`, as the server sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// The validators of an answer (values that are empty or too long are left out).
    pub fn of(answer: &CallAnswer) -> Validators {
        let usable = |name: &str| {
            answer
                .header(name)
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_LEN)
                .map(str::to_string)
        };
        Validators {
            etag: usable("etag"),
            last_modified: usable("last-modified"),
        }
    }

    /// True when there is neither.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    /// The validators stored for the live feed generation; `None` when there are none or they
    /// describe another generation.
    pub fn load(store: &impl Store) -> Option<Validators> {
        let (bytes, _) = store.get(VALIDATORS_KEY);
        let bytes = bytes?;
        let (generation, rest) = bytes.split_first_chunk::<4>()?;
        if u32::from_le_bytes(*generation) != Meta::load(store).0.generation {
            return None;
        }
        let (etag, rest) = take_field(rest)?;
        let (last_modified, _) = take_field(rest)?;
        let v = Validators {
            etag,
            last_modified,
        };
        (!v.is_empty()).then_some(v)
    }

    /// Remember these validators for feed `generation` (an empty set clears them).
    pub fn save(&self, store: &impl Store, generation: u32) -> bool {
        if self.is_empty() {
            return store.set(VALIDATORS_KEY, &[], None);
        }
        let mut out = generation.to_le_bytes().to_vec();
        for f in [&self.etag, &self.last_modified] {
            let f = f.as_deref().unwrap_or("");
            out.extend_from_slice(&(f.len() as u16).to_le_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        store.set(VALIDATORS_KEY, &out, None)
    }

    /// `call` with `If-None-Match` / `If-Modified-Since` added.
    pub fn apply(&self, call: CallRequest) -> CallRequest {
        let call = match &self.etag {
            Some(e) => call.header("if-none-match", e),
            None => call,
        };
        match &self.last_modified {
            Some(l) => call.header("if-modified-since", l),
            None => call,
        }
    }
}

/// One length-prefixed field of [`VALIDATORS_KEY`] (`None` inside when empty).
fn take_field(b: &[u8]) -> Option<(Option<String>, &[u8])> {
    let (len, rest) = b.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    let (v, rest) = (rest.get(..len)?, rest.get(len..)?);
    let v = std::str::from_utf8(v).ok()?;
    Some(((!v.is_empty()).then(|| v.to_string()), rest))
}

/// Pages of a paginated attack list read so far (kept compactly, see [`FeedBuilder`]).
#[derive(Debug, Default)]
struct Partial {
    feed: FeedBuilder,
    pages: u32,
}

/// A complete feed being written, and what to record once it is.
#[derive(Debug)]
struct Writing {
    writer: FeedWriter,
    /// The validators of a one-page feed (none for a paginated one), saved with its generation.
    validators: Validators,
}

/// One VM's attack-list poller.
#[derive(Debug)]
pub struct Poller {
    /// Random per-VM identity for the poll election.
    vm_token: u64,
    /// The page request in flight.
    token: Option<u32>,
    /// The request in flight is a conditional first page (a 304 is an answer to it).
    conditional: bool,
    partial: Option<Partial>,
    /// The feed being written, between the last page and the flip (and clean-up).
    writing: Option<Writing>,
    /// Work per write slice ([`Poller::set_serving`]).
    slice_ms: u64,
}

/// What one page's answer did.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The next page was requested.
    NextPage,
    /// The feed is complete: its write has started.
    Writing,
    /// `304 Not Modified`: the stored feed stays as it is.
    Unchanged,
}

impl Poller {
    /// A poller for the VM `vm_token` (a random per-VM value).
    pub fn new(vm_token: u64) -> Poller {
        Poller {
            vm_token,
            token: None,
            conditional: false,
            partial: None,
            writing: None,
            slice_ms: WRITE_SLICE_MS,
        }
    }

    /// Whether this VM serves requests (the default): its feed writes then pause every
    /// [`WRITE_SLICE_MS`], else every [`IDLE_WRITE_SLICE_MS`].
    pub fn set_serving(&mut self, serving: bool) {
        self.slice_ms = if serving {
            WRITE_SLICE_MS
        } else {
            IDLE_WRITE_SLICE_MS
        };
    }

    /// Whether `token` is this poller's call.
    pub fn owns(&self, token: u32) -> bool {
        self.token == Some(token)
    }

    /// Whether a poll is under way: a page request in flight or a feed being written.
    pub fn in_flight(&self) -> bool {
        self.token.is_some() || self.writing.is_some()
    }

    /// Whether a feed is being written (the adapter then ticks every few ms, so that slices
    /// follow each other closely).
    pub fn writing(&self) -> bool {
        self.writing.is_some()
    }

    /// On the root context's tick: run the next slice of the feed being written, if one is;
    /// else start a poll if one is configured, none is in flight and this VM wins this
    /// interval's election.
    pub fn tick(&mut self, host: &impl Host, settings: Option<&AttackListSettings>, now_ms: u64) {
        if self.writing.is_some() {
            self.write_slice(host, settings, now_ms);
            return;
        }
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
        let validators = Validators::load(host);
        if let Err(e) = self.request_page(host, a, &a.path, validators.as_ref()) {
            log::warn!("api-warden: attack-list poll not sent: {e}");
            host.increment(Counter::AttackListPollsFailed, 1);
        }
    }

    fn request_page(
        &mut self,
        host: &impl Host,
        a: &AttackListSettings,
        path: &str,
        validators: Option<&Validators>,
    ) -> Result<(), String> {
        let call = page_request(a, path);
        let call = match validators {
            Some(v) => v.apply(call),
            None => call,
        };
        let t = host.dispatch(&call).map_err(|e| e.to_string())?;
        self.token = Some(t);
        self.conditional = validators.is_some();
        Ok(())
    }

    /// The answer to a call: returns false when `token` is not this poller's. Follows `next`,
    /// or starts writing the whole feed on the last page (and writes its first slice now), or
    /// keeps the last good list on a failure; the outcome is logged and counted (a write's when
    /// it ends).
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
        let result = self.read_page(host, a, answer);
        if result == Ok(Step::NextPage) {
            return true;
        }
        self.partial = None;
        match result {
            Ok(Step::NextPage) => {}
            Ok(Step::Writing) => self.write_slice(host, settings, host.now_ms()),
            Ok(Step::Unchanged) => {
                log::debug!("api-warden: attack list not modified");
                host.increment(Counter::AttackListPollsOk, 1);
                host.increment(Counter::AttackListNotModified, 1);
            }
            Err(e) => failed(host, &e),
        }
        true
    }

    /// One slice of the feed being written; its end is logged and counted.
    fn write_slice(&mut self, host: &impl Host, settings: Option<&AttackListSettings>, now: u64) {
        let Some(w) = self.writing.as_mut() else {
            return;
        };
        if let Some(a) = settings {
            keep_poll(host, self.vm_token, now, a.interval_s.saturating_mul(1000));
        }
        match w.writer.step(host, host, self.slice_ms) {
            Ok(Progress::More) => {}
            Ok(Progress::Done {
                generation,
                entries,
            }) => {
                let skipped = w.writer.feed().skipped;
                if !w.validators.save(host, generation) {
                    log::warn!("api-warden: attack-list validators not stored");
                }
                self.writing = None;
                log::info!(
                    "api-warden: attack list loaded: {entries} entries (generation {generation}, {skipped} skipped)"
                );
                host.increment(Counter::AttackListPollsOk, 1);
            }
            Err(e) => {
                self.writing = None;
                failed(host, &e.to_string());
            }
        }
    }

    /// One page's answer.
    fn read_page(
        &mut self,
        host: &impl Host,
        a: &AttackListSettings,
        answer: &CallAnswer,
    ) -> Result<Step, String> {
        let conditional = std::mem::take(&mut self.conditional);
        match answer.status {
            Some(200) => {}
            Some(304) if conditional => return Ok(Step::Unchanged),
            Some(304) => return Err("304 Not Modified to a request without validators".into()),
            Some(s) => return Err(format!("status {s}")),
            None => return Err("no response (timeout or connection failure)".to_string()),
        }
        if answer.body_size > a.max_body_bytes {
            return Err(format!(
                "body of {} bytes exceeds max_body_bytes {}",
                answer.body_size, a.max_body_bytes
            ));
        }
        let mut partial = self.partial.take().unwrap_or_default();
        let next = partial.feed.add_page(&answer.body, host.now_ms())?;
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
                self.request_page(host, a, &n, None)
                    .map(|()| Step::NextPage)
                    .map_err(|e| format!("requesting page {}: {e}", pages + 2))
            }
            None => {
                // Only a one-page feed is described by its validators.
                let validators = if pages == 0 {
                    Validators::of(answer)
                } else {
                    Validators::default()
                };
                self.writing = Some(Writing {
                    writer: FeedWriter::new(host, partial.feed),
                    validators,
                });
                Ok(Step::Writing)
            }
        }
    }
}

/// A poll that failed: logged and counted; the stored feed stays.
fn failed(host: &impl Host, e: &str) {
    log::warn!("api-warden: attack-list poll failed, keeping the last good list: {e}");
    host.increment(Counter::AttackListPollsFailed, 1);
}

#[cfg(test)]
mod tests;
