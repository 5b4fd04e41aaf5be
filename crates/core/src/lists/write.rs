//! Writing a read feed ([`FeedBuilder`]) into shared data in slices: [`FeedWriter`] does the
//! work of a replacement a time budget at a time, so the worker that polled keeps serving
//! requests between slices, with the same atomicity as a write in one go. No host calls.
//!
//! A replacement writes every bucket of the new generation into the inactive slot, flips the
//! generation in `aw:meta` with CAS, then clears the slot of the previous generation. Readers
//! follow `aw:meta`, so however many slices the writing takes they see the old generation until
//! the flip, then the complete new one. A writer that flipped the feed while this one wrote wins:
//! this one stops with [`UpdateError::Superseded`] at its next slice or at its flip, and clears
//! nothing; one that flips after this one's flip stops this one's clean-up.
//!
//! Each type is written in three resumable passes, without sorting all of its keys at once:
//! read the arena once, noting one sort key per entry (`hash & !0xffff_ffff | position`) and
//! counting the entries per bucket; place each key in its bucket's range of a second index (a
//! counting sort: the two indexes cost 16 bytes per entry of the largest type while it is
//! written, the hashing is done once); then, bucket by bucket, sort the bucket's keys
//! (duplicates are next to each other, same hash, in arrival order), de-duplicate, encode and
//! write. The result is the same as sorting every key at once, and about as fast.

use std::borrow::Borrow;

use super::build::{feed_bucket_count, longest, Arena, Cursor};
use super::*;
use crate::host::Clock;

/// Entries counted or placed between two looks at the clock.
const ENTRIES_PER_LOOK: usize = 4096;
/// Buckets written or cleared between two looks at the clock.
const BUCKETS_PER_LOOK: u32 = 32;

/// What a slice of [`FeedWriter::step`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More to do: call `step` again.
    More,
    /// The feed is replaced (and the previous slot cleared).
    Done {
        /// The new generation.
        generation: u32,
        /// Distinct entries stored.
        entries: usize,
    },
}

/// Where a write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Counting the entries of type `t` per bucket.
    Count { t: usize, cur: Cursor },
    /// Placing the sort keys of type `t` from `arrived[i]` on in their buckets' ranges.
    Place { t: usize, i: usize },
    /// Writing the buckets of type `t` from bucket `b` on.
    Write { t: usize, b: u32 },
    /// Every bucket is written: flip the generation.
    Flip,
    /// Clearing the previous generation's buckets of type `t` from bucket `b` on.
    Clear { t: usize, b: u32 },
    /// Finished (replaced, or failed).
    Finished,
}

/// A feed replacement in progress; see the module documentation. `F` is the feed, owned (the
/// poller hands it over) or borrowed ([`store_feed`]).
#[derive(Debug)]
pub struct FeedWriter<F = FeedBuilder> {
    feed: F,
    /// The generation live when the write started; the flip succeeds only if it still is.
    old_generation: u32,
    new_generation: u32,
    /// Buckets and distinct entries per type of the new generation, as written so far.
    buckets: [u32; 5],
    counts: [u32; 5],
    /// The previous generation's header, once flipped (its slot is the one cleared).
    previous: Meta,
    /// The current type's sort keys, grouped by bucket: bucket `b` is `keys[starts[b]..starts[b + 1]]`.
    keys: Vec<u64>,
    /// While counting and placing: see [`FeedWriter::count`] and [`FeedWriter::place`].
    starts: Vec<u32>,
    /// The current type's sort keys in arrival order (while counting and placing).
    arrived: Vec<u64>,
    phase: Phase,
    /// The error that ended the write, if one did.
    failed: Option<UpdateError>,
}

/// A clock that never moves: with an unbounded budget, one step does everything.
struct Stopped;

impl Clock for Stopped {
    fn now_ms(&self) -> u64 {
        0
    }
}

impl<F: Borrow<FeedBuilder>> FeedWriter<F> {
    /// Start replacing the feed with `feed` (reads the live generation now; writes nothing yet).
    pub fn new(store: &impl Store, feed: F) -> FeedWriter<F> {
        let old_generation = Meta::load(store).0.generation;
        let mut w = FeedWriter {
            feed,
            old_generation,
            new_generation: old_generation.wrapping_add(1).max(1),
            buckets: [0; 5],
            counts: [0; 5],
            previous: Meta::default(),
            keys: Vec::new(),
            starts: Vec::new(),
            arrived: Vec::new(),
            phase: Phase::Finished,
            failed: None,
        };
        w.phase = w.begin_type(0);
        w
    }

    /// The feed being written.
    pub fn feed(&self) -> &FeedBuilder {
        self.feed.borrow()
    }

    /// Do the next part of the replacement until `budget_ms` of `clock` time have passed (the
    /// clock is read every few thousand entries or few dozen buckets, so a slice overruns its
    /// budget by about that much work). A budget of 0 still does one unit of work. Once done
    /// or failed the writer is finished: further steps change nothing and give the same answer.
    pub fn step(
        &mut self,
        store: &impl Store,
        clock: &impl Clock,
        budget_ms: u64,
    ) -> Result<Progress, UpdateError> {
        let deadline = clock.now_ms().saturating_add(budget_ms);
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // Another writer that flipped the feed since the last slice wins: before our flip, stop
        // writing at once (our slot may be the one it made live); after it, stop clearing (our
        // previous slot may be the one it is writing).
        let live = Meta::load(store).0.generation;
        let result = match self.phase {
            Phase::Clear { .. } if live != self.new_generation => {
                self.phase = Phase::Finished;
                self.run(store, clock, deadline)
            }
            Phase::Count { .. } | Phase::Place { .. } | Phase::Write { .. } | Phase::Flip
                if live != self.old_generation =>
            {
                Err(UpdateError::Superseded)
            }
            _ => self.run(store, clock, deadline),
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.keys = Vec::new();
            self.starts = Vec::new();
            self.arrived = Vec::new();
        }
        result
    }

    fn run(
        &mut self,
        store: &impl Store,
        clock: &impl Clock,
        deadline: u64,
    ) -> Result<Progress, UpdateError> {
        let late = || clock.now_ms() >= deadline;
        loop {
            self.phase = match self.phase {
                Phase::Count { t, cur } => self.count(t, cur, &late),
                Phase::Place { t, i } => self.place(t, i, &late),
                Phase::Write { t, b } => self.write(store, t, b, &late)?,
                Phase::Flip => self.flip(store)?,
                Phase::Clear { t, b } => self.clear(store, t, b, &late),
                Phase::Finished => {
                    return Ok(Progress::Done {
                        generation: self.new_generation,
                        entries: self.counts.iter().map(|c| *c as usize).sum(),
                    })
                }
            };
            if self.phase != Phase::Finished && late() {
                return Ok(Progress::More);
            }
        }
    }

    fn arena(&self, t: usize) -> Option<&Arena> {
        self.feed.borrow().arenas.get(t)
    }

    /// The first phase of type `t` (the next type with entries, or the flip).
    fn begin_type(&mut self, t: usize) -> Phase {
        let mut t = t;
        while let Some(a) = self.arena(t) {
            let count = a.count;
            if count > 0 {
                let nb = feed_bucket_count(count, a.bytes);
                if let Some(b) = self.buckets.get_mut(t) {
                    *b = nb;
                }
                self.starts.clear();
                self.starts.resize(nb as usize + 1, 0);
                self.arrived.clear();
                self.arrived.reserve(count);
                return Phase::Count {
                    t,
                    cur: Cursor::default(),
                };
            }
            t += 1;
        }
        self.keys = Vec::new();
        self.starts = Vec::new();
        self.arrived = Vec::new();
        Phase::Flip
    }

    fn bucket_count(&self, t: usize) -> u32 {
        self.buckets.get(t).copied().unwrap_or(0)
    }

    /// Note the sort key of each of type `t`'s entries in `arrived` and count them per bucket into
    /// `starts`, then turn the counts into the end of each bucket's range (`starts[b]` = entries
    /// of buckets `0..=b`).
    fn count(&mut self, t: usize, mut cur: Cursor, late: &impl Fn() -> bool) -> Phase {
        let nb = self.bucket_count(t);
        let feed = self.feed.borrow();
        let Some(a) = feed.arenas.get(t) else {
            return Phase::Flip;
        };
        loop {
            for _ in 0..ENTRIES_PER_LOOK {
                let Some((pos, v)) = a.next(&mut cur) else {
                    let mut total = 0u32;
                    for s in self.starts.iter_mut() {
                        total += *s;
                        *s = total;
                    }
                    self.keys.clear();
                    self.keys.resize(total as usize, 0);
                    return Phase::Place { t, i: 0 };
                };
                let key = feed_hash(v) & !0xffff_ffff | u64::from(pos);
                self.arrived.push(key);
                if let Some(s) = self.starts.get_mut(feed_bucket_of(key, nb) as usize) {
                    *s += 1;
                }
            }
            if late() {
                return Phase::Count { t, cur };
            }
        }
    }

    /// Place each key of `arrived` at the end of its bucket's free range (`starts[b]` moves
    /// down; once every key is placed it is the start of bucket `b`).
    fn place(&mut self, t: usize, i: usize, late: &impl Fn() -> bool) -> Phase {
        let nb = self.bucket_count(t);
        let mut i = i;
        loop {
            let end = (i + ENTRIES_PER_LOOK).min(self.arrived.len());
            for key in self.arrived.get(i..end).unwrap_or_default() {
                if let Some(s) = self.starts.get_mut(feed_bucket_of(*key, nb) as usize) {
                    *s = s.saturating_sub(1);
                    if let Some(k) = self.keys.get_mut(*s as usize) {
                        *k = *key;
                    }
                }
            }
            i = end;
            if i >= self.arrived.len() {
                self.arrived.clear();
                return Phase::Write { t, b: 0 };
            }
            if late() {
                return Phase::Place { t, i };
            }
        }
    }

    /// Write type `t`'s buckets from `b` on, in slot `new_generation % 2`.
    fn write(
        &mut self,
        store: &impl Store,
        t: usize,
        b: u32,
        late: &impl Fn() -> bool,
    ) -> Result<Phase, UpdateError> {
        let nb = self.bucket_count(t);
        let slot = self.new_generation % 2;
        let feed = self.feed.borrow();
        let (Some(a), Some(ty)) = (feed.arenas.get(t), IdType::ALL.get(t).copied()) else {
            return Ok(Phase::Flip);
        };
        let mut group: Vec<(u64, u32, &[u8])> = Vec::new();
        let mut out = Vec::new();
        let mut key = String::new();
        let mut distinct = 0u32;
        let mut b = b;
        let mut since_look = 0u32;
        while b < nb {
            if since_look == BUCKETS_PER_LOOK {
                since_look = 0;
                if late() {
                    break;
                }
            }
            since_look += 1;
            let start = self.starts.get(b as usize).copied().unwrap_or(0) as usize;
            let end = self.starts.get(b as usize + 1).copied().unwrap_or(0) as usize;
            let mine = self.keys.get_mut(start..end).unwrap_or_default();
            mine.sort_unstable();
            group.clear();
            for k in mine.iter() {
                let Some((exp, v)) = a.at(*k as u32) else {
                    continue;
                };
                let hash = k & !0xffff_ffff;
                // A duplicate has the same hash, so it is among the entries just kept with it.
                let same = group
                    .iter_mut()
                    .rev()
                    .take_while(|g| g.0 == hash)
                    .find(|g| g.2 == v);
                match same {
                    Some(g) => {
                        if longest(exp, g.1).is_lt() {
                            g.1 = exp;
                        }
                    }
                    None => group.push((hash, exp, v)),
                }
            }
            out.clear();
            for (h, exp, v) in &group {
                encode_feed(&mut out, *h, v, u64::from(*exp));
            }
            distinct += group.len() as u32;
            // Every bucket is written, the empty ones too: the slot may still hold data of an
            // older generation whose clean-up did not finish, and it must not show.
            key.clear();
            push_feed_key(&mut key, slot, ty, b);
            if !store.set(&key, &out, None) {
                return Err(UpdateError::Store(format!(
                    "writing {} feed bucket {b} failed",
                    ty.as_str()
                )));
            }
            b += 1;
        }
        if let Some(c) = self.counts.get_mut(t) {
            *c += distinct;
        }
        if b < nb {
            return Ok(Phase::Write { t, b });
        }
        Ok(self.begin_type(t + 1))
    }

    /// Make the new generation live, unless another writer flipped the feed meanwhile.
    fn flip(&mut self, store: &impl Store) -> Result<Phase, UpdateError> {
        let mut previous = Meta::default();
        let mut superseded = false;
        let (old, new) = (self.old_generation, self.new_generation);
        let (buckets, counts) = (self.buckets, self.counts);
        let ok = Meta::update(store, |m| {
            previous = m.clone();
            // Another writer flipped the feed while we wrote (overlapping polls): our slot may
            // be the one it just made live. Leave its generation alone and never clear its slot.
            superseded = m.generation != old;
            if !superseded {
                m.generation = new;
                m.feed_buckets = buckets;
                m.feed_count = counts;
            }
        });
        if !ok {
            return Err(UpdateError::Contention);
        }
        if superseded {
            return Err(UpdateError::Superseded);
        }
        if previous.generation == 0 {
            return Ok(Phase::Finished);
        }
        self.previous = previous;
        Ok(self.next_clear(0))
    }

    /// The first type from `t` on that the previous generation stored entries of.
    fn next_clear(&self, t: usize) -> Phase {
        (t..IdType::ALL.len())
            .find(|t| self.previous.feed_count.get(*t).copied().unwrap_or(0) > 0)
            .map_or(Phase::Finished, |t| Phase::Clear { t, b: 0 })
    }

    /// Clear the previous slot's buckets of type `t` from `b` on (no longer referenced; all of
    /// them were written by that generation, so they exist: one write each, no read).
    fn clear(&mut self, store: &impl Store, t: usize, b: u32, late: &impl Fn() -> bool) -> Phase {
        let old_slot = self.previous.generation % 2;
        let nb = self.previous.feed_buckets.get(t).copied().unwrap_or(0);
        let Some(ty) = IdType::ALL.get(t).copied() else {
            return Phase::Finished;
        };
        let mut key = String::new();
        let mut b = b;
        let mut since_look = 0u32;
        while b < nb {
            if since_look == BUCKETS_PER_LOOK {
                since_look = 0;
                if late() {
                    return Phase::Clear { t, b };
                }
            }
            since_look += 1;
            key.clear();
            push_feed_key(&mut key, old_slot, ty, b);
            store.set(&key, &[], None);
            b += 1;
        }
        self.next_clear(t + 1)
    }
}

/// Replace the feed atomically with what `feed` holds, in one go (a [`FeedWriter`] stepped
/// with no time limit). Returns the new generation and the distinct entries stored.
pub fn store_feed(store: &impl Store, feed: &FeedBuilder) -> Result<(u32, usize), UpdateError> {
    let mut w = FeedWriter::new(store, feed);
    loop {
        if let Progress::Done {
            generation,
            entries,
        } = w.step(store, &Stopped, u64::MAX)?
        {
            return Ok((generation, entries));
        }
    }
}

#[cfg(test)]
mod tests;
