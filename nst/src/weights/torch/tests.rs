//! Tests of the legacy and zip checkpoint readers.

use super::*;
use crate::weights::testutil::{legacy_file, zip_checkpoint, Entry, PickleWriter};

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn entries() -> Vec<Entry> {
    vec![
        Entry::new(
            "a.weight",
            DType::F32,
            &[2, 3],
            f32_bytes(&[1., 2., 3., 4., 5., 6.]),
        ),
        Entry::new("a.q", DType::U8, &[4], vec![9, 8, 7, 6]),
    ]
}

#[test]
fn legacy_round_trip() {
    let bytes = legacy_file(&entries());
    let m = read_legacy(&bytes, &|_| true).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m["a.weight"].shape, vec![2, 3]);
    assert_eq!(m["a.weight"].data, f32_bytes(&[1., 2., 3., 4., 5., 6.]));
    assert_eq!(m["a.q"].data, vec![9, 8, 7, 6]);
    let only = read_legacy(&bytes, &|n| n == "a.q").unwrap();
    assert_eq!(only.keys().collect::<Vec<_>>(), ["a.q"]);
}

#[test]
fn zip_round_trip_and_strided_views() {
    let bytes = zip_checkpoint(&entries(), "archive");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let m = read_zip(&mut z, &|_| true).unwrap();
    assert_eq!(m["a.weight"].data, f32_bytes(&[1., 2., 3., 4., 5., 6.]));

    // A transposed view (stride 1, 3) of a 6-element storage, offset 0 → 3×2.
    let t = TensorRef {
        storage: crate::weights::pickle::StorageRef {
            key: "0".into(),
            dtype: DType::F32,
            numel: 6,
        },
        offset: 0,
        shape: vec![3, 2],
        stride: vec![1, 3],
    };
    let r = materialise("t", &t, &f32_bytes(&[1., 2., 3., 4., 5., 6.])).unwrap();
    assert_eq!(r.data, f32_bytes(&[1., 4., 2., 5., 3., 6.]));
}

#[test]
fn views_past_the_storage_are_errors() {
    let storage = f32_bytes(&[0.; 6]);
    let mk = |offset, shape: Vec<usize>, stride| TensorRef {
        storage: crate::weights::pickle::StorageRef {
            key: "0".into(),
            dtype: DType::F32,
            numel: 6,
        },
        offset,
        shape,
        stride,
    };
    for (t, needle) in [
        (mk(1, vec![2, 3], vec![3, 1]), "reach element 6"),
        (mk(0, vec![7], vec![1]), "only 6"),
        (mk(0, vec![3], vec![usize::MAX]), "overflow"),
        (mk(0, vec![2], vec![usize::MAX]), "past the storage"),
        (mk(0, vec![1 << 20, 1 << 20], vec![0, 0]), "only 6"),
        (mk(0, vec![usize::MAX, 3], vec![0, 0]), "overflows"),
    ] {
        let e = materialise("w", &t, &storage).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
        assert!(e.to_string().contains("`w`"), "{e}");
    }
}

#[test]
fn legacy_truncated_at_every_region() {
    let bytes = legacy_file(&entries());
    for cut in [
        0,
        5,
        14,
        15,
        20,
        136,
        bytes.len() / 2,
        bytes.len() - 30,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        let e = read_legacy(&bytes[..cut], &|_| true).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Truncated { .. } | Error::Pickle { .. } | Error::Checkpoint(_)
            ),
            "cut {cut}: {e}"
        );
    }
}

#[test]
fn legacy_storage_size_past_the_end() {
    let mut bytes = legacy_file(&entries());
    // The last storage is "1" (u8 × 4): its count sits 12 bytes from the end. Claim 2^40.
    let at = bytes.len() - 12;
    assert_eq!(bytes[at..at + 8], 4u64.to_le_bytes());
    bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = read_legacy(&bytes, &|_| true).unwrap_err();
    assert!(
        e.to_string().contains("holds 1099511627776 elements"),
        "{e}"
    );
    // The pickle and the stream agree on a huge count: the data runs past the end.
    let huge =
        vec![Entry::new("x", DType::F32, &[2], f32_bytes(&[1., 2.])).with_numel(u64::MAX / 2)];
    let bytes = legacy_file(&huge);
    let e = read_legacy(&bytes, &|_| true).unwrap_err();
    assert!(e.to_string().contains("overflow"), "{e}");
    let huge = vec![Entry::new("x", DType::F32, &[2], f32_bytes(&[1., 2.])).with_numel(1 << 50)];
    let e = read_legacy(&legacy_file(&huge), &|_| true).unwrap_err();
    assert!(
        matches!(e, Error::Truncated { needed, .. } if needed == 4 << 50),
        "{e}"
    );
}

#[test]
fn legacy_wrong_magic_and_endianness() {
    let mut bytes = legacy_file(&entries());
    bytes[4] ^= 1;
    let e = read_legacy(&bytes, &|_| true).unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");
    let mut w = PickleWriter::new();
    w.bytes.extend_from_slice(&LEGACY_PREFIX);
    w.proto().int(1001).stop();
    w.proto()
        .op(b'}')
        .unicode("little_endian")
        .op(0x89)
        .op(b's')
        .stop();
    let e = read_legacy(&w.bytes, &|_| true).unwrap_err();
    assert!(e.to_string().contains("big-endian"), "{e}");
}

#[test]
fn zip_hostile_variants() {
    // Storage entry shorter than declared.
    let mut es = entries();
    es[0] = es[0].clone().with_numel(60);
    let bytes = zip_checkpoint(&es, "archive");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let e = read_zip(&mut z, &|_| true).unwrap_err();
    assert!(e.to_string().contains("declares 240"), "{e}");
    // Missing data.pkl.
    let bytes = crate::weights::testutil::zip_of(&[("archive/data/0", b"abcd".to_vec(), false)]);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert!(read_zip(&mut z, &|_| true)
        .unwrap_err()
        .to_string()
        .contains("no data.pkl"));
    // Compressed storage.
    let pkl = crate::weights::testutil::state_dict_pickle(&entries()[1..], false);
    let bytes = crate::weights::testutil::zip_of(&[
        ("archive/data.pkl", pkl, false),
        ("archive/data/0", vec![1, 2, 3, 4], true),
    ]);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let e = read_zip(&mut z, &|_| true).unwrap_err();
    assert!(e.to_string().contains("compressed"), "{e}");
    // Big-endian byteorder.
    let pkl = crate::weights::testutil::state_dict_pickle(&entries()[1..], false);
    let bytes = crate::weights::testutil::zip_of(&[
        ("archive/data.pkl", pkl, false),
        ("archive/byteorder", b"big".to_vec(), false),
        ("archive/data/0", vec![1, 2, 3, 4], false),
    ]);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert!(read_zip(&mut z, &|_| true)
        .unwrap_err()
        .to_string()
        .contains("byteorder"));
}

#[test]
fn nested_state_dict_is_found() {
    let inner = crate::weights::testutil::state_dict_pickle(&entries(), true);
    // {"epoch": 3, "state_dict": <inner>} — splice the inner dict (minus its STOP) in.
    let mut w = PickleWriter::new();
    w.proto()
        .op(b'}')
        .mark()
        .unicode("epoch")
        .int(3)
        .unicode("state_dict");
    w.raw(&inner[2..inner.len() - 1]).op(b'u').stop();
    let p = Pickle::parse(&w.bytes, 0).unwrap();
    let refs = tensor_refs(&p).unwrap();
    let names: Vec<_> = refs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.q", "a.weight"]);
}
