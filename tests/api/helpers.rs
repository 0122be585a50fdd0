use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bullpen::features::EmbeddedStore;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The store built from the shipped data, once for the whole test binary (it is read-only).
pub fn store() -> &'static EmbeddedStore {
    static STORE: OnceLock<EmbeddedStore> = OnceLock::new();
    STORE.get_or_init(|| {
        EmbeddedStore::load(&repo_path("data/retrosheet"), |_| {}).expect("shipped data loads")
    })
}
