//! Layer 4: a relay serving the Connect API and the Data API.
