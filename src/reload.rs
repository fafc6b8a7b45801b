//! Reloading on SIGHUP and on file changes: one watcher thread per reloadable
//! thing (TLS_CERT/TLS_KEY, ACCESS_FILE), the same debounce and the same
//! notion of a change for each.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Editors and renewals write files in several steps (and replace them by
/// rename): reload once the files have been quiet this long...
const DEBOUNCE: Duration = Duration::from_millis(500);

/// ...or this long after the first change, whichever comes first: a file
/// rewritten without pause must not hold a reload back forever.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Runs `reload(trigger)` on SIGHUP (`trigger` "SIGHUP") and when one of
/// `paths` changes ("file change"). The directories are watched, not the
/// files, so that a replace by rename counts; but only events that name one of
/// the files (or Kubernetes' `..data` symlink swap) do: another file in the
/// same directory (a log, an editor's swap file) changing does not. Runs on a thread of its own (named
/// `thread_name`) until the returned guard is dropped. SIGHUP is registered
/// before this returns, so from then on it never takes its default action
/// (ending the process).
pub fn watch(
    thread_name: &str,
    paths: &[&Path],
    reload: impl Fn(&'static str) + Send + 'static,
) -> io::Result<(Reloader, Vec<PathBuf>)> {
    use notify::Watcher;
    let (tx, events) = tokio::sync::mpsc::unbounded_channel::<()>();
    let what = thread_name.to_owned();
    let names: Vec<std::ffi::OsString> = paths.iter().filter_map(|p| p.file_name()).map(Into::into).collect();
    let ours = move |ev: &notify::Event| {
        ev.paths.is_empty()
            || ev
                .paths
                .iter()
                .filter_map(|p| p.file_name())
                .any(|n| names.iter().any(|ours| ours == n) || n.to_str().is_some_and(|n| n.starts_with("..data")))
    };
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| match ev {
        Ok(ev) if is_change(&ev.kind) && ours(&ev) => {
            let _ = tx.send(());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(watcher = %what, error = %e, "file watch error"),
    })
    .map_err(io::Error::other)?;
    let mut dirs: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for p in paths {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            watcher.watch(&dir, notify::RecursiveMode::NonRecursive).map_err(io::Error::other)?;
            dirs.push(dir);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    #[cfg(unix)]
    let hup = {
        let _in_rt = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name(thread_name.into()).spawn(move || {
        let _watcher = watcher;
        #[cfg(unix)]
        rt.block_on(reload_loop(&reload, events, stopped, hup));
        #[cfg(not(unix))]
        rt.block_on(reload_loop(&reload, events, stopped));
    })?;
    Ok((Reloader { stop: Some(stop), thread: Some(thread) }, dirs))
}

/// Stops the reload thread of [`watch`] when dropped.
pub struct Reloader {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Reloader {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A write, create, rename or remove; not a read (reloading reads the files).
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

async fn reload_loop(
    reload: &impl Fn(&'static str),
    mut events: tokio::sync::mpsc::UnboundedReceiver<()>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    #[cfg(unix)] mut hup: tokio::signal::unix::Signal,
) {
    #[cfg(not(unix))]
    let mut hup = Never;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            Some(()) = hup.recv() => reload("SIGHUP"),
            ev = events.recv() => {
                if ev.is_none() {
                    return;
                }
                let deadline = tokio::time::Instant::now() + MAX_DELAY;
                loop {
                    let quiet = DEBOUNCE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    tokio::select! {
                        _ = &mut stopped => return,
                        more = tokio::time::timeout(quiet, events.recv()) => match more {
                            Ok(Some(())) => continue,
                            Ok(None) => return,
                            Err(_) => break,
                        },
                    }
                }
                reload("file change");
            }
        }
    }
}

#[cfg(not(unix))]
struct Never;

#[cfg(not(unix))]
impl Never {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind};
        assert!(!is_change(&EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
        assert!(is_change(&EventKind::Remove(RemoveKind::File)));
    }

    /// Other files in the directory do not reload; the watched one does, and
    /// within MAX_DELAY even while it is rewritten without pause.
    #[test]
    fn only_the_watched_file_counts_and_a_busy_file_still_reloads() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Instant;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("access.toml");
        std::fs::write(&file, "a").unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let (_guard, _) = watch("s3rp-reload-test", &[&file], move |trigger| {
            if trigger == "file change" {
                c.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        let wait = |n: usize, limit: Duration| {
            let start = Instant::now();
            while start.elapsed() < limit {
                if count.load(Ordering::SeqCst) >= n {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        };
        // A sibling written for 1.5 s: no reload.
        let sibling = dir.path().join("proxy.log");
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            std::fs::write(&sibling, format!("{:?}", start.elapsed())).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!wait(1, Duration::from_millis(800)), "a sibling's changes reloaded");
        // The file itself rewritten every 100 ms for 4 s: a reload by MAX_DELAY (+ slack).
        let start = Instant::now();
        let mut first_reload = None;
        while start.elapsed() < Duration::from_secs(4) {
            std::fs::write(&file, format!("{:?}", start.elapsed())).unwrap();
            if first_reload.is_none() && count.load(Ordering::SeqCst) > 0 {
                first_reload = Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let first = first_reload.expect("no reload while the file kept changing");
        assert!(first < MAX_DELAY + Duration::from_millis(900), "first reload after {first:?}");
        // Replaced by rename: a reload (once the last burst's reload is done).
        std::thread::sleep(DEBOUNCE * 3);
        let before = count.load(Ordering::SeqCst);
        let tmp = dir.path().join("access.toml.tmp");
        std::fs::write(&tmp, "b").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert!(wait(before + 1, Duration::from_secs(3)), "a rename onto the file did not reload");
    }
}
