//! Layer 3: `StreamWriter` / `StreamReader` composed from the protocol client and the cipher.
