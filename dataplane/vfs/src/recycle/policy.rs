//! The recycle bin's policy: the bin directory's name, [`TrashPolicy`] and its exclude
//! globs.
//!
//! Pure data and functions: nothing here reads or writes a store, so the share's options
//! (`crate::fs`) and every part of the bin may depend on it.

use crate::error::{FsError, FsResult};

/// Name of the recycle bin directory at the share root.
pub const TRASH_DIR: &str = "#recycle";

/// Recycle-bin policy of a share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrashPolicy {
    pub enabled: bool,
    /// Items deleted more than this many days ago are purged by `Fs::trash_reap`;
    /// 0 = keep forever.
    pub retention_days: u32,
    /// Cap of the bin's total size in bytes, oldest items evicted first; 0 = unbounded.
    pub max_size: u64,
    /// Globs matched against a victim's name and its share-relative path (no leading
    /// `/`; directories also as `path/`); a match deletes permanently. `*` does not
    /// cross `/`, `**` does: `*.tmp`, `build/**`.
    pub exclude: Vec<String>,
}

/// Compiles the exclude globs of a policy; a bad glob is an [`FsError::InvalidArgument`].
pub(crate) fn compile_excludes(share: &str, globs: &[String]) -> FsResult<globset::GlobSet> {
    let mut b = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                FsError::InvalidArgument(format!("share {share}: trash exclude glob {g:?}: {e}"))
            })?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| FsError::InvalidArgument(format!("share {share}: trash exclude globs: {e}")))
}

/// Whether a victim named `name` at share-relative path `rel` is excluded.
pub(crate) fn excluded(set: &globset::GlobSet, name: &[u8], rel: &[u8], is_dir: bool) -> bool {
    if set.is_empty() {
        return false;
    }
    let name = String::from_utf8_lossy(name);
    let rel = String::from_utf8_lossy(rel);
    set.is_match(name.as_ref())
        || set.is_match(rel.as_ref())
        || (is_dir && set.is_match(format!("{rel}/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_match_name_and_path() {
        let set = compile_excludes(
            "s",
            &[
                "*.tmp".to_string(),
                "build/**".to_string(),
                "docs/*.md".to_string(),
            ],
        )
        .unwrap();
        assert!(excluded(&set, b"x.tmp", b"a/b/x.tmp", false));
        assert!(excluded(&set, b"o", b"build/o", false));
        assert!(excluded(&set, b"o", b"build/x/y/o", false));
        assert!(excluded(&set, b"build", b"build", true));
        assert!(!excluded(&set, b"build", b"build", false));
        assert!(excluded(&set, b"r.md", b"docs/r.md", false));
        assert!(!excluded(&set, b"r.md", b"docs/sub/r.md", false));
        assert!(!excluded(&set, b"x.txt", b"a/x.txt", false));
        assert!(matches!(
            compile_excludes("s", &["a[".to_string()]),
            Err(FsError::InvalidArgument(m)) if m.contains("a[")
        ));
    }
}
