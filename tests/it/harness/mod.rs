//! Test harness: an in-process geosteer on port 0, a DNS client over real
//! UDP/TCP sockets, HTTP origins, and small GeoIP databases built at run time;
//! real Knot, unbound, delv and openssl for DNSSEC.

pub mod daemon;
pub mod delv;
pub mod dig;
pub mod etcd;
pub mod eventually;
pub mod geosteer;
pub mod http;
pub mod keys;
pub mod knot;
pub mod knot_signer;
pub mod mmdb;
pub mod origin;
pub mod unbound;
pub mod webhook;
