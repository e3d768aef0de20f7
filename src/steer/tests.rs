//! Table-driven tests of the steering core.
