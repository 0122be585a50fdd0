//! What a settings section's `validate` answers when a value parses but cannot work. Every
//! module owns its settings and checks them; `settings` only collects the answers. A leaf:
//! it imports nothing of the crate.

/// A configuration key whose value cannot work, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}` is invalid: {reason}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub reason: String,
}

impl InvalidSetting {
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }
}

/// Fails on the first `(key, value)` whose value is zero.
pub fn at_least_one(values: &[(&'static str, u64)]) -> Result<(), InvalidSetting> {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err(InvalidSetting::new(key, "must be at least 1")),
        None => Ok(()),
    }
}
