//! Layer 1: the sans-IO stream cipher (age-rt v0.2 and age v1).
