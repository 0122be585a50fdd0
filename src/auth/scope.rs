//! What a credential may do.

use std::fmt;
use std::str::FromStr;

/// One permission. Routes each need one (see `http::access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Predict,
    FeaturesRead,
    Admin,
}

impl Scope {
    pub const ALL: [Self; 3] = [Self::Predict, Self::FeaturesRead, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Predict => "predict",
            Self::FeaturesRead => "features:read",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Predict => 1,
            Self::FeaturesRead => 2,
            Self::Admin => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}` (known: predict, features:read, admin)")]
pub struct ScopeError(pub String);

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| ScopeError(text.to_owned()))
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Parses every name; the first unknown one is the error.
    pub fn parse_all<S: AsRef<str>>(names: &[S]) -> Result<Self, ScopeError> {
        names
            .iter()
            .map(|name| name.as_ref().parse::<Scope>())
            .collect()
    }

    /// Keeps the names it knows: a token may carry scopes meant for other services.
    pub fn known<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        names
            .into_iter()
            .filter_map(|name| name.parse().ok())
            .collect()
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|scope| self.contains(*scope))
            .map(Scope::as_str)
            .collect()
    }
}

/// A list of scope names, every one known (the config file's `scopes`).
impl<'de> serde::Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = <Vec<String> as serde::Deserialize>::deserialize(deserializer)?;
        Self::parse_all(&names).map_err(serde::de::Error::custom)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Self(scopes.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_strictly_from_config_and_leniently_from_tokens() {
        let scopes = Scopes::parse_all(&["predict", "admin"]).expect("known scopes");
        assert!(scopes.contains(Scope::Predict) && scopes.contains(Scope::Admin));
        assert!(!scopes.contains(Scope::FeaturesRead));
        assert_eq!(scopes.names(), ["predict", "admin"]);
        assert_eq!(
            Scopes::parse_all(&["predict", "write"]),
            Err(ScopeError("write".to_owned()))
        );
        let from_token = Scopes::known("features:read openid".split(' '));
        assert_eq!(from_token.names(), ["features:read"]);
    }
}
