//! Layer 2: the Connect API and Data API protocol client.
