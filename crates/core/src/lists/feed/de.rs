//! Streaming deserialization of an attack-list document in either shape (see
//! [`Feed::parse_page`](super::Feed::parse_page)): the values are read straight into per-type
//! vectors, with no JSON tree of the whole document. No host calls.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::identity::IdType;

/// Which document shape a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// api-warden's: `ip`, `token`, `api_key`, `cookie`, `username` (arrays).
    Ours,
    /// ABS's: `ips`, `oauth_tokens`, `api_keys`, `usernames` (arrays), `cookies` (an object of
    /// cookie name → array).
    Abs,
}

/// A key of either shape: its type and shape (`None`: not an identifier key).
fn key_type(key: &str) -> Option<(IdType, Shape)> {
    let abs = match key {
        "ips" => IdType::Ip,
        "oauth_tokens" => IdType::Token,
        "api_keys" => IdType::ApiKey,
        "cookies" => IdType::Cookie,
        "usernames" => IdType::Username,
        _ => return IdType::parse(key).map(|t| (t, Shape::Ours)),
    };
    Some((abs, Shape::Abs))
}

/// Where the items go as they are read: (type, value, expiry in Unix seconds, 0 = never).
pub(super) type Sink<'s> = &'s mut dyn FnMut(IdType, &str, u64);

/// The count of unusable items, the shape seen and `next` (the items went to the sink).
#[derive(Default)]
pub(in crate::lists) struct Raw {
    pub(in crate::lists) skipped: usize,
    pub(super) shape: Option<Shape>,
    /// `next`: the path of the following page, when the feed is paginated.
    pub(in crate::lists) next: Option<String>,
}

/// Parse `body`, handing every item to `sink` as it is read (a document that turns out bad may
/// have handed some over: the caller drops what it got); relative TTLs count from `now_ms`.
pub(super) fn parse(body: &[u8], now_ms: u64, sink: Sink) -> Result<Raw, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = DocSeed { now_ms, sink }
        .deserialize(&mut de)
        .and_then(|raw| de.end().map(|()| raw))
        .map_err(|e| format!("attack list is not valid: {e}"))?;
    Ok(raw)
}

struct DocSeed<'s> {
    now_ms: u64,
    sink: Sink<'s>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = Raw;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_> {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of identifier type -> array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut raw = Raw::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "next" {
                raw.next = map
                    .next_value::<Option<String>>()?
                    .filter(|n| !n.is_empty());
                continue;
            }
            let Some((t, shape)) = key_type(&key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if raw.shape.is_some_and(|s| s != shape) {
                return Err(de::Error::custom(format!(
                    "`{key}` mixes ABS's keys (ips, oauth_tokens, api_keys, cookies, usernames) \
                     with api-warden's (ip, token, api_key, cookie, username)"
                )));
            }
            raw.shape = Some(shape);
            let seed = ItemsSeed {
                ctx: Ctx {
                    now_ms: self.now_ms,
                    shape,
                },
                t,
                sink: &mut *self.sink,
            };
            let skipped = if t == IdType::Cookie && shape == Shape::Abs {
                map.next_value_seed(Opt(CookiesSeed(seed)))?
            } else {
                map.next_value_seed(Opt(seed))?
            };
            raw.skipped += skipped.unwrap_or(0);
        }
        Ok(raw)
    }
}

/// `null` or what the inner seed reads.
struct Opt<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Opt<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Opt<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a list")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// How an item's `ttl` counts (ABS: minutes) and from when.
#[derive(Clone, Copy)]
struct Ctx {
    now_ms: u64,
    shape: Shape,
}

/// Reads one type's array into the sink; its value is the count of unusable items.
struct ItemsSeed<'s> {
    ctx: Ctx,
    t: IdType,
    sink: Sink<'s>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut skipped = 0;
        while let Some(item) = seq.next_element_seed(ItemSeed(self.ctx))? {
            match item {
                Some((v, e)) => (self.sink)(self.t, &v, e),
                None => skipped += 1,
            }
        }
        Ok(skipped)
    }
}

/// ABS's `cookies`: cookie name -> array. The name is not kept: api-warden matches a cookie's
/// value against the cookie its API names.
struct CookiesSeed<'s>(ItemsSeed<'s>);

impl<'de> DeserializeSeed<'de> for CookiesSeed<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CookiesSeed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of cookie name -> array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut skipped = 0;
        let ItemsSeed { ctx, t, sink } = self.0;
        while map.next_key::<IgnoredAny>()?.is_some() {
            let seed = ItemsSeed {
                ctx,
                t,
                sink: &mut *sink,
            };
            skipped += map.next_value_seed(Opt(seed))?.unwrap_or(0);
        }
        Ok(skipped)
    }
}

/// One item: a string, or an object with a string `value` and optionally `expires_at` (Unix
/// seconds), `ttl_s` (seconds) or, in ABS's shape, `ttl` (minutes, ABS's unit); a TTL of 0 never
/// expires. `None` for anything else (skipped and counted).
struct ItemSeed(Ctx);

impl<'de> DeserializeSeed<'de> for ItemSeed {
    type Value = Option<(Cow<'de, str>, u64)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A TTL member's value: a non-negative whole number, or `Err(())` for anything else.
fn ttl_number(v: &serde_json::Value) -> Result<u64, ()> {
    v.as_u64().ok_or(())
}

impl<'de> Visitor<'de> for ItemSeed {
    type Value = Option<(Cow<'de, str>, u64)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an object with a string \"value\"")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some((Cow::Borrowed(v), 0)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some((Cow::Owned(v.to_string()), 0)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some((Cow::Owned(v), 0)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value: Option<Cow<'de, str>> = None;
        let mut expires: Result<Option<u64>, ()> = Ok(None);
        let now_ms = self.0.now_ms;
        while let Some(key) = map.next_key::<String>()? {
            let unit_s = match (key.as_str(), self.0.shape) {
                ("value", _) if value.is_none() => {
                    // A nested `{"value": ...}` counts too (its lifetime does not).
                    value = map.next_value_seed(ItemSeed(self.0))?.map(|(v, _)| v);
                    continue;
                }
                ("expires_at", _) => None,
                ("ttl_s", _) => Some(1),
                ("ttl", Shape::Abs) => Some(60),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let n = ttl_number(&map.next_value::<serde_json::Value>()?);
            expires = n.map(|n| match (n, unit_s) {
                (0, _) => Some(0),
                (n, None) => Some(n),
                (n, Some(u)) => Some(crate::lists::expiry(now_ms, n.saturating_mul(u))),
            });
        }
        Ok(match (value, expires) {
            (Some(v), Ok(e)) => Some((v, e.unwrap_or(0))),
            _ => None,
        })
    }
}
