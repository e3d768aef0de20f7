//! metrics: DNS query counters for `/metrics` (by name, type, rcode and pool)
//! and the fail-open count. Lock-free on the query path.

use hickory_proto::op::ResponseCode;
use hickory_server::server::Request;

/// Filled in by the admin work; counting is cheap and never blocks.
#[derive(Default)]
pub struct DnsMetrics {}

impl DnsMetrics {
    pub fn query(
        &self,
        _name: Option<&str>,
        _request: &Request,
        _rcode: ResponseCode,
        _pool: Option<&str>,
    ) {
    }
    pub fn fail_open(&self, _name: &str) {}
}
