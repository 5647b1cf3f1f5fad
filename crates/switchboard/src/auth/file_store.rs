//! [`FileStore`]: tokens as files under the user's state directory, readable by the user
//! alone.
//!
//! Layout: `<state dir>/auth/v1/tokens/<sha256 of the key>.json` (the file name reveals
//! neither the server nor the user). Directories are made `0700`, files `0600`; a file or
//! directory that the group or others may read is refused with the `chmod` that fixes it,
//! since a token there may already have leaked. Writes are atomic: a new file (`0600`
//! from its creation), synced, then renamed over the old one, so a reader never sees half
//! a record and a crash leaves the old one.
//!
//! Renewals of one key are serialized across processes by `flock` on `<hash>.lock` beside
//! the record (made `0600`, never deleted: deleting a lock file races with its next
//! locker), and within the process by a lock per key first, so waiting never blocks a
//! thread: the file lock is tried without blocking, again every few milliseconds, for at
//! most [`LOCK_WAIT`].
//!
//! The state directory: `$SWITCHBOARD_STATE_DIR`, else `$XDG_STATE_HOME/switchboard`, else
//! `~/.local/state/switchboard` (`~/Library/Application Support/switchboard` on macOS).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::store::{KeyLocks, RenewalLock, StoreError, TokenKey, TokenRecord, TokenStore};

/// How long a renewal waits for another process's (a refresh is one bounded request).
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// How often the file lock is tried meanwhile.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Tokens in files (see the module docs).
#[derive(Debug, Clone)]
pub struct FileStore {
    /// `<state dir>/auth/v1/tokens`.
    dir: PathBuf,
    /// This process's renewal locks (shared by the clones).
    locks: Arc<KeyLocks>,
}

impl FileStore {
    /// A store under `state_dir` (created when first written).
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: state_dir.into().join("auth").join("v1").join("tokens"),
            locks: Arc::default(),
        }
    }

    /// A store in the user's state directory (see the module docs); `None` when no home
    /// directory is known.
    pub fn default_location() -> Option<Self> {
        state_dir().map(Self::new)
    }

    /// Where `key`'s record is kept.
    pub fn path_of(&self, key: &TokenKey) -> PathBuf {
        let name = format!("{}\0{}\0{}", key.server, key.url, key.principal);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.json"))
    }

    fn read(&self, key: &TokenKey) -> Result<Option<TokenRecord>, StoreError> {
        if !self.dir.exists() {
            return Ok(None);
        }
        private(&self.dir, 0o700)?;
        let path = self.path_of(key);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, "read", &e)),
        };
        private(&path, 0o600)?;
        serde_json::from_slice(&text).map(Some).map_err(|_| {
            StoreError(format!(
                "the token file {} is not a token record; delete it and sign in again",
                path.display()
            ))
        })
    }

    fn make_dir(&self) -> Result<(), StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| io_error(&self.dir, "create", &e))?;
        private(&self.dir, 0o700)
    }

    fn write(&self, key: &TokenKey, record: &TokenRecord) -> Result<(), StoreError> {
        self.make_dir()?;
        let path = self.path_of(key);
        let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temporary, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temporary);
            return Err(io_error(&path, "write", &e));
        }
        Ok(())
    }

    fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        let path = self.path_of(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, "delete", &e)),
        }
    }

    /// Holds `key`'s renewal lock in this process, then its lock file (see the module
    /// docs).
    async fn lock_key(&self, key: &TokenKey) -> Result<RenewalLock, StoreError> {
        let in_process = self.locks.lock(key).await;
        self.make_dir()?;
        let path = self.path_of(key).with_extension("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error(&path, "open", &e))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            if try_flock(&file).map_err(|e| io_error(&path, "lock", &e))? {
                return Ok(RenewalLock::new((in_process, file)));
            }
            if Instant::now() >= deadline {
                return Err(StoreError(format!(
                    "another process has held {} for over a minute; if none is signing in \
                     to this server, delete the file",
                    path.display()
                )));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Deletes `key`'s record if it is `seen` (the caller holds the key's lock).
    fn delete_if(&self, key: &TokenKey, seen: &TokenRecord) -> Result<bool, StoreError> {
        if self.read(key)?.as_ref() != Some(seen) {
            return Ok(false);
        }
        self.delete(key)?;
        Ok(true)
    }
}

/// Takes an exclusive `flock` on `file` if no one holds it; `Ok(false)` when someone does.
/// Released when the file is closed.
fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor the `File` owns and keeps open.
    let done = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if done == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        Some(libc::EINTR) => Ok(false),
        _ => Err(error),
    }
}

impl TokenStore for FileStore {
    fn load<'a>(
        &'a self,
        key: &'a TokenKey,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        Box::pin(async move { self.read(key) })
    }

    fn save<'a>(
        &'a self,
        key: &'a TokenKey,
        record: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.write(key, record) })
    }

    fn remove<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.delete(key) })
    }

    fn lock<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<RenewalLock, StoreError>> {
        Box::pin(self.lock_key(key))
    }

    fn remove_if<'a>(
        &'a self,
        key: &'a TokenKey,
        seen: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.delete_if(key, seen) })
    }
}

/// Refuses `path` when the group or others have any access to it (`mode` is what it
/// should be).
fn private(path: &Path, mode: u32) -> Result<(), StoreError> {
    let metadata = fs::metadata(path).map_err(|e| io_error(path, "inspect", &e))?;
    if metadata.mode() & 0o077 != 0 {
        return Err(StoreError(format!(
            "{} can be read by other users (mode {:o}); tokens must be private: run `chmod {:o} {}`",
            path.display(),
            metadata.mode() & 0o777,
            mode,
            path.display()
        )));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        return Err(StoreError(format!(
            "{} belongs to another user; remove it or use another state directory \
             (SWITCHBOARD_STATE_DIR)",
            path.display()
        )));
    }
    Ok(())
}

fn io_error(path: &Path, what: &str, error: &std::io::Error) -> StoreError {
    StoreError(format!("cannot {what} {}: {error}", path.display()))
}

/// The state directory (see the module docs).
fn state_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("SWITCHBOARD_STATE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("switchboard"));
    }
    let home = PathBuf::from(var("HOME")?);
    if cfg!(target_os = "macos") {
        Some(home.join("Library/Application Support/switchboard"))
    } else {
        Some(home.join(".local/state/switchboard"))
    }
}
