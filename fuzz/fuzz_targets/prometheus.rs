//! The Prometheus text-format reader and the selectors read over it (ugw-drain's and
//! ugw-verify's metrics checks). The first line of the input is a selector, the rest the
//! exposition; whatever either holds, the answers are values or errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ugw_shared::prometheus::{Exposition, Selector};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (selector, exposition) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(exposition) = Exposition::parse(exposition) else {
        return;
    };
    let Ok(selector) = Selector::parse(selector) else {
        return;
    };
    for sample in exposition.select(&selector) {
        let _ = sample.series();
    }
    let _ = exposition.try_sum(&selector);
    if let Ok(Some(histogram)) = exposition.try_histogram(&selector) {
        let _ = histogram.count();
        let _ = histogram.since(&histogram);
        for q in [0.0, 0.5, 0.99, 1.0] {
            if let Some(v) = histogram.quantile(q) {
                assert!(!v.is_nan(), "quantile {q} is NaN");
            }
        }
    }
});
