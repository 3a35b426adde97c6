//! Record Marking Standard for RPC over stream transports (RFC 5531 section 11).
//!
//! A record is one or more fragments; each fragment starts with a 4-byte big-endian
//! header whose high bit marks the last fragment and whose low 31 bits give the
//! fragment length. [`read_record`] reassembles records with a caller-supplied size
//! limit that is enforced *before* a fragment is read or buffered; the writers frame a
//! reply as a single last fragment (splitting only beyond 2^31-1 bytes).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Size of a fragment header.
pub const RECORD_MARK_LEN: usize = 4;
/// Bit of the fragment header flagging the last fragment of a record.
pub const LAST_FRAGMENT: u32 = 0x8000_0000;
/// Largest fragment length representable in a header (2^31 - 1).
pub const MAX_FRAGMENT: usize = 0x7FFF_FFFF;

/// Error while reading a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Transport error.
    #[error("record I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The record would exceed the limit. Nothing of the offending fragment has been
    /// read, so the stream is no longer in sync: close the connection.
    #[error("RPC record of at least {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// Accumulated size including the offending fragment.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// The peer closed the stream in the middle of a record.
    #[error("connection closed in the middle of an RPC record")]
    UnexpectedEof,
}

/// Build a fragment header.
pub fn record_mark(len: usize, last: bool) -> [u8; 4] {
    let len = u32::try_from(len.min(MAX_FRAGMENT)).unwrap_or(0x7FFF_FFFF);
    let v = if last { len | LAST_FRAGMENT } else { len };
    v.to_be_bytes()
}

/// Read a fragment header. `Ok(None)` on EOF before the first byte.
async fn read_header<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<u32>, RecordError> {
    let mut hdr = [0u8; RECORD_MARK_LEN];
    let mut got = 0;
    while got < hdr.len() {
        let slot = hdr.get_mut(got..).unwrap_or_default();
        let n = r.read(slot).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(RecordError::UnexpectedEof)
            };
        }
        got += n;
    }
    Ok(Some(u32::from_be_bytes(hdr)))
}

/// Read one complete record.
///
/// Returns `Ok(None)` on a clean EOF between records, [`RecordError::UnexpectedEof`]
/// on EOF inside a record, and [`RecordError::RecordTooLarge`] as soon as a fragment
/// header announces a size that would push the record past `max_record` (before that
/// fragment is read or any memory is reserved for it). Memory grows with the data
/// actually received, not with the announced length.
pub async fn read_record<R: AsyncRead + Unpin>(
    r: &mut R,
    max_record: usize,
) -> Result<Option<Vec<u8>>, RecordError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let hdr = match read_header(r).await? {
            Some(h) => h,
            None if first => return Ok(None),
            None => return Err(RecordError::UnexpectedEof),
        };
        first = false;
        let last = hdr & LAST_FRAGMENT != 0;
        let len = (hdr & !LAST_FRAGMENT) as usize;
        let size = buf.len().saturating_add(len);
        if size > max_record {
            return Err(RecordError::RecordTooLarge {
                size,
                max: max_record,
            });
        }
        // Reserve up front only a bounded amount; the rest grows as data arrives.
        buf.reserve(len.min(1 << 20));
        let want = len as u64;
        let got = (&mut *r).take(want).read_to_end(&mut buf).await?;
        if (got as u64) < want {
            return Err(RecordError::UnexpectedEof);
        }
        if last {
            return Ok(Some(buf));
        }
    }
}

/// Write `payload` as one record (a single last fragment unless it exceeds
/// [`MAX_FRAGMENT`]). Does not flush.
pub async fn write_record<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> std::io::Result<()> {
    write_record_parts(w, &[payload]).await
}

/// Write the concatenation of `parts` as one record without concatenating them first
/// (e.g. a READ reply header, the file data, and its XDR padding). Does not flush.
pub async fn write_record_parts<W: AsyncWrite + Unpin>(
    w: &mut W,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= MAX_FRAGMENT {
        w.write_all(&record_mark(total, true)).await?;
        for p in parts {
            w.write_all(p).await?;
        }
        return Ok(());
    }
    // Rare path: split into fragments of at most MAX_FRAGMENT bytes.
    let mut left = total;
    let mut frag_left = 0usize;
    for p in parts {
        let mut p: &[u8] = p;
        while !p.is_empty() {
            if frag_left == 0 {
                frag_left = left.min(MAX_FRAGMENT);
                w.write_all(&record_mark(frag_left, frag_left == left))
                    .await?;
            }
            let n = p.len().min(frag_left);
            let (head, tail) = p.split_at(n);
            w.write_all(head).await?;
            p = tail;
            frag_left -= n;
            left -= n;
        }
    }
    Ok(())
}

/// Most iovecs handed to one `writev` (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 1024;

/// Write several records (each the concatenation of its parts, as in
/// [`write_record_parts`]) with as few `writev` calls as the kernel allows: a busy
/// connection's replies leave in one system call instead of three per reply. Records
/// above [`MAX_FRAGMENT`] go through [`write_record_parts`]. Does not flush.
pub async fn write_records<W: AsyncWrite + Unpin>(
    w: &mut W,
    records: &[&[&[u8]]],
) -> std::io::Result<()> {
    let marks: Vec<[u8; RECORD_MARK_LEN]> = records
        .iter()
        .map(|parts| record_mark(parts.iter().map(|p| p.len()).sum(), true))
        .collect();
    let mut slices: Vec<std::io::IoSlice<'_>> = Vec::new();
    for (parts, mark) in records.iter().zip(&marks) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > MAX_FRAGMENT || parts.len() + 1 > MAX_IOVECS {
            write_slices(w, &mut slices).await?;
            write_record_parts(w, parts).await?;
            continue;
        }
        if slices.len() + parts.len() + 1 > MAX_IOVECS {
            write_slices(w, &mut slices).await?;
        }
        slices.push(std::io::IoSlice::new(mark));
        slices.extend(
            parts
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| std::io::IoSlice::new(p)),
        );
    }
    write_slices(w, &mut slices).await
}

/// `write_all` for a list of slices through `write_vectored`; empties `slices`.
async fn write_slices<W: AsyncWrite + Unpin>(
    w: &mut W,
    slices: &mut Vec<std::io::IoSlice<'_>>,
) -> std::io::Result<()> {
    let mut rest: &mut [std::io::IoSlice<'_>] = slices;
    while !rest.is_empty() {
        let n = w.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    slices.clear();
    Ok(())
}

/// Prefix `payload` with a single last-fragment header into a new buffer (for callers
/// that prefer one `write_all`). Payloads above [`MAX_FRAGMENT`] need
/// [`write_record_parts`].
pub fn frame_record(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(RECORD_MARK_LEN + payload.len());
    v.extend_from_slice(&record_mark(payload.len(), true));
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `step` bytes per call, vectored or not.
    struct Dribble {
        out: Vec<u8>,
        step: usize,
        calls: usize,
    }

    impl AsyncWrite for Dribble {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            self.calls += 1;
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let mut left = self.step;
            for b in bufs {
                let n = b.len().min(left);
                self.out.extend_from_slice(&b[..n]);
                left -= n;
                if left == 0 {
                    break;
                }
            }
            self.calls += 1;
            std::task::Poll::Ready(Ok(self.step - left))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Batched records come out byte for byte as one framed record after another, however
    /// the transport splits the writes; a large batch still needs few calls.
    #[tokio::test]
    async fn batched_records_survive_partial_writes() {
        let a: Vec<u8> = (0..100u8).collect();
        let b = vec![7u8; 3000];
        let empty: &[u8] = &[];
        let records: Vec<Vec<&[u8]>> = vec![
            vec![&a[..10], &b[..], &a[10..]],
            vec![empty],
            vec![&a[..3], empty, &b[..5]],
        ];
        let refs: Vec<&[&[u8]]> = records.iter().map(|r| &r[..]).collect();
        let mut want = Vec::new();
        for r in &records {
            want.extend_from_slice(&frame_record(&r.concat()));
        }
        for step in [1, 3, 4, 5, 97, 4096, 1 << 20] {
            let mut w = Dribble {
                out: Vec::new(),
                step,
                calls: 0,
            };
            write_records(&mut w, &refs).await.unwrap();
            assert_eq!(w.out, want, "step {step}");
            if step >= want.len() {
                assert_eq!(w.calls, 1);
            }
        }
        // more slices than one writev takes
        let many: Vec<Vec<&[u8]>> = (0..700).map(|_| vec![&a[..1], &a[1..2]]).collect();
        let refs: Vec<&[&[u8]]> = many.iter().map(|r| &r[..]).collect();
        let mut w = Dribble {
            out: Vec::new(),
            step: usize::MAX,
            calls: 0,
        };
        write_records(&mut w, &refs).await.unwrap();
        assert_eq!(w.out.len(), 700 * 6);
        assert_eq!(w.calls, 3);
    }

    #[test]
    fn marks() {
        assert_eq!(record_mark(5, true), [0x80, 0, 0, 5]);
        assert_eq!(record_mark(0x1234, false), [0, 0, 0x12, 0x34]);
        assert_eq!(frame_record(b"ab"), [0x80, 0, 0, 2, b'a', b'b']);
    }
}
