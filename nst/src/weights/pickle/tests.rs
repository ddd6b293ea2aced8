//! Tests of the safe pickle reader.

use super::*;
use crate::weights::testutil::PickleWriter;

#[test]
fn parses_dict_of_ints_strings_and_memo() {
    let mut w = PickleWriter::new();
    w.proto();
    w.op(b'}').binput(0).mark();
    w.unicode("a")
        .int(5)
        .unicode("b")
        .long1(&[0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
    w.unicode("c").binget(0); // the dict itself: a cycle, harmless in the arena
    w.op(b'u').stop();
    let p = Pickle::parse(&w.bytes, 0).unwrap();
    let Value::Dict(pairs) = p.get(p.root) else {
        panic!()
    };
    assert_eq!(pairs.len(), 3);
    assert_eq!(p.get(pairs[0].1), &Value::Int(5));
    assert_eq!(p.get(pairs[1].1), &Value::Int(0x1950a86a20f9469cfc6c));
    assert_eq!(pairs[2].1, p.root);
    assert_eq!(p.end, w.bytes.len());
}

#[test]
fn negative_long_and_binint() {
    let mut w = PickleWriter::new();
    w.proto()
        .mark()
        .long1(&[0xff])
        .op(b'J')
        .raw(&(-7i32).to_le_bytes())
        .op(b't')
        .stop();
    let p = Pickle::parse(&w.bytes, 0).unwrap();
    let Value::Tuple(t) = p.get(p.root) else {
        panic!()
    };
    assert_eq!(p.get(t[0]), &Value::Int(-1));
    assert_eq!(p.get(t[1]), &Value::Int(-7));
}

#[test]
fn forbidden_globals_are_named() {
    for (m, n) in [
        ("os", "system"),
        ("builtins", "eval"),
        ("torch", "load"),
        ("posix", "system"),
    ] {
        let mut w = PickleWriter::new();
        w.proto()
            .global(m, n)
            .unicode("echo pwned")
            .op(0x85)
            .op(b'R')
            .stop();
        let e = Pickle::parse(&w.bytes, 0).unwrap_err();
        assert!(
            matches!(&e, Error::PickleGlobal { module, name, offset: 2 } if module == m && name == n),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("{m}.{n}")), "{e}");
    }
    // STACK_GLOBAL goes through the same whitelist.
    let mut w = PickleWriter::new();
    w.proto()
        .unicode("builtins")
        .unicode("eval")
        .op(0x93)
        .stop();
    let e = Pickle::parse(&w.bytes, 0).unwrap_err();
    assert!(e.to_string().contains("builtins.eval"), "{e}");
}

#[test]
fn unknown_opcodes_are_named() {
    // INST ('i'), OBJ ('o'), NEWOBJ (0x81), EXT1 (0x82), PERSID ('P'), a non-opcode (0xff)
    for op in [b'i', b'o', 0x81, 0x82, b'P', 0xff, b'S'] {
        let bytes = [0x80, 2, op, b'.'];
        let e = Pickle::parse(&bytes, 0).unwrap_err();
        assert!(
            matches!(e, Error::PickleOpcode { opcode, offset: 2 } if opcode == op),
            "{op:#x}: {e}"
        );
        assert!(e.to_string().contains(&format!("0x{op:02x}")), "{e}");
    }
}

#[test]
fn lengths_past_the_end_are_truncation_errors_without_allocating() {
    // BINUNICODE declaring 4 GiB in an 11-byte input.
    let bytes = [
        0x80, 2, b'X', 0xff, 0xff, 0xff, 0xff, b'a', b'b', b'c', b'.',
    ];
    let e = Pickle::parse(&bytes, 0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Truncated {
                needed: 0xffff_ffff,
                available: 4,
                ..
            }
        ),
        "{e}"
    );
    let bytes = [
        0x80, 2, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, b'.',
    ];
    assert!(matches!(
        Pickle::parse(&bytes, 0),
        Err(Error::Truncated { .. })
    ));
    let bytes = [0x80, 2, 0x8b, 0, 0, 0, 0x80, b'.'];
    assert!(matches!(
        Pickle::parse(&bytes, 0),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn truncated_everywhere_is_an_error() {
    let w = crate::weights::testutil::tiny_state_dict_pickle();
    Pickle::parse(&w, 0).unwrap();
    for cut in 0..w.len() {
        assert!(Pickle::parse(&w[..cut], 0).is_err(), "cut at {cut}");
    }
}

#[test]
fn stack_and_memo_misuse() {
    for (bytes, needle) in [
        (&[0x80, 2, b'.'][..], "empty stack"),
        (&[0x80, 2, b'h', 3, b'.'][..], "memo entry 3"),
        (&[0x80, 2, b't', b'.'][..], "no MARK"),
        (&[0x80, 2, b'N', b'a', b'.'][..], "empty stack"),
        (
            &[0x80, 2, b']', b'N', b'N', b's', b'.'][..],
            "SETITEM(S) on a list",
        ),
        (&[0x80, 2, b'N', b')', b'R', b'.'][..], "REDUCE on a None"),
        (&[0x80, 9, b'.'][..], "protocol 9"),
    ] {
        let e = Pickle::parse(bytes, 0).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

#[test]
fn stack_depth_is_bounded() {
    let mut bytes = vec![0x80, 2];
    bytes.extend(std::iter::repeat_n(b'N', MAX_STACK + 1));
    bytes.push(b'.');
    let e = Pickle::parse(&bytes, 0).unwrap_err();
    assert!(e.to_string().contains("stack deeper"), "{e}");
}

#[test]
fn deep_nesting_drops_without_recursion() {
    // 200k nested 1-tuples: the arena is flat, so nothing recurses.
    let mut bytes = vec![0x80, 2, b')'];
    bytes.extend(std::iter::repeat_n(0x85, 200_000));
    bytes.push(b'.');
    let p = Pickle::parse(&bytes, 0).unwrap();
    assert_eq!(p.len(), 200_001);
}

#[test]
fn rebuild_tensor_and_parameter() {
    let mut w = PickleWriter::new();
    w.proto();
    w.global("torch._utils", "_rebuild_parameter");
    w.tensor_v2("FloatStorage", "0", 24, 4, &[2, 3], &[3, 1]);
    w.op(0x89).op(b'}').op(0x87).op(b'R').stop();
    let p = Pickle::parse(&w.bytes, 0).unwrap();
    let Value::Tensor(t) = p.get(p.root) else {
        panic!("{:?}", p.get(p.root))
    };
    assert_eq!(
        t.storage,
        StorageRef {
            key: "0".into(),
            dtype: DType::F32,
            numel: 24
        }
    );
    assert_eq!(
        (t.offset, t.shape.clone(), t.stride.clone()),
        (4, vec![2, 3], vec![3, 1])
    );
}

#[test]
fn bad_tensor_arguments() {
    // negative offset
    let mut w = PickleWriter::new();
    w.proto()
        .global("torch._utils", "_rebuild_tensor_v2")
        .mark();
    w.storage_pid("FloatStorage", "0", 4)
        .op(b'J')
        .raw(&(-1i32).to_le_bytes());
    w.int_tuple(&[2])
        .int_tuple(&[1])
        .op(0x89)
        .op(b'}')
        .op(b't')
        .op(b'R')
        .stop();
    let e = Pickle::parse(&w.bytes, 0).unwrap_err();
    assert!(
        e.to_string().contains("tensor offset: -1 out of range"),
        "{e}"
    );
    // unknown persistent id type
    let mut w = PickleWriter::new();
    w.proto().mark().unicode("module").op(b't').op(b'Q').stop();
    let e = Pickle::parse(&w.bytes, 0).unwrap_err();
    assert!(e.to_string().contains("\"module\""), "{e}");
    // storage view
    let mut w = PickleWriter::new();
    w.proto()
        .mark()
        .unicode("storage")
        .global("torch", "FloatStorage")
        .unicode("1");
    w.unicode("cpu")
        .int(4)
        .int_tuple(&[0, 1])
        .op(b't')
        .op(b'Q')
        .stop();
    let e = Pickle::parse(&w.bytes, 0).unwrap_err();
    assert!(e.to_string().contains("view"), "{e}");
}
