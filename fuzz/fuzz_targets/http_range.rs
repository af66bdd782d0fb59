//! The origin's `Range` header parser (`weir_origin::parse_range`), which byte-range parts
//! are fetched through, on arbitrary header values. Besides not panicking, an accepted range
//! resolves, against any length, to a span inside the object whose first byte is the one
//! asked for (or, for a suffix, whose length is the one asked for, at most the object's).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_origin::{parse_range, RangeSpec};

fuzz_target!(|data: (&str, u32)| {
    let (value, total) = data;
    let total = u64::from(total);
    let Some(spec) = parse_range(value) else {
        return;
    };
    // Printed back, the range parses to itself.
    let printed = match spec {
        RangeSpec::From(a) => format!("bytes={a}-"),
        RangeSpec::Closed(a, b) => format!("bytes={a}-{b}"),
        RangeSpec::Suffix(n) => format!("bytes=-{n}"),
    };
    assert_eq!(parse_range(&printed), Some(spec), "{value:?}");
    let Some((first, last)) = spec.resolve(total) else {
        return;
    };
    assert!(
        first <= last && last < total,
        "{value:?} over {total}: {first}-{last}"
    );
    match spec {
        RangeSpec::From(a) => assert!(first == a && last == total - 1),
        RangeSpec::Closed(a, b) => assert!(first == a && last == b.min(total - 1)),
        RangeSpec::Suffix(n) => assert!(last - first + 1 == n.min(total) && last == total - 1),
    }
});
