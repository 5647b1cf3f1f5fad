//! Engine errors as Python exceptions. The hierarchy lives in Python
//! (`switchboard/errors.py`: it needs multiple inheritance, e.g. `TimeoutError` is also the
//! builtin one); here an error becomes its report (class, message, server, delivery,
//! `may_have_run`, `retry_after_ms`, ...) and `errors._from_report` picks the class.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use switchboard::Error;
use switchboard::config::ConfigError;

use crate::convert;

static FROM_REPORT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `error` as the matching `switchboard.errors` exception.
pub fn to_py(error: &Error) -> PyErr {
    Python::attach(|py| match raise(py, error) {
        Ok(exception) => exception,
        Err(failed) => failed,
    })
}

pub fn config_to_py(error: ConfigError) -> PyErr {
    to_py(&Error::Config(error))
}

fn raise(py: Python<'_>, error: &Error) -> PyResult<PyErr> {
    let from_report = FROM_REPORT.get_or_try_init(py, || {
        py.import("switchboard.errors")?
            .getattr("_from_report")
            .map(Bound::unbind)
    })?;
    let report = convert::serialized(py, &error.report())?;
    let exception = from_report.bind(py).call1((report,))?;
    Ok(PyErr::from_value(exception))
}
