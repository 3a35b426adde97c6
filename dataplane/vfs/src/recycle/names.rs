//! Names in the recycle bin: a taken name is made free with a suffix before the
//! extension (`report (2).txt`, `report (3).txt`, ..., then `report (ino N).txt`),
//! shortened to fit `NAME_MAX` without splitting a UTF-8 sequence.

use crate::fs::NAME_MAX;

/// Suffixes ` (2)` .. ` (MAX_SUFFIX)` are tried before ` (ino N)`.
pub(crate) const MAX_SUFFIX: u32 = 1000;

/// `name` with ` (tag)` inserted before the extension (files only; a leading dot is not
/// an extension), shortened to fit [`NAME_MAX`].
pub(crate) fn suffixed(name: &[u8], tag: &str, is_dir: bool) -> Vec<u8> {
    let suffix = format!(" ({tag})");
    let split = if is_dir {
        None
    } else {
        name.iter()
            .rposition(|&c| c == b'.')
            .filter(|&i| i > 0 && name.len() - i <= 32)
    };
    let (stem, ext) = match split {
        Some(i) => name.split_at(i),
        None => (name, &[][..]),
    };
    let room = NAME_MAX.saturating_sub(suffix.len() + ext.len());
    let mut cut = stem.len().min(room);
    // Do not split a UTF-8 sequence when shortening.
    while cut > 0 && cut < stem.len() && (stem[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let mut out = Vec::with_capacity(cut + suffix.len() + ext.len());
    out.extend_from_slice(&stem[..cut]);
    out.extend_from_slice(suffix.as_bytes());
    out.extend_from_slice(ext);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_go_before_the_extension() {
        assert_eq!(suffixed(b"report.txt", "2", false), b"report (2).txt");
        assert_eq!(suffixed(b"a.tar.gz", "3", false), b"a.tar (3).gz");
        assert_eq!(suffixed(b".bashrc", "2", false), b".bashrc (2)");
        assert_eq!(suffixed(b"noext", "2", false), b"noext (2)");
        assert_eq!(suffixed(b"dir.d", "2", true), b"dir.d (2)");
        let long = vec![b'x'; NAME_MAX];
        let s = suffixed(&long, "2", false);
        assert_eq!(s.len(), NAME_MAX);
        assert!(s.ends_with(b" (2)"));
        // Multi-byte UTF-8 is not split when shortening.
        let mut uni = "é".repeat(200).into_bytes();
        uni.extend_from_slice(b".txt");
        let s = suffixed(&uni, "12", false);
        assert!(s.len() <= NAME_MAX);
        assert!(std::str::from_utf8(&s).is_ok());
        assert!(s.ends_with(b" (12).txt"));
    }
}
