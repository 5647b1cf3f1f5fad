//! JSON values between Python and the engine: tool arguments in, results, health and tool
//! rows out. Direct conversion (no `json.dumps`/`json.loads` round trip per call).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// A Python object made of dicts (string keys), lists, tuples, strings, numbers, booleans and
/// `None`, as JSON.
pub fn to_json(object: &Bound<'_, PyAny>) -> PyResult<Value> {
    if object.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: `True` is an `int` in Python.
    if let Ok(flag) = object.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if let Ok(text) = object.cast::<PyString>() {
        return Ok(Value::String(text.to_str()?.to_owned()));
    }
    if object.is_instance_of::<PyInt>() {
        if let Ok(n) = object.extract::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        if let Ok(n) = object.extract::<u64>() {
            return Ok(Value::Number(n.into()));
        }
        return Err(PyTypeError::new_err(format!(
            "the integer {object} is too large for JSON"
        )));
    }
    if let Ok(float) = object.cast::<PyFloat>() {
        let value = float.value();
        return Number::from_f64(value).map(Value::Number).ok_or_else(|| {
            PyTypeError::new_err(format!("{value} cannot be sent as JSON (not finite)"))
        });
    }
    if let Ok(dict) = object.cast::<PyDict>() {
        return Ok(Value::Object(to_json_object(dict)?));
    }
    if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
        let items = object.try_iter()?.map(|item| to_json(&item?));
        return items.collect::<PyResult<_>>().map(Value::Array);
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a {} as JSON (use dict, list, str, int, float, bool or None)",
        object.get_type().name()?
    )))
}

/// A dict with string keys as a JSON object.
pub fn to_json_object(dict: &Bound<'_, PyDict>) -> PyResult<Map<String, Value>> {
    let mut map = Map::with_capacity(dict.len());
    for (key, value) in dict.iter() {
        let Ok(key) = key.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "JSON object keys must be strings, got {}",
                key.repr()?
            )));
        };
        map.insert(key.to_str()?.to_owned(), to_json(&value)?);
    }
    Ok(map)
}

/// A JSON value as plain Python objects.
pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => object_to_python(py, map)?.into_any(),
    })
}

pub fn object_to_python<'py>(
    py: Python<'py>,
    map: &Map<String, Value>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, value) in map {
        dict.set_item(key, to_python(py, value)?)?;
    }
    Ok(dict)
}

/// Anything serialisable (health, tool rows) as plain Python objects.
pub fn serialized<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(value)
        .map_err(|e| PyTypeError::new_err(format!("cannot convert to Python: {e}")))?;
    to_python(py, &value)
}
