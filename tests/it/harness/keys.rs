//! DNSSEC signing keys made by the real `openssl`: PKCS#8 PEM files, the
//! format `[dnssec."ZONE"] keys` reads, and the DNSKEY record a validator
//! is given as trust anchor for them.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

/// The two algorithms geosteer signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256, DNSSEC algorithm 13.
    EcdsaP256,
    /// Ed25519, DNSSEC algorithm 15.
    Ed25519,
}

impl Alg {
    /// The DNSSEC algorithm number (RFC 8624).
    pub fn number(self) -> u8 {
        match self {
            Alg::EcdsaP256 => 13,
            Alg::Ed25519 => 15,
        }
    }

    /// The length of the public key in a DNSKEY record.
    fn public_len(self) -> usize {
        match self {
            Alg::EcdsaP256 => 64,
            Alg::Ed25519 => 32,
        }
    }
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}): install openssl (apt-get install -y openssl)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Writes a fresh private key as `dir/name` (PKCS#8 PEM) and returns its path.
pub fn generate(dir: &Path, name: &str, alg: Alg) -> PathBuf {
    let path = dir.join(name);
    let out = path.to_str().expect("key path is UTF-8");
    match alg {
        Alg::EcdsaP256 => openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            out,
        ]),
        Alg::Ed25519 => openssl(&["genpkey", "-algorithm", "ED25519", "-out", out]),
    };
    let pem = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("openssl wrote no key at {}: {e}", path.display()));
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{} is not PKCS#8 PEM: {pem}",
        path.display()
    );
    path
}

/// The DNSKEY public key field of `key` (base64): for P-256 the point's X
/// and Y (RFC 6605), for Ed25519 the 32 key bytes (RFC 8080). Both are the
/// tail of the SubjectPublicKeyInfo that `openssl pkey -pubout` writes.
pub fn public_key_base64(key: &Path, alg: Alg) -> String {
    let path = key.to_str().expect("key path is UTF-8");
    let spki = openssl(&["pkey", "-in", path, "-pubout", "-outform", "DER"]);
    let n = alg.public_len();
    assert!(
        spki.len() > n,
        "{}: public key info of {} bytes is too short for {alg:?}",
        key.display(),
        spki.len()
    );
    base64::engine::general_purpose::STANDARD.encode(&spki[spki.len() - n..])
}

/// `key` as a DNSKEY record of `zone` (flags 257: a key-signing/secure entry
/// point key), one line of zone-file text usable as a trust anchor.
pub fn dnskey(key: &Path, zone: &str, alg: Alg) -> String {
    format!(
        "{}. 3600 IN DNSKEY 257 3 {} {}",
        zone.trim_end_matches('.'),
        alg.number(),
        public_key_base64(key, alg)
    )
}
