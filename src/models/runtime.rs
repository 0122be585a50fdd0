//! Finding and loading the ONNX Runtime shared library, once per process.
//!
//! bullpen loads ONNX Runtime at run time, so the binary has to find `libonnxruntime.so.1.31.1`.
//! It looks, in order, at `inference.ort_library`, `ORT_DYLIB_PATH`, the executable's folder
//! (and its parent, where test binaries live), then the folder `cargo build` placed it in.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

pub const LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";
const FETCH_HINT: &str = "run `python3 scripts/fetch-onnxruntime.py DIR` (cargo build does this \
    into target/<profile>/), or point `inference.ort_library` (BULLPEN__INFERENCE__ORT_LIBRARY) \
    or ORT_DYLIB_PATH at libonnxruntime.so.1.31.1";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found; looked at {searched}. To fix it: {FETCH_HINT}")]
    Missing { searched: String },
    #[error(
        "ONNX Runtime library at {path} could not be loaded: {reason}. To fix it: {FETCH_HINT}"
    )]
    Load { path: PathBuf, reason: String },
    #[error("ONNX Runtime environment could not be created: {0}")]
    Environment(String),
}

/// Where the library may be, in the order it is looked for.
fn candidates(configured: &Path) -> Vec<PathBuf> {
    if !configured.as_os_str().is_empty() {
        return vec![configured.to_path_buf()];
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return vec![PathBuf::from(path)];
    }
    let mut paths = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        paths.push(exe_dir.join(LIBRARY_NAME));
        if let Some(parent) = exe_dir.parent() {
            paths.push(parent.join(LIBRARY_NAME));
        }
    }
    paths.push(Path::new(env!("BULLPEN_ORT_BUILD_DIR")).join(LIBRARY_NAME));
    paths
}

/// The library that would be loaded, or an error listing where it was looked for.
pub fn locate(configured: &Path) -> Result<PathBuf, RuntimeError> {
    let paths = candidates(configured);
    paths
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            let searched = paths
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            RuntimeError::Missing { searched }
        })
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime and creates the process's one environment; later calls return it.
pub fn environment(configured: &Path) -> Result<&'static Environment, RuntimeError> {
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    // ONNX Runtime allows one environment per process: serialise the first creation.
    let _guard = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    let path = locate(configured)?;
    let builder = ort::init_from(&path).map_err(|error| RuntimeError::Load {
        path: path.clone(),
        // The OS reason is only in the Debug form.
        reason: format!("{error:?}"),
    })?;
    let environment = builder
        .with_name("bullpen")
        .with_telemetry(false)
        .build()
        .map_err(|error| RuntimeError::Environment(error.to_string()))?;
    tracing::info!(library = %path.display(), "loaded ONNX Runtime");
    Ok(ENVIRONMENT.get_or_init(|| environment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_where_it_looked_and_what_to_do() {
        let error = locate(Path::new("/nonexistent/libonnxruntime.so.1.31.1"))
            .expect_err("no library there");
        let message = error.to_string();
        assert!(
            message.contains("/nonexistent/libonnxruntime.so.1.31.1"),
            "{message}"
        );
        assert!(
            message.contains("scripts/fetch-onnxruntime.py"),
            "{message}"
        );
    }
}
