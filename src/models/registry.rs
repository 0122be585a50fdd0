//! Model versions on disk (`models/<name>/<version>/`), how requests name them, and one loaded
//! version as the catalog holds it.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::manifest::{Manifest, ManifestError};
use super::onnx::ModelError;
use super::pool::InferencePool;
use super::runtime::RuntimeError;
use crate::features::FeatureSpec;

/// `name` or `name@version`, as a request or the configuration names a model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub name: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a model reference (`name` or `name@version`: letters, digits, `_`, `-`, `.`, starting with a letter or digit)"
)]
pub struct ModelRefError(pub String);

impl FromStr for ModelRef {
    type Err = ModelRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // A part names a folder under `models.dir`: it starts with a letter or digit, so
        // `.` and `..` are never one.
        let valid = |part: &str| {
            part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.len() <= 64
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        let (name, version) = match s.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (s, None),
        };
        if valid(name) && version.is_none_or(valid) {
            Ok(Self {
                name: name.to_owned(),
                version: version.map(str::to_owned),
            })
        } else {
            Err(ModelRefError(s.to_owned()))
        }
    }
}

/// `models.default` in the configuration.
impl<'de> serde::Deserialize<'de> for ModelRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}@{version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One loaded model version.
#[derive(Debug)]
pub struct ServedModel {
    pub name: Arc<str>,
    pub version: Arc<str>,
    pub manifest: Manifest,
    /// The feature spec the model reads (its manifest's): `v1`, or `v2` with the starters.
    pub spec: FeatureSpec,
    /// XXH3-128 of the model file, in hex: tells a replaced artifact from the one before.
    pub fingerprint: String,
    /// Its first 64 bits, in cache keys: a version reloaded from another file never reads
    /// the answers of the one before.
    pub fingerprint_key: u64,
    pub pool: Arc<InferencePool>,
}

impl ServedModel {
    pub fn new(manifest: Manifest, fingerprint: String, pool: InferencePool) -> Self {
        let fingerprint_key = fingerprint
            .get(..16)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .unwrap_or_default();
        Self {
            name: manifest.name.as_str().into(),
            version: manifest.version.as_str().into(),
            spec: pool.spec(),
            manifest,
            fingerprint,
            fingerprint_key,
            pool: Arc::new(pool),
        }
    }

    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no model named `{0}`")]
    UnknownModel(String),
    #[error("model `{name}` has no version `{version}`")]
    UnknownVersion { name: String, version: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no model (a folder <name>/<version>/ with manifest.json) under {0}")]
    Empty(PathBuf),
    #[error("{path}: the manifest says {manifest}, the folder says {folder}")]
    Misplaced {
        path: PathBuf,
        manifest: String,
        folder: String,
    },
    #[error("configuration key `models.default` is invalid")]
    Default(#[source] ResolveError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("loading stopped: {0}")]
    Panicked(String),
}

/// Versions compare part by part on `.`, numerically where both parts are numbers, so
/// `2` < `10` and `1.9` < `1.10`.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

pub(super) fn folder_label(dir: &Path) -> String {
    let part = |path: Option<&Path>| {
        path.and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    format!("{}/{}", part(dir.parent()), part(Some(dir)))
}

/// `<dir>/<name>/<version>/` folders that hold a manifest.
pub(super) fn version_dirs(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RegistryError::Io { path, source }
    };
    let mut found = Vec::new();
    for name in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = name.map_err(io(dir))?.path();
        if !name.is_dir() {
            continue;
        }
        for version in std::fs::read_dir(&name).map_err(io(&name))? {
            let version = version.map_err(io(&name))?.path();
            if version.join(Manifest::FILE_NAME).is_file() {
                found.push(version);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs_parse_with_and_without_version() {
        assert_eq!(
            "home_win@1".parse::<ModelRef>(),
            Ok(ModelRef {
                name: "home_win".into(),
                version: Some("1".into())
            })
        );
        assert_eq!("home_win".parse::<ModelRef>().map(|m| m.version), Ok(None));
        for bad in [
            "",
            "@1",
            "home_win@",
            "a b",
            "x@1@2",
            "home/win",
            "..@1",
            "x@..",
            ".x",
        ] {
            assert!(bad.parse::<ModelRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_order_numerically() {
        assert_eq!(compare_versions("2", "10"), Ordering::Less);
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("1", "1.0"), Ordering::Less);
        assert_eq!(compare_versions("b", "a"), Ordering::Greater);
    }
}
