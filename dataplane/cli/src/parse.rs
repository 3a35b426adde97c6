//! Parsers for the value syntaxes `dfsctl` accepts on the command line and in config
//! files: byte sizes (`10G`, `512M`, `4096`), durations (`1h`, `30m`, `3600s`, `0`),
//! chunking triples (`1M/4M/16M`) and octal file modes (`0755`).
//!
//! Every parser returns `Result<_, ValueError>` (an error type, so it serves directly as
//! a clap `value_parser` and as a serde `custom` message); the message quotes the input
//! and says what was expected.

use dittofs_proto::v1::Chunking;

/// A value that does not parse; the `String` fields are the input as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    #[error(
        "invalid size {0:?}: expected a number of bytes with an optional K/M/G/T suffix, e.g. 512M or 10G"
    )]
    SizeNotANumber(String),
    #[error("invalid size {0:?}: number too large")]
    SizeNumberTooLarge(String),
    #[error("invalid size {input:?}: unknown unit {unit:?} (use K, M, G or T; multiples of 1024)")]
    SizeUnit { input: String, unit: String },
    #[error("invalid size {0:?}: too large")]
    SizeTooLarge(String),
    #[error("size {0:?} is too large (at most 4294967295 bytes)")]
    SizeOver32Bits(String),
    #[error("invalid duration {0:?}: expected e.g. 1h, 30m, 3600s, 1h30m or 0")]
    Duration(String),
    #[error("invalid chunking {0:?}: expected MIN/AVG/MAX, e.g. 1M/4M/16M")]
    ChunkingShape(String),
    #[error("invalid chunking {min}/{avg}/{max}: need 0 < MIN <= AVG <= MAX")]
    ChunkingOrder { min: u32, avg: u32, max: u32 },
    #[error("invalid mode {0:?}: expected octal digits, e.g. 0755")]
    ModeDigits(String),
    #[error("invalid mode {0:?}: at most 07777")]
    ModeTooLarge(String),
}

/// Parses a byte count: a whole number with an optional binary suffix
/// `K`, `M`, `G`, `T` (also `KB`/`KiB`..., case-insensitive; `B` alone means bytes).
pub(crate) fn parse_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(ValueError::SizeNotANumber(s.to_owned()));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| ValueError::SizeNumberTooLarge(s.to_owned()))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(ValueError::SizeUnit {
                input: s.to_owned(),
                unit: other.to_owned(),
            });
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| ValueError::SizeTooLarge(s.to_owned()))
}

/// Parses a byte count that must fit in 32 bits (chunk sizes).
fn parse_size_u32(s: &str) -> Result<u32, ValueError> {
    let n = parse_size(s)?;
    u32::try_from(n).map_err(|_| ValueError::SizeOver32Bits(s.to_owned()))
}

/// Parses a duration into whole seconds: `0`, a plain number of seconds (`3600`), or a
/// sequence of number+unit parts with units `s`, `m`, `h`, `d` (`1h`, `30m`, `1h30m`).
pub(crate) fn parse_duration_secs(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let bad = || ValueError::Duration(s.to_owned());
    if t.is_empty() {
        return Err(bad());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return t.parse().map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        if num.is_empty() {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        // Trailing number without a unit, as in "1h30".
        return Err(bad());
    }
    Ok(total)
}

/// Formats seconds compactly: `3600` -> `1h`, `5400` -> `1h30m`, `0` -> `0s`.
pub(crate) fn format_duration_secs(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, name) in [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

/// Parses `MIN/AVG/MAX` chunk sizes, each a size as accepted by [`parse_size`]
/// (e.g. `1M/4M/16M`). Requires `0 < MIN <= AVG <= MAX`.
pub(crate) fn parse_chunking(s: &str) -> Result<Chunking, ValueError> {
    let parts: Vec<&str> = s.split('/').collect();
    let [min, avg, max] = parts.as_slice() else {
        return Err(ValueError::ChunkingShape(s.to_owned()));
    };
    let c = Chunking {
        min: parse_size_u32(min)?,
        avg: parse_size_u32(avg)?,
        max: parse_size_u32(max)?,
    };
    check_chunking(&c)?;
    Ok(c)
}

/// The client-side sanity check of chunk sizes (the server validates further).
pub(crate) fn check_chunking(c: &Chunking) -> Result<(), ValueError> {
    if c.min == 0 || c.min > c.avg || c.avg > c.max {
        return Err(ValueError::ChunkingOrder {
            min: c.min,
            avg: c.avg,
            max: c.max,
        });
    }
    Ok(())
}

/// Formats chunk sizes as `MIN/AVG/MAX` with the largest exact binary suffix.
pub(crate) fn format_chunking(c: &Chunking) -> String {
    format!(
        "{}/{}/{}",
        format_size_exact(c.min.into()),
        format_size_exact(c.avg.into()),
        format_size_exact(c.max.into())
    )
}

/// `4194304` -> `4M`, `1000` -> `1000`: a suffix only when it is exact.
pub(crate) fn format_size_exact(n: u64) -> String {
    for (shift, suffix) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        let unit = 1u64 << shift;
        if n != 0 && n.is_multiple_of(unit) {
            return format!("{}{suffix}", n / unit);
        }
    }
    n.to_string()
}

/// Parses a file mode written in octal: `0755`, `755`, `0o755` (at most `07777`).
pub(crate) fn parse_octal_mode(s: &str) -> Result<u32, ValueError> {
    let t = s.trim();
    let digits = t
        .strip_prefix("0o")
        .or_else(|| t.strip_prefix("0O"))
        .unwrap_or(t);
    if digits.is_empty() || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(ValueError::ModeDigits(s.to_owned()));
    }
    // Octal digits only: the one failure left is overflow.
    let mode =
        u32::from_str_radix(digits, 8).map_err(|_| ValueError::ModeTooLarge(s.to_owned()))?;
    if mode > 0o7777 {
        return Err(ValueError::ModeTooLarge(s.to_owned()));
    }
    Ok(mode)
}

/// Formats a mode as a 4-digit octal string: `0o755` -> `0755`.
pub(crate) fn format_octal_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Human-readable size with binary units: `1536` -> `1.5 KiB`.
pub(crate) fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("EiB");
    if value >= 100.0 {
        format!("{value:.0} {name}")
    } else {
        format!("{value:.1} {name}")
    }
}

/// Formats Unix seconds as an RFC 3339 UTC timestamp (`1970-01-01T00:00:00Z`).
pub(crate) fn format_unix(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages quote the input and say what was expected (as the strings did).
    #[test]
    fn messages_quote_the_input() {
        let msg = |r: Result<u64, ValueError>| r.err().map(|e| e.to_string());
        assert_eq!(
            msg(parse_size("10X")).as_deref(),
            Some("invalid size \"10X\": unknown unit \"x\" (use K, M, G or T; multiples of 1024)")
        );
        assert_eq!(
            msg(parse_duration_secs("1h30")).as_deref(),
            Some("invalid duration \"1h30\": expected e.g. 1h, 30m, 3600s, 1h30m or 0")
        );
        assert_eq!(
            parse_chunking("4M/1M/16M")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("invalid chunking 4194304/1048576/16777216: need 0 < MIN <= AVG <= MAX")
        );
        assert_eq!(
            parse_octal_mode("17777"),
            Err(ValueError::ModeTooLarge("17777".into()))
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10g"), Ok(10 << 30));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("10X").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("17179869184T").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("0"), Ok(0));
        assert_eq!(parse_duration_secs("3600"), Ok(3600));
        assert_eq!(parse_duration_secs("3600s"), Ok(3600));
        assert_eq!(parse_duration_secs("30m"), Ok(1800));
        assert_eq!(parse_duration_secs("1h"), Ok(3600));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5400));
        assert_eq!(parse_duration_secs("2d"), Ok(172_800));
        assert_eq!(parse_duration_secs("0s"), Ok(0));
        for bad in ["", "h", "1x", "1h30", "-5m", "1.5h"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(format_duration_secs(0), "0s");
        assert_eq!(format_duration_secs(3600), "1h");
        assert_eq!(format_duration_secs(5400), "1h30m");
        assert_eq!(format_duration_secs(90_061), "1d1h1m1s");
    }

    #[test]
    fn chunking() {
        let c = parse_chunking("1M/4M/16M").unwrap();
        assert_eq!((c.min, c.avg, c.max), (1 << 20, 4 << 20, 16 << 20));
        let c = parse_chunking("65536/256K/1M").unwrap();
        assert_eq!((c.min, c.avg, c.max), (65536, 256 << 10, 1 << 20));
        assert_eq!(format_chunking(&c), "64K/256K/1M");
        assert!(parse_chunking("1M/4M").is_err());
        assert!(parse_chunking("4M/1M/16M").is_err());
        assert!(parse_chunking("0/1M/2M").is_err());
        assert!(parse_chunking("1M/4M/4G").is_err(), "4G does not fit u32");
        assert!(parse_chunking("1M/4M/16Q").is_err());
    }

    #[test]
    fn octal_modes() {
        assert_eq!(parse_octal_mode("0755"), Ok(0o755));
        assert_eq!(parse_octal_mode("755"), Ok(0o755));
        assert_eq!(parse_octal_mode("0o777"), Ok(0o777));
        assert_eq!(parse_octal_mode("1777"), Ok(0o1777));
        assert_eq!(parse_octal_mode("0"), Ok(0));
        assert!(parse_octal_mode("0855").is_err());
        assert!(parse_octal_mode("").is_err());
        assert!(parse_octal_mode("17777").is_err());
        assert!(parse_octal_mode("rwx").is_err());
        assert_eq!(format_octal_mode(0o777), "0777");
        assert_eq!(format_octal_mode(0o755), "0755");
        assert_eq!(format_octal_mode(0o1777), "1777");
    }

    #[test]
    fn human_sizes_and_times() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(10 << 30), "10.0 GiB");
        assert_eq!(human_size(500 << 20), "500 MiB");
        assert_eq!(format_size_exact(16 << 20), "16M");
        assert_eq!(format_size_exact(1000), "1000");
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
