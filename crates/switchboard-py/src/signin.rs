//! OAuth options of a Python hub: where tokens are kept (`token_store`) and who completes
//! a browser sign-in (`opener`).
//!
//! - `token_store="file"` (the default): the user's state directory, shared with the CLI
//!   (`switchboard auth login SERVER` signs Python programs in too; renewals go back under
//!   the store's lock, so several processes can share it); `"memory"`: this hub only; any
//!   other string or path: a file store rooted at that directory.
//! - `opener=None` (the default): no sign-in; a server that needs one is `needs_auth`
//!   (signed-in tokens from the store are still used and renewed); `"browser"`: the
//!   `$SWITCHBOARD_BROWSER`/`$BROWSER` program, as the CLI; a callable `opener(server, url)`:
//!   the program hands the authorization URL on (a web app redirecting its user, a test
//!   following it); it runs on a thread of its own, and what it raises is logged.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use switchboard::auth::{BrowserOpener, FileStore, MemoryStore, Opener, TokenStore};
use switchboard::hub::HubBuilder;

/// The hub's token store and opener, read from the Python arguments.
pub(crate) struct SignIn {
    store: Arc<dyn TokenStore>,
    opener: Option<Arc<dyn Opener>>,
}

impl SignIn {
    pub(crate) fn new(
        token_store: Option<&Bound<'_, PyAny>>,
        opener: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<SignIn> {
        Ok(SignIn {
            store: store(token_store)?,
            opener: match opener {
                None => None,
                Some(opener) => Some(self::opener(opener)?),
            },
        })
    }

    pub(crate) fn apply<'a>(&self, builder: HubBuilder<'a>) -> HubBuilder<'a> {
        let builder = builder.token_store(self.store.clone());
        match &self.opener {
            Some(opener) => builder.opener(opener.clone()),
            None => builder,
        }
    }
}

fn store(token_store: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<dyn TokenStore>> {
    let memory = || Arc::new(MemoryStore::new()) as Arc<dyn TokenStore>;
    let Some(token_store) = token_store else {
        return Ok(FileStore::default_location().map_or_else(memory, |s| Arc::new(s) as _));
    };
    if let Ok(word) = token_store.extract::<String>() {
        match word.as_str() {
            "file" => {
                let store = FileStore::default_location().ok_or_else(|| {
                    PyValueError::new_err(
                        "token_store=\"file\": no state directory (set SWITCHBOARD_STATE_DIR \
                         or HOME), or pass a directory",
                    )
                })?;
                return Ok(Arc::new(store));
            }
            "memory" => return Ok(memory()),
            _ => {}
        }
    }
    let dir: PathBuf = token_store.extract().map_err(|_| {
        PyValueError::new_err(
            "token_store must be \"file\", \"memory\" or a directory (str or os.PathLike)",
        )
    })?;
    Ok(Arc::new(FileStore::new(dir)))
}

fn opener(opener: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Opener>> {
    if let Ok(word) = opener.extract::<String>() {
        return match word.as_str() {
            "browser" => Ok(Arc::new(BrowserOpener::from_env())),
            _ => Err(PyValueError::new_err(
                "opener must be \"browser\" or a callable opener(server, url)",
            )),
        };
    }
    if !opener.is_callable() {
        return Err(PyValueError::new_err(
            "opener must be \"browser\" or a callable opener(server, url)",
        ));
    }
    Ok(Arc::new(PyOpener {
        callable: opener.clone().unbind(),
    }))
}

/// A Python callable as the hub's opener. The sign-in waits for its callback while the
/// opener runs, so the callable runs on a thread of its own (a callable that follows the
/// URL itself would otherwise hold up the listener it is redirected to); what it raises is
/// logged, and the sign-in then fails when its wait runs out.
struct PyOpener {
    callable: Py<PyAny>,
}

impl Opener for PyOpener {
    fn open(&self, server: &str, url: &str) -> Result<(), String> {
        let callable = Python::attach(|py| self.callable.clone_ref(py));
        let (server, url) = (server.to_owned(), url.to_owned());
        std::thread::Builder::new()
            .name("switchboard-opener".into())
            .spawn(move || {
                Python::attach(|py| {
                    if let Err(error) = callable.call1(py, (server.as_str(), url.as_str())) {
                        tracing::warn!(server, "the sign-in opener failed: {error}");
                    }
                })
            })
            .map(drop)
            .map_err(|error| format!("cannot start the opener: {error}"))
    }
}
