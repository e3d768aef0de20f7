//! Build script: puts the git commit into `geosteer --version` when the crate
//! is built from a checkout, or names the one given in `GEOSTEER_COMMIT`
//! (a container build, whose context holds no `.git`). From a source archive
//! (no `.git`) or without a `git` binary the version is the package version
//! alone; the build never fails for want of git.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GEOSTEER_COMMIT");
    let version = env!("CARGO_PKG_VERSION");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&dir);
    let given = std::env::var("GEOSTEER_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let hash = match given {
        Some(c) => Some(c),
        // Only this crate's own checkout: a source archive unpacked inside
        // some other repository must not report that repository's commit.
        None if dir.join(".git").exists() => commit(dir),
        None => None,
    };
    let full = hash.map(|c| format!("{version} ({c})"));
    println!(
        "cargo:rustc-env=GEOSTEER_VERSION={}",
        full.as_deref().unwrap_or(version)
    );
}

/// The short commit of HEAD, and rerun-if-changed on the files that move
/// when it does: HEAD itself (a checkout), the branch's ref (a commit) and
/// packed-refs (after `git gc`). `.git` may be a file (a worktree), so the
/// paths come from git rather than being spelled `.git/HEAD`.
fn commit(dir: &Path) -> Option<String> {
    let hash = git(dir, &["rev-parse", "--short", "HEAD"])?;
    let mut watch = vec![git(dir, &["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.extend(git(dir, &["rev-parse", "--git-path", &branch]));
    }
    watch.extend(git(dir, &["rev-parse", "--git-path", "packed-refs"]));
    for path in watch {
        let path = dir.join(path);
        // A path that does not exist would make cargo rerun this every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(hash)
}

/// One line of git's output, or None when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}
