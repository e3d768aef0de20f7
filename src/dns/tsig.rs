//! tsig: transaction signatures (RFC 8945, HMAC-SHA256) between geosteer and
//! its secondaries: checking a signed request (a transfer, or the SOA query a
//! secondary signs before it), signing the answer, and chaining the
//! signatures of a transfer's messages (§5.3.1: each later MAC covers the
//! previous MAC, the message and the timers).
//!
//! hickory-proto holds the pieces (`TSigner`, `TSigResponseContext`); this
//! module decides which key applies and what a failure answers: NOTAUTH with
//! BADKEY or BADSIG unsigned, BADTIME signed (§5.2).

use std::net::SocketAddr;

use hickory_proto::ProtoError;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{LowerName, Name, Record, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::config::{Config, TsigKey};

/// Seconds a signature's time may differ from ours (RFC 8945 §10 suggests 300).
pub const FUDGE: u16 = 300;

/// The key configured under `name` for any zone, if one is.
pub fn key_named<'c>(config: &'c Config, name: &Name) -> Option<&'c TsigKey> {
    let name = name.to_lowercase().to_string();
    config
        .zones
        .iter()
        .filter_map(|z| z.transfer.as_ref()?.tsig.as_ref())
        .find(|k| k.name == name)
}

/// The HMAC-SHA256 signer of `key`.
pub fn signer_for(key: &TsigKey) -> Option<TSigner> {
    let name: Name = key.name.parse().ok()?;
    TSigner::new(key.secret.clone(), TsigAlgorithm::HmacSha256, name, FUDGE).ok()
}

/// Why a signed request is refused, and the TSIG its NOTAUTH answer carries.
pub struct Failure {
    pub error: TsigError,
    context: TSigResponseContext,
}

impl Failure {
    /// The NOTAUTH answer to `request` (its raw bytes), with the TSIG record.
    pub fn answer(self, request: &[u8]) -> Option<Vec<u8>> {
        let mut bytes = error_response(request, ResponseCode::NotAuth)?;
        let tsig = self.context.sign(&bytes).ok()?;
        append(&mut bytes, &tsig).ok()?;
        Some(bytes)
    }
}

/// A record-less answer to `raw` with `code`: its ID, opcode and question
/// (the ID alone when the rest does not decode).
pub fn error_response(raw: &[u8], code: ResponseCode) -> Option<Vec<u8>> {
    let request = Message::from_vec(raw).ok();
    let id = request
        .as_ref()
        .map(|r| r.metadata.id)
        .or_else(|| raw.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])))?;
    let op_code = request
        .as_ref()
        .map_or(OpCode::Query, |r| r.metadata.op_code);
    let mut m = Message::new(id, MessageType::Response, op_code);
    m.metadata.response_code = code;
    if let Some(r) = request {
        m.queries = r.queries;
    }
    m.to_vec().ok()
}

/// Checks the TSIG of `raw` (a request's bytes, whose TSIG record is `sig`)
/// against `key` (None: no key of that name is configured) at `now` (Unix
/// seconds). On success, the signer of the answer.
pub fn verify(
    raw: &[u8],
    sig: &Record<TSIG>,
    key: Option<&TsigKey>,
    now: u64,
) -> Result<Signer, Failure> {
    let id = sig.data.oid;
    let unknown = || Failure {
        error: TsigError::BadKey,
        context: TSigResponseContext::unknown_key(id, now, sig.name.clone()),
    };
    let Some(signer) = key.and_then(signer_for) else {
        return Err(unknown());
    };
    if sig.data.algorithm != TsigAlgorithm::HmacSha256
        || LowerName::new(&sig.name) != LowerName::new(signer.signer_name())
    {
        return Err(unknown());
    }
    let (mac, _, window) = match signer.verify_message_byte(raw, None, true) {
        Ok(v) => v,
        Err(_) => {
            return Err(Failure {
                error: TsigError::BadSig,
                context: TSigResponseContext::bad_signature(id, now, signer),
            });
        }
    };
    if !window.contains(&now) && window.end != now {
        return Err(Failure {
            error: TsigError::BadTime,
            context: TSigResponseContext::new(id, now, signer, mac, Some(TsigError::BadTime)),
        });
    }
    Ok(Signer {
        signer,
        request_id: id,
        previous: mac,
        first: true,
        now,
    })
}

/// Signs the messages of one answer, in order: the first over the request's
/// MAC and the full TSIG variables, each later one over the previous MAC and
/// the timers (RFC 8945 §5.3.1).
#[derive(Clone)]
pub struct Signer {
    signer: TSigner,
    request_id: u16,
    previous: Vec<u8>,
    first: bool,
    now: u64,
}

impl Signer {
    /// Appends the TSIG record to `message` (encoded, unsigned).
    pub fn sign(&mut self, message: &mut Vec<u8>) -> Result<(), ProtoError> {
        let record = if self.first {
            let context = TSigResponseContext::new(
                self.request_id,
                self.now,
                self.signer.clone(),
                self.previous.clone(),
                None,
            );
            context.sign(message)?
        } else {
            let mut tbs = Vec::with_capacity(self.previous.len() + message.len() + 10);
            tbs.extend_from_slice(&(self.previous.len() as u16).to_be_bytes());
            tbs.extend_from_slice(&self.previous);
            tbs.extend_from_slice(message);
            tbs.extend_from_slice(&((self.now >> 32) as u16).to_be_bytes());
            tbs.extend_from_slice(&(self.now as u32).to_be_bytes());
            tbs.extend_from_slice(&self.signer.fudge().to_be_bytes());
            let mac = self
                .signer
                .sign(&tbs)
                .map_err(|e| ProtoError::from(e.to_string()))?;
            let tsig = TSIG::new(
                TsigAlgorithm::HmacSha256,
                self.now,
                self.signer.fudge(),
                mac,
                self.request_id,
                None,
                Vec::new(),
            );
            Box::new(make_tsig_record(self.signer.signer_name().clone(), tsig))
        };
        self.previous = record.data.mac.clone();
        self.first = false;
        append(message, &record)
    }
}

/// Appends `record` to the additional section of the encoded `message`.
fn append(message: &mut Vec<u8>, record: &Record<TSIG>) -> Result<(), ProtoError> {
    if message.len() < 12 {
        return Err(ProtoError::from("message shorter than a header"));
    }
    let mut tail = Vec::with_capacity(128);
    record.emit(&mut BinEncoder::new(&mut tail))?;
    let count = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&count.to_be_bytes());
    message.extend_from_slice(&tail);
    Ok(())
}

/// A `ResponseHandler` that signs what the handler answers to a signed query
/// (the SOA query a secondary makes before a transfer) before `inner` sends
/// it. The answer is encoded once to be signed, then handed on with the TSIG
/// record: a path taken only by signed queries.
#[derive(Clone)]
pub struct TsigReply<R> {
    pub inner: R,
    pub signer: Signer,
    pub peer: SocketAddr,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for TsigReply<R> {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (_, mut bytes) = super::raw::encode(response, u16::MAX)?;
        if let Err(e) = self.signer.sign(&mut bytes) {
            tracing::warn!(peer = %self.peer, error = %e, "cannot sign an answer with TSIG");
        }
        send_encoded(&mut self.inner, &bytes).await
    }
}

/// Sends an answer already encoded (and signed) through a `ResponseHandler`,
/// which takes records: decoded, then encoded again by `inner` the same way,
/// with the TSIG record last.
pub async fn send_encoded<R: ResponseHandler>(
    inner: &mut R,
    bytes: &[u8],
) -> Result<ResponseInfo, NetError> {
    let message = Message::from_vec(bytes).map_err(ProtoError::from)?;
    let mut decoder = BinDecoder::new(bytes.get(12..).unwrap_or_default());
    let queries = Queries::read(&mut decoder, message.queries.len()).map_err(ProtoError::from)?;
    let mut out = MessageResponseBuilder::new(&queries, message.edns.as_ref()).build(
        message.metadata,
        message.answers.iter(),
        message.authorities.iter(),
        std::iter::empty(),
        message.additionals.iter(),
    );
    if let Some(sig) = message.signature {
        out.set_signature(sig);
    }
    inner.send_response(out).await
}

#[cfg(test)]
mod tests {
    //! The time window of a signed request against a fixed clock (time is an
    //! argument of [`verify`]): the request's time ± [`FUDGE`] is accepted,
    //! a second beyond either side is BADTIME, and what we sign carries our
    //! time, not the request's.

    use std::str::FromStr;

    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;

    use super::*;

    /// When the secondary signed its request (Unix seconds).
    const SIGNED_AT: u64 = 1_760_000_000;

    fn key() -> TsigKey {
        TsigKey {
            name: "xfr.example.".into(),
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }

    /// A SOA query signed with `key` at `at`: its bytes and its TSIG record.
    fn signed_query(key: &TsigKey, at: u64) -> (Vec<u8>, Record<TSIG>) {
        let mut m = Message::query();
        m.add_query(Query::query(
            Name::from_str("example.test.").expect("name"),
            RecordType::SOA,
        ));
        m.finalize(&signer_for(key).expect("signer"), at)
            .expect("sign");
        let raw = m.to_vec().expect("encode");
        let sig = Message::from_vec(&raw)
            .expect("decode")
            .signature
            .expect("signed");
        (raw, *sig)
    }

    /// The TSIG record of the encoded message `bytes`.
    fn tsig_of(bytes: &[u8]) -> TSIG {
        Message::from_vec(bytes)
            .expect("decode")
            .signature
            .expect("signed")
            .data
    }

    #[test]
    fn a_request_is_in_time_within_the_fudge_either_side() {
        let key = key();
        let (raw, sig) = signed_query(&key, SIGNED_AT);
        let fudge = u64::from(FUDGE);
        for now in [
            SIGNED_AT - fudge,
            SIGNED_AT - 1,
            SIGNED_AT,
            SIGNED_AT + 1,
            SIGNED_AT + fudge,
        ] {
            assert!(verify(&raw, &sig, Some(&key), now).is_ok(), "at {now}");
        }
        for now in [
            SIGNED_AT - fudge - 1,
            SIGNED_AT + fudge + 1,
            SIGNED_AT + 86_400,
        ] {
            match verify(&raw, &sig, Some(&key), now) {
                Ok(_) => panic!("accepted {} s away", now.abs_diff(SIGNED_AT)),
                Err(f) => assert_eq!(f.error, TsigError::BadTime, "at {now}"),
            }
        }
    }

    #[test]
    fn a_badtime_answer_is_signed_at_our_time() {
        let key = key();
        let (raw, sig) = signed_query(&key, SIGNED_AT);
        let now = SIGNED_AT + u64::from(FUDGE) + 1;
        let Err(failure) = verify(&raw, &sig, Some(&key), now) else {
            panic!("accepted out of its window");
        };
        let answer = failure.answer(&raw).expect("an answer");
        let m = Message::from_vec(&answer).expect("decode");
        assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
        let tsig = tsig_of(&answer);
        assert_eq!(tsig.error, Some(TsigError::BadTime));
        assert_eq!(tsig.time, now, "our clock, for the client to see the skew");
    }

    #[test]
    fn an_answer_and_its_later_messages_are_signed_at_the_time_of_the_check() {
        let key = key();
        let (raw, sig) = signed_query(&key, SIGNED_AT);
        let now = SIGNED_AT + 120;
        let Ok(mut signer) = verify(&raw, &sig, Some(&key), now) else {
            panic!("refused within its window");
        };
        for n in 0..2 {
            let mut reply = error_response(&raw, ResponseCode::NoError).expect("reply");
            signer.sign(&mut reply).expect("sign");
            let tsig = tsig_of(&reply);
            assert_eq!((tsig.time, tsig.fudge), (now, FUDGE), "message {n}");
            assert_eq!(tsig.error, None);
        }
    }

    #[test]
    fn an_unknown_key_or_a_wrong_mac_is_refused_whatever_the_time() {
        let key = key();
        let (raw, sig) = signed_query(&key, SIGNED_AT);
        let other = TsigKey {
            secret: b"another secret, another secret!!".to_vec(),
            ..key.clone()
        };
        let error = |k: Option<&TsigKey>| verify(&raw, &sig, k, SIGNED_AT).err().map(|f| f.error);
        assert_eq!(error(None), Some(TsigError::BadKey));
        assert_eq!(error(Some(&other)), Some(TsigError::BadSig));
        assert_eq!(error(Some(&key)), None);
    }
}
