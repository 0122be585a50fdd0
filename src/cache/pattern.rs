//! Patterns of cache keys for invalidation: the key layout with `*` (any run of characters)
//! and `?` (one character), as Redis `SCAN MATCH` reads them, e.g. `prediction:home_win:*`.

use std::fmt;
use std::str::FromStr;

use super::keys::INVALIDATABLE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a key pattern: it starts with `prediction:`, `features:` or `*`, has at most 200 \
     visible characters, and uses only `*` and `?` as wildcards"
)]
pub struct KeyPatternError(pub String);

impl FromStr for KeyPattern {
    type Err = KeyPatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known_start = INVALIDATABLE.iter().any(|start| s.starts_with(start));
        let plain = s
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b'\\'));
        if known_start && plain && s.len() <= 200 {
            Ok(Self(s.to_owned()))
        } else {
            Err(KeyPatternError(s.to_owned()))
        }
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl KeyPattern {
    /// A pattern built by `keys` from the layout, valid by construction.
    pub(super) fn from_layout(pattern: String) -> Self {
        Self(pattern)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `key` (without the tier's prefix) matches.
    pub fn matches(&self, key: &str) -> bool {
        glob(self.0.as_bytes(), key.as_bytes())
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matching with one backtrack point for the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> KeyPattern {
        text.parse().expect("valid pattern")
    }

    #[test]
    fn globs_match_like_redis() {
        let key = "prediction:home_win:1:KCA202404100:00ab";
        assert!(pattern("prediction:*").matches(key));
        assert!(pattern("prediction:home_win:?:*").matches(key));
        assert!(pattern("*KCA202404100*").matches(key));
        assert!(pattern("*").matches(key));
        assert!(!pattern("prediction:other:*").matches(key));
        assert!(!pattern("features:*").matches(key));
        assert!(pattern("features:v1:BOS@NYA20250405").matches("features:v1:BOS@NYA20250405"));
    }

    #[test]
    fn patterns_are_checked_at_the_edge() {
        for bad in [
            "",
            "games:*",
            "prediction:[a-z]",
            "prediction: x",
            &"prediction:".repeat(30),
        ] {
            assert!(bad.parse::<KeyPattern>().is_err(), "{bad}");
        }
    }
}
