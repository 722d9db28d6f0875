//! [`Encryption`]: how a stream is protected end to end.

/// How the payload is protected between producer and consumer.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Encryption {
    /// No encryption: the relay sees the bytes as they are.
    #[default]
    Plain,
}
