//! `std::io::Read` / `std::io::Write` for the adapters.

use std::io::{self, Read, Write};

use super::{DecryptingReader, EncryptingWriter};

impl<W: Write> EncryptingWriter<W> {
    /// Writes all pending ciphertext to `inner`.
    fn drain(&mut self) -> io::Result<()> {
        while !self.enc.output().is_empty() {
            let n = self.inner.write(self.enc.output())?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.enc.consume(n);
        }
        Ok(())
    }

    /// Writes the final chunk, flushes `inner` and returns it. Without this
    /// the stream is truncated.
    pub fn finish(mut self) -> io::Result<W> {
        self.enc.finish();
        self.drain()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.drain()?;
            let n = self.enc.write(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush();
        self.drain()?;
        self.inner.flush()
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(n) = self.step_without_input(out)? {
                return Ok(n);
            }
            let n = loop {
                let space = super::input_buffer(&mut self.dec)?;
                match self.inner.read(space) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            self.commit(n)?;
        }
    }
}
