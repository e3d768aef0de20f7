//! One integration-test binary: real sockets on loopback, a real DNS client,
//! real HTTP origins started by the tests.

// Everything here is private to this test binary; `pub` in its modules
// means shared between them.
#![allow(unreachable_pub)]

mod harness;

mod admin;
mod agreement;
mod architecture;
mod backend_checks;
mod check;
mod cli;
mod cli_admin;
mod cname;
mod cookies;
mod dns;
mod dnssec;
mod dnssec_chain;
mod dnssec_harness;
mod dnssec_nodata;
mod docs;
mod failover;
mod family;
mod fleet;
mod hostnames;
mod identity;
mod load_sources;
mod metrics;
mod notify;
mod openapi;
mod overrides;
mod probe;
mod proxy;
mod proxy_h1;
mod ramps;
mod reload;
mod reload_report;
mod rrl;
mod spill;
mod state_file;
mod status_page;
mod steering;
mod sticky;
mod strict;
mod systemd;
mod tcp;
mod transfer;
mod weights;
mod zonefiles;
