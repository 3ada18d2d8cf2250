//! Unit tests of the container module: detection, names, limits.

use super::*;

#[test]
fn detect_by_magic_first_then_extension() {
    let cases: [(&str, &[u8], Packaging); 10] = [
        ("AAPL.txt", b"2005", Packaging::Plain),
        ("AAPL.txt", &[0x1f, 0x8b, 8, 0], Packaging::Gzip),
        ("AAPL.zip", &[0x1f, 0x8b, 8, 0], Packaging::Gzip),
        ("x.csv", &[0x28, 0xb5, 0x2f, 0xfd], Packaging::Zstd),
        ("x", b"PK\x03\x04", Packaging::Zip),
        ("x", b"PK\x05\x06", Packaging::Zip),
        ("AAPL.txt.GZ", b"", Packaging::Gzip),
        ("x.csv.zstd", b"20", Packaging::Zstd),
        ("A.ZIP", b"PK", Packaging::Zip),
        (".gz", b"", Packaging::Plain),
    ];
    for (name, first, want) in cases {
        assert_eq!(Packaging::detect(OsStr::new(name), first), want, "{name}");
    }
}

#[test]
fn inner_names_drop_the_directory_and_the_compression_suffix() {
    let cases = [
        (
            "AAPL_full_1min_adjsplit.txt.gz",
            "AAPL_full_1min_adjsplit.txt",
        ),
        ("dir/MSFT.txt.ZST", "MSFT.txt"),
        ("2024-01-02.csv.zstd", "2024-01-02.csv"),
        ("MSFT.txt", "MSFT.txt"),
        ("inner.zip", "inner.zip"),
    ];
    for (name, want) in cases {
        assert_eq!(inner_name(name.as_bytes()), OsString::from(want), "{name}");
    }
}

#[test]
fn flat_member_names_are_one_component_and_distinct() {
    let zip = OsStr::new("A.zip");
    let a = flat_member_name(zip, b"dir/AAPL.txt");
    let b = flat_member_name(zip, b"dir%2FAAPL.txt");
    assert_eq!(a, OsString::from("A.zip!dir%2FAAPL.txt"));
    assert_eq!(b, OsString::from("A.zip!dir%252FAAPL.txt"));
    assert_eq!(
        member_name(zip, b"dir/AAPL.txt"),
        OsString::from("A.zip!dir/AAPL.txt")
    );
}

#[test]
fn decoded_limit_takes_the_ratio_the_floor_or_the_absolute_limit() {
    let limits = Limits::default();
    assert_eq!(limits.decoded_limit(1000), (64 << 20, LimitRule::Floor));
    assert_eq!(
        limits.decoded_limit(1 << 20),
        (250 << 20, LimitRule::Ratio(250))
    );
    assert_eq!(
        limits.decoded_limit(1 << 30),
        (16 << 30, LimitRule::Absolute)
    );
    assert_eq!(
        limits.decoded_limit(u64::MAX),
        (16 << 30, LimitRule::Absolute)
    );
}
