//! The vocabulary of lists and decisions: the five identifier types ASE's lists hold, the two
//! lists, where an entry came from, and [`PerType`], a map with one slot per identifier type.
//! No host calls.

/// The five identifier types that deny and allow lists hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdType {
    Ip,
    Token,
    ApiKey,
    Cookie,
    Username,
}

impl IdType {
    /// All types, in the order reasons are checked (and the order of every [`PerType`]).
    pub const ALL: [IdType; 5] = [
        IdType::Ip,
        IdType::Token,
        IdType::ApiKey,
        IdType::Cookie,
        IdType::Username,
    ];

    /// Name used in configuration, records and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::Ip => "ip",
            IdType::Token => "token",
            IdType::ApiKey => "api_key",
            IdType::Cookie => "cookie",
            IdType::Username => "username",
        }
    }

    /// Inverse of [`IdType::as_str`].
    pub fn parse(s: &str) -> Option<IdType> {
        IdType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Position in [`IdType::ALL`] (stable: it is part of the shared-data layout).
    pub fn index(self) -> usize {
        match self {
            IdType::Ip => 0,
            IdType::Token => 1,
            IdType::ApiKey => 2,
            IdType::Cookie => 3,
            IdType::Username => 4,
        }
    }
}

/// One value per identifier type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerType<T> {
    pub ip: T,
    pub token: T,
    pub api_key: T,
    pub cookie: T,
    pub username: T,
}

impl<T> PerType<T> {
    /// A map with `f(t)` for every type.
    pub fn from_fn(mut f: impl FnMut(IdType) -> T) -> PerType<T> {
        PerType {
            ip: f(IdType::Ip),
            token: f(IdType::Token),
            api_key: f(IdType::ApiKey),
            cookie: f(IdType::Cookie),
            username: f(IdType::Username),
        }
    }

    /// The value of type `t`.
    pub fn get(&self, t: IdType) -> &T {
        match t {
            IdType::Ip => &self.ip,
            IdType::Token => &self.token,
            IdType::ApiKey => &self.api_key,
            IdType::Cookie => &self.cookie,
            IdType::Username => &self.username,
        }
    }

    /// The value of type `t`, mutably.
    pub fn get_mut(&mut self, t: IdType) -> &mut T {
        match t {
            IdType::Ip => &mut self.ip,
            IdType::Token => &mut self.token,
            IdType::ApiKey => &mut self.api_key,
            IdType::Cookie => &mut self.cookie,
            IdType::Username => &mut self.username,
        }
    }

    /// Every (type, value), in [`IdType::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (IdType, &T)> {
        IdType::ALL.into_iter().map(move |t| (t, self.get(t)))
    }
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Deny,
    Allow,
}

impl ListKind {
    /// Both lists.
    pub const ALL: [ListKind; 2] = [ListKind::Deny, ListKind::Allow];

    /// Name used in the admin API and records.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Deny => "deny_list",
            ListKind::Allow => "allow_list",
        }
    }
}

/// Where a list entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The plugin configuration.
    Config,
    /// The analytics engine's attack-list feed.
    AttackList,
    /// The admin API.
    Admin,
    /// api-warden's own detection (a missing mandatory token).
    Detected,
    /// A client that touched a decoy API.
    Decoy,
    /// A client that violated an API's pattern enforcement.
    Pattern,
}

impl Source {
    /// Name used in the admin API, records and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::AttackList => "attack_list",
            Source::Admin => "admin",
            Source::Detected => "detected",
            Source::Decoy => "decoy",
            Source::Pattern => "pattern",
        }
    }

    /// Whether api-warden created the entry itself (subject to `enable_ase_detected_attack`).
    pub fn is_detection(self) -> bool {
        matches!(self, Source::Detected | Source::Decoy | Source::Pattern)
    }

    /// The byte stored in shared data (part of the layout: never renumber).
    pub fn code(self) -> u8 {
        match self {
            Source::Config => 0,
            Source::AttackList => 1,
            Source::Admin => 2,
            Source::Detected => 3,
            Source::Decoy => 4,
            Source::Pattern => 5,
        }
    }

    /// Inverse of [`Source::code`]; unknown codes read as `config`.
    pub fn from_code(c: u8) -> Source {
        match c {
            1 => Source::AttackList,
            2 => Source::Admin,
            3 => Source::Detected,
            4 => Source::Decoy,
            5 => Source::Pattern,
            _ => Source::Config,
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn per_type_slots_follow_all() {
        let mut m = PerType::from_fn(|t| t.index());
        for (i, (t, v)) in m.iter().enumerate() {
            assert_eq!((t, *v), (IdType::ALL[i], i));
        }
        *m.get_mut(IdType::Cookie) = 9;
        assert_eq!(*m.get(IdType::Cookie), 9);
    }

    #[test]
    fn names_round_trip() {
        for t in IdType::ALL {
            assert_eq!(IdType::parse(t.as_str()), Some(t));
        }
        for s in [
            Source::Config,
            Source::AttackList,
            Source::Admin,
            Source::Detected,
        ] {
            assert_eq!(Source::from_code(s.code()), s);
        }
    }
}
