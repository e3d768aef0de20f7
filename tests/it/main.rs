//! The one integration-test binary; each area is a module.

mod proxy;
mod proxy_backend;
