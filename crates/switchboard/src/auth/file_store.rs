//! [`FileStore`]: tokens as files under the user's state directory, readable by the user
//! alone.
//!
//! Layout: `<state dir>/auth/v1/tokens/<sha256 of the key>.json` (the file name reveals
//! neither the server nor the user); clients registered at authorization servers (reused by
//! later sign-ins) in `<state dir>/auth/v1/clients/<sha256 of issuer and port>.json`. Directories are made `0700`, files `0600`; a file or
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

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::store::{
    KeyLocks, Registration, RegistrationKey, RenewalLock, StoreError, TokenKey, TokenRecord,
    TokenStore,
};

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
        let name = hash(&format!("{}\0{}\0{}", key.server, key.url, key.principal));
        self.dir.join(format!("{name}.json"))
    }

    /// Where the client registered at `key`'s authorization server is kept.
    pub fn registration_path(&self, key: &RegistrationKey) -> PathBuf {
        let port = key.redirect_port.map(|p| p.to_string()).unwrap_or_default();
        let name = hash(&format!("{}\0{port}", key.issuer));
        self.dir
            .with_file_name("clients")
            .join(format!("{name}.json"))
    }

    fn read(&self, key: &TokenKey) -> Result<Option<TokenRecord>, StoreError> {
        read_private(&self.path_of(key), "token record")
    }

    fn make_dir(&self) -> Result<(), StoreError> {
        make_private_dir(&self.dir)
    }

    fn write(&self, key: &TokenKey, record: &TokenRecord) -> Result<(), StoreError> {
        write_private(&self.path_of(key), record)
    }

    fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        delete(&self.path_of(key))
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

/// The SHA-256 of `text` in hex (file names that reveal nothing).
fn hash(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON `what` at `path`, if there is one; its directory and it must be private.
fn read_private<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>, StoreError> {
    let dir = path.parent().unwrap_or(path);
    if !dir.exists() {
        return Ok(None);
    }
    private(dir, 0o700)?;
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "read", &e)),
    };
    private(path, 0o600)?;
    serde_json::from_slice(&text).map(Some).map_err(|_| {
        StoreError(format!(
            "the file {} is not a {what}; delete it and sign in again",
            path.display()
        ))
    })
}

fn make_private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(dir, "create", &e))?;
    private(dir, 0o700)
}

/// Writes `value` as JSON to `path` atomically, readable by the user alone.
fn write_private<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    make_private_dir(path.parent().unwrap_or(path))?;
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError(e.to_string()))?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(path, "write", &e));
    }
    Ok(())
}

fn delete(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, "delete", &e)),
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

    fn load_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<Option<Registration>, StoreError>> {
        Box::pin(async move { read_private(&self.registration_path(key), "client registration") })
    }

    fn save_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
        registration: &'a Registration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { write_private(&self.registration_path(key), registration) })
    }

    fn remove_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { delete(&self.registration_path(key)) })
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
