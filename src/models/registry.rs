//! Every model version found under `models/<name>/<version>/`, loaded, warm and ready to run,
//! and the rule that picks one for a request.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::manifest::{Manifest, ManifestError};
use super::onnx::ModelError;
use super::pool::{InferencePool, PoolOptions};
use super::runtime::{self, RuntimeError};
use crate::features::FeatureVector;
use crate::monitoring::Metrics;

/// `name` or `name@version`, as a request or the configuration names a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a model reference (`name` or `name@version`, letters, digits, `_`, `-`, `.`)"
)]
pub struct ModelRefError(pub String);

impl FromStr for ModelRef {
    type Err = ModelRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = |part: &str| {
            !part.is_empty()
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
    /// XXH3-128 of the model file, in hex: tells a replaced artifact from the one before.
    pub fingerprint: String,
    pub pool: InferencePool,
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
}

/// Versions compare part by part on `.`, numerically where both parts are numbers, so
/// `2` < `10` and `1.9` < `1.10`.
fn compare_versions(a: &str, b: &str) -> Ordering {
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

#[derive(Debug)]
pub struct ModelRegistry {
    /// Sorted by name, then version (newest last).
    models: Vec<Arc<ServedModel>>,
    default: Arc<ServedModel>,
}

/// Where to find models and how to run them.
#[derive(Debug, Clone)]
pub struct RegistryOptions<'a> {
    pub dir: &'a Path,
    pub default: &'a ModelRef,
    pub ort_library: &'a Path,
    pub pool: PoolOptions,
    pub metrics: &'a Metrics,
}

impl ModelRegistry {
    /// Loads and warms every model version; fails if any is broken or the default is missing.
    pub fn load(
        options: &RegistryOptions<'_>,
        warmup: FeatureVector,
    ) -> Result<Self, RegistryError> {
        let environment = runtime::environment(options.ort_library)?;
        let mut models = Vec::new();
        for dir in version_dirs(options.dir)? {
            let manifest = Manifest::load(&dir)?;
            let folder = folder_label(&dir);
            let label = format!("{}/{}", manifest.name, manifest.version);
            if folder != label {
                return Err(RegistryError::Misplaced {
                    path: dir,
                    manifest: label,
                    folder,
                });
            }
            let model_file = dir.join(&manifest.model_file);
            let bytes = std::fs::read(&model_file).map_err(|source| RegistryError::Io {
                path: model_file,
                source,
            })?;
            let fingerprint = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes));
            let metrics = options.metrics.model(&manifest.name, &manifest.version);
            let pool = InferencePool::start(environment, &dir, options.pool, warmup, metrics)?;
            tracing::info!(model = %manifest.name, version = %manifest.version, "model loaded and warm");
            models.push(Arc::new(ServedModel {
                name: manifest.name.as_str().into(),
                version: manifest.version.as_str().into(),
                manifest,
                fingerprint,
                pool,
            }));
        }
        if models.is_empty() {
            return Err(RegistryError::Empty(options.dir.to_path_buf()));
        }
        models.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| compare_versions(&a.version, &b.version))
        });
        let default = find(&models, options.default).map_err(RegistryError::Default)?;
        Ok(Self { models, default })
    }

    /// The model a request asked for: the default when it names none, the newest version
    /// when it names no version.
    pub fn resolve(&self, model: Option<&ModelRef>) -> Result<Arc<ServedModel>, ResolveError> {
        match model {
            None => Ok(Arc::clone(&self.default)),
            Some(model) => find(&self.models, model),
        }
    }

    pub fn models(&self) -> &[Arc<ServedModel>] {
        &self.models
    }

    pub fn default_model(&self) -> &Arc<ServedModel> {
        &self.default
    }
}

fn find(models: &[Arc<ServedModel>], wanted: &ModelRef) -> Result<Arc<ServedModel>, ResolveError> {
    let mut named = models.iter().filter(|m| *m.name == *wanted.name).peekable();
    if named.peek().is_none() {
        return Err(ResolveError::UnknownModel(wanted.name.clone()));
    }
    match &wanted.version {
        None => Ok(Arc::clone(named.last().expect("peeked; this is a bug"))),
        Some(version) => named
            .find(|m| *m.version == **version)
            .cloned()
            .ok_or_else(|| ResolveError::UnknownVersion {
                name: wanted.name.clone(),
                version: version.clone(),
            }),
    }
}

fn folder_label(dir: &Path) -> String {
    let part = |path: Option<&Path>| {
        path.and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    format!("{}/{}", part(dir.parent()), part(Some(dir)))
}

/// `<dir>/<name>/<version>/` folders that hold a manifest.
fn version_dirs(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
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
        for bad in ["", "@1", "home_win@", "a b", "x@1@2", "home/win"] {
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
