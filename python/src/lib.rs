//! `zebrastream_rs._native`: the Rust half of the Python package
//! `zebrastream-rs`. It connects [`StreamWriter`](zebrastream::client::StreamWriter)s
//! and [`StreamReader`](zebrastream::client::StreamReader)s, each on a
//! runtime of its own, and moves their bytes with the GIL released (and
//! Ctrl-C heard while a call waits); the Python half (`zebrastream_rs/__init__.py`) gives them the official
//! client's file API (`open()`, `Writer`, `Reader`, exception mapping).

#![deny(missing_docs)]

mod errors;
mod settings;
mod stream;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(stream::connect_writer, m)?)?;
    m.add_function(wrap_pyfunction!(stream::connect_reader, m)?)?;
    m.add_class::<stream::NativeWriter>()?;
    m.add_class::<stream::NativeReader>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
