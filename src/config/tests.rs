//! Table-driven tests of config parsing and validation.
