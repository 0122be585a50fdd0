//! Giving the memory of an unloaded version back to the system. ONNX Runtime allocates through
//! glibc's malloc, which keeps what a session freed in its arenas: the next load reuses it,
//! but the process stays at its high-water mark. Once an unloaded (or replaced) version is
//! gone, with its last request and its inference threads, `malloc_trim` returns those pages.

use std::sync::Weak;
use std::time::Duration;

use super::registry::ServedModel;

/// How long an unloaded version may stay alive in requests still holding it before its
/// memory is no longer waited for.
const PATIENCE: Duration = Duration::from_mins(1);

/// Waits (off the request path) until `model` is dropped, lets its inference threads end, and
/// returns the freed memory to the system.
pub fn when_dropped(model: Weak<ServedModel>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let waited = tokio::time::timeout(PATIENCE, async {
            while model.strong_count() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                "an unloaded model version is still held after a minute; its memory stays"
            );
            return;
        }
        // The dedicated threads end once the queue closes; give them a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let released = tokio::task::spawn_blocking(return_free_memory).await;
        tracing::debug!(?released, "unloaded model version's memory returned");
    });
}

/// Asks glibc to return the free pages of every arena (`malloc_trim(0)`); whether it did.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "malloc_trim is glibc's only way to return freed arena pages"
)]
fn return_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointer, and glibc serialises it with every other call
    // into the allocator.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory themselves, or have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_free_memory() -> bool {
    false
}
