//! Reloading on SIGHUP and on file changes: one watcher thread per reloadable
//! thing (TLS_CERT/TLS_KEY, ACCESS_FILE), the same debounce and the same
//! notion of a change for each.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Editors and renewals write files in several steps (and replace them by
/// rename): reload once the directory has been quiet this long.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Runs `reload(trigger)` on SIGHUP (`trigger` "SIGHUP") and when a file in
/// the directory of any of `paths` changes ("file change"). Directories, not
/// files: a replace by rename, and Kubernetes' swap of a symlinked directory,
/// are changes of the directory. Runs on a thread of its own (named
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
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| match ev {
        Ok(ev) if is_change(&ev.kind) => {
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
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        more = tokio::time::timeout(DEBOUNCE, events.recv()) => match more {
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
}
