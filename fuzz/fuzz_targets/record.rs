//! The record parser (`Record::parse`): whatever bytes arrive on stdin or in `--record FILE`,
//! it answers Ok or an error, never a panic; and a record it accepts, written back out, is
//! accepted again with the same steps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ugw_shared::record::Record;
use ugw_shared::scrub::Scrubber;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = Record::parse(data) else {
        return;
    };
    // Every step is read (the earlier ones lazily, from the record's own text).
    let steps = record.steps.iter().count();
    assert_eq!(steps, record.steps.len());
    let written = record.to_json(false, &Scrubber::default());
    let again = Record::parse(written.as_bytes())
        .unwrap_or_else(|e| panic!("a record written by to_json is refused: {e}\n{written}"));
    assert_eq!(record.steps.len(), again.steps.len());
    assert_eq!(record.run, again.run);
    assert_eq!(record.ok, again.ok);
});
