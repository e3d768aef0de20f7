//! keys: a zone's signing keys from PKCS#8 PEM files (ECDSA P-256 →
//! algorithm 13, Ed25519 → 15), their DNSKEY records, key tags and DS.

use std::path::{Path, PathBuf};

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey};
use hickory_proto::rr::{Name, RData, Record};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{ConfigError, DnssecConfig};

/// DNSKEY flags: a zone key (256), plus the secure entry point bit for a KSK (257).
const ZONE_KEY: u16 = 256;
const SEP: u16 = 1;

/// One key of a zone.
pub struct Key {
    pub path: PathBuf,
    pub signing: Box<dyn SigningKey>,
    pub dnskey: DNSKEY,
    pub tag: u16,
    /// Signs the DNSKEY RRset.
    pub ksk: bool,
    /// Signs every other RRset.
    pub zsk: bool,
}

impl Key {
    pub fn algorithm(&self) -> Algorithm {
        self.signing.algorithm()
    }

    pub fn flags(&self) -> u16 {
        self.dnskey.flags()
    }

    /// What `check` prints: tag, algorithm, flags and role.
    pub fn describe(&self) -> String {
        let role = match (self.ksk, self.zsk) {
            (true, true) => "signs everything",
            (true, false) => "KSK: signs the DNSKEY RRset",
            _ => "ZSK: signs the zone's other RRsets",
        };
        format!(
            "{}: tag {}, algorithm {} ({:?}), flags {} ({role})",
            self.path.display(),
            self.tag,
            u8::from(self.algorithm()),
            self.algorithm(),
            self.flags()
        )
    }
}

/// Reads a PKCS#8 PEM key: ECDSA P-256 or Ed25519.
fn read_key(path: &Path) -> Result<Box<dyn SigningKey>, String> {
    let pem = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            use std::os::unix::fs::MetadataExt;
            let owner = std::fs::metadata(path)
                .map(|m| {
                    format!(
                        "mode {:04o}, owner {}:{}",
                        m.mode() & 0o7777,
                        m.uid(),
                        m.gid()
                    )
                })
                .unwrap_or_else(|_| "its folder is not readable either".to_string());
            format!(
                "cannot read the key: permission denied ({owner}). openssl writes keys 0600 for \
                 their owner, and the systemd unit's DynamicUser can read only what any user can: \
                 hand the key to the service with LoadCredential= and name the credential's path, \
                 or run as a user allowed to read it (docs/src/dnssec.md, \"Key files\"); never \
                 make a private key world-readable"
            )
        }
        std::io::ErrorKind::NotFound => {
            "no such key file; make one with `openssl genpkey -algorithm EC \
             -pkeyopt ec_paramgen_curve:P-256 -out KEY.pem` (or `-algorithm ED25519`)"
                .to_string()
        }
        _ => format!("cannot read the key: {e}"),
    })?;
    let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|e| {
        format!("not a PKCS#8 PEM private key ({e}): `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out KEY.pem` (or `-algorithm ED25519`) writes one")
    })?;
    if let Ok(k) = EcdsaSigningKey::from_pkcs8(&der, Algorithm::ECDSAP256SHA256) {
        return Ok(Box::new(k));
    }
    if let Ok(k) = Ed25519SigningKey::from_pkcs8(&der) {
        return Ok(Box::new(k));
    }
    // `openssl genpkey -algorithm ED25519` writes PKCS#8 v1 (the seed
    // without the public key), which ring's parser refuses: its DER is a
    // fixed prefix and the 32-byte seed.
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let bytes = der.secret_pkcs8_der();
    if bytes.len() == 48
        && bytes[..16] == V1_PREFIX
        && let Ok(pair) = ring::signature::Ed25519KeyPair::from_seed_unchecked(&bytes[16..])
    {
        return Ok(Box::new(Ed25519SigningKey::from_ed25519(pair)));
    }
    Err("not an ECDSA P-256 or Ed25519 key (RSA and other curves are not supported)".into())
}

/// The zone's keys as `[dnssec."ZONE"]` lists them: one key signs
/// everything (flags 257); with `ksk` naming one of two or more, it signs
/// the DNSKEY RRset and the others the rest.
pub fn load(cfg: &DnssecConfig) -> Result<Vec<Key>, ConfigError> {
    let mut keys = Vec::new();
    let split = cfg.ksk.is_some();
    for path in &cfg.keys {
        let signing = read_key(path).map_err(|e| ConfigError::file(path, e))?;
        let public = signing
            .to_public_key()
            .map_err(|e| ConfigError::file(path, format!("cannot derive the public key: {e}")))?;
        let ksk = !split || cfg.ksk.as_deref() == Some(path.as_path());
        let zsk = !split || !ksk;
        let flags = ZONE_KEY | if ksk { SEP } else { 0 };
        let dnskey = DNSKEY::with_flags(flags, public);
        let tag = dnskey
            .calculate_key_tag()
            .map_err(|e| ConfigError::file(path, format!("cannot compute the key tag: {e}")))?;
        keys.push(Key {
            path: path.clone(),
            signing,
            dnskey,
            tag,
            ksk,
            zsk,
        });
    }
    Ok(keys)
}

/// RFC 4035 §2.2: each RRset is signed with every algorithm of the DNSKEY
/// RRset. The KSKs sign the DNSKEY RRset, the ZSKs the others: both must
/// hold the same algorithms, or validators find some RRsets signed by one
/// algorithm only. Says why, naming one key of each side.
pub fn mixed_algorithms(keys: &[Key]) -> Option<String> {
    let algs = |ksk: bool| {
        let mut a: Vec<(u8, &Key)> = keys
            .iter()
            .filter(|k| if ksk { k.ksk } else { k.zsk })
            .map(|k| (u8::from(k.algorithm()), k))
            .collect();
        a.sort_by_key(|(n, _)| *n);
        a.dedup_by_key(|(n, _)| *n);
        a
    };
    let (ksks, zsks) = (algs(true), algs(false));
    if ksks.iter().map(|(n, _)| n).eq(zsks.iter().map(|(n, _)| n)) {
        return None;
    }
    let name = |k: &Key| {
        format!(
            "{} (algorithm {}, {})",
            k.path.display(),
            u8::from(k.algorithm()),
            k.algorithm()
        )
    };
    let ksk = ksks.first().map(|(_, k)| name(k)).unwrap_or_default();
    let zsk = zsks.first().map(|(_, k)| name(k)).unwrap_or_default();
    Some(format!(
        "the KSK {ksk} and the ZSK {zsk} differ in algorithm: RFC 4035 §2.2 wants every RRset \
         signed with each algorithm of the DNSKEY set, and these would sign each RRset with one; \
         use keys of one algorithm (or one key for both)"
    ))
}

/// The DS record (SHA-256) of a KSK, for the parent zone.
pub fn ds(origin: &Name, key: &Key, ttl: u32) -> Option<Record> {
    let digest = key.dnskey.to_digest(origin, DigestType::SHA256).ok()?;
    let ds = DS::new(
        key.tag,
        key.algorithm(),
        DigestType::SHA256,
        digest.as_ref().to_vec(),
    );
    Some(Record::from_rdata(
        origin.clone(),
        ttl,
        RData::DNSSEC(DNSSECRData::DS(ds)),
    ))
}
