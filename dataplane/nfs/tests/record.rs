//! Record marking (RFC 5531 section 11) over tokio streams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::pin::Pin;
use std::task::{Context, Poll};

use dittofs_nfs::record::{
    RecordError, frame_record, read_record, record_mark, write_record, write_record_parts,
};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

fn frag(data: &[u8], last: bool) -> Vec<u8> {
    let mut v = record_mark(data.len(), last).to_vec();
    v.extend_from_slice(data);
    v
}

/// A reader over a byte vector that counts how many bytes were consumed.
struct Counting {
    data: Vec<u8>,
    pos: usize,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf.remaining().min(self.data.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn single_and_multi_fragment_records() {
    let mut stream = Vec::new();
    stream.extend(frag(b"one", true));
    stream.extend(frag(b"ab", false));
    stream.extend(frag(b"", false));
    stream.extend(frag(b"cde", false));
    stream.extend(frag(b"f", true));
    stream.extend(frag(b"", true));
    let mut r = &stream[..];
    assert_eq!(read_record(&mut r, 100).await.unwrap().unwrap(), b"one");
    assert_eq!(read_record(&mut r, 100).await.unwrap().unwrap(), b"abcdef");
    assert_eq!(read_record(&mut r, 100).await.unwrap().unwrap(), b"");
    assert!(read_record(&mut r, 100).await.unwrap().is_none());
}

#[tokio::test]
async fn oversized_record_rejected_before_reading_it() {
    // A hostile header announcing 2 GiB; nothing after it.
    let mut r = Counting {
        data: vec![0xFF, 0xFF, 0xFF, 0xFF],
        pos: 0,
    };
    match read_record(&mut r, 1 << 20).await {
        Err(RecordError::RecordTooLarge { size, max }) => {
            assert_eq!(size, 0x7FFF_FFFF);
            assert_eq!(max, 1 << 20);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Data present: only the 4-byte header has been consumed.
    let mut data = frag(&[1u8; 200], true);
    data.extend_from_slice(&[0; 16]);
    let mut r = Counting { data, pos: 0 };
    assert!(matches!(
        read_record(&mut r, 100).await,
        Err(RecordError::RecordTooLarge {
            size: 200,
            max: 100
        })
    ));
    assert_eq!(r.pos, 4);
}

#[tokio::test]
async fn accumulated_fragments_over_limit_are_rejected() {
    let mut data = frag(&[1u8; 60], false);
    data.extend(frag(&[2u8; 60], true));
    let mut r = Counting { data, pos: 0 };
    assert!(matches!(
        read_record(&mut r, 100).await,
        Err(RecordError::RecordTooLarge {
            size: 120,
            max: 100
        })
    ));
    // The second fragment's payload was not read.
    assert_eq!(r.pos, 4 + 60 + 4);
    // Exactly at the limit is fine.
    let mut data = frag(&[1u8; 50], false);
    data.extend(frag(&[2u8; 50], true));
    let mut r = &data[..];
    assert_eq!(read_record(&mut r, 100).await.unwrap().unwrap().len(), 100);
}

#[tokio::test]
async fn eof_mid_record_is_an_error() {
    // EOF inside a header.
    let mut r: &[u8] = &[0x80, 0];
    assert!(matches!(
        read_record(&mut r, 100).await,
        Err(RecordError::UnexpectedEof)
    ));
    // EOF inside fragment data.
    let data = frag(b"abcdef", true);
    let mut r = &data[..6];
    assert!(matches!(
        read_record(&mut r, 100).await,
        Err(RecordError::UnexpectedEof)
    ));
    // EOF after a non-last fragment.
    let data = frag(b"abc", false);
    let mut r = &data[..];
    assert!(matches!(
        read_record(&mut r, 100).await,
        Err(RecordError::UnexpectedEof)
    ));
    // Clean EOF.
    let mut r: &[u8] = &[];
    assert!(read_record(&mut r, 100).await.unwrap().is_none());
}

#[tokio::test]
async fn writer_round_trips_through_a_pipe() {
    let (mut a, mut b) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        write_record(&mut a, b"hello record").await.unwrap();
        write_record_parts(&mut a, &[b"head-", b"", b"payload", &[0, 0, 0]])
            .await
            .unwrap();
        write_record(&mut a, b"").await.unwrap();
        a.shutdown().await.unwrap();
    });
    assert_eq!(
        read_record(&mut b, 1024).await.unwrap().unwrap(),
        b"hello record"
    );
    assert_eq!(
        read_record(&mut b, 1024).await.unwrap().unwrap(),
        b"head-payload\0\0\0"
    );
    assert_eq!(read_record(&mut b, 1024).await.unwrap().unwrap(), b"");
    assert!(read_record(&mut b, 1024).await.unwrap().is_none());
    writer.await.unwrap();
}

#[tokio::test]
async fn frame_record_matches_writer() {
    let mut out = Vec::new();
    write_record(&mut out, b"xyz").await.unwrap();
    assert_eq!(out, frame_record(b"xyz"));
    assert_eq!(out, [0x80, 0, 0, 3, b'x', b'y', b'z']);
}
