//! The Prometheus text parser against the cases the reference parsers (Prometheus 3's
//! textparse, prometheus/common's expfmt, `client_python`) accept and refuse, with our own data;
//! selectors, histogram quantiles and counter deltas.

use super::*;

const SCRAPE: &str = r#"# HELP http_requests_total Requests answered.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/work"} 90
http_requests_total{code="500",path="/work"} 7
http_requests_total{code="503",path="/health/ready"} 3 1700000000000
http_requests_in_flight 2
odd{msg="a \"quoted\" } brace\\ and\nline"} 1.5e3
# TYPE lat histogram
lat_bucket{path="/work",le="0.1"} 10
lat_bucket{path="/work",le="0.5"} 30
lat_bucket{path="/work",le="+Inf"} 40
lat_bucket{path="/x",le="0.1"} 5
lat_bucket{path="/x",le="0.5"} 5
lat_bucket{path="/x",le="+Inf"} 5
lat_sum{path="/work"} 9
lat_count{path="/work"} 40
"#;

fn sum(selector: &str) -> Option<f64> {
    Exposition::parse(SCRAPE)
        .unwrap()
        .sum(&Selector::parse(selector).unwrap())
}

#[test]
fn sums_over_label_sets_and_matchers() {
    assert_eq!(sum("http_requests_total"), Some(100.0));
    assert_eq!(sum(r#"http_requests_total{code=~"5.."}"#), Some(10.0));
    assert_eq!(sum(r#"http_requests_total{code!="200"}"#), Some(10.0));
    assert_eq!(
        sum(r#"http_requests_total{code!~"5..",path="/work"}"#),
        Some(90.0)
    );
    // Anchored: "5" alone matches no code.
    assert_eq!(sum(r#"http_requests_total{code=~"5"}"#), None);
    assert_eq!(sum("http_requests_in_flight"), Some(2.0));
    // A label the series lacks is empty.
    assert_eq!(sum(r#"http_requests_in_flight{pod=""}"#), Some(2.0));
    assert_eq!(sum("no_such_metric"), None);
}

#[test]
fn label_values_keep_their_escapes_and_braces() {
    let scrape = Exposition::parse(SCRAPE).unwrap();
    let odd = scrape.samples.iter().find(|s| s.name == "odd").unwrap();
    assert_eq!(odd.labels["msg"], "a \"quoted\" } brace\\ and\nline");
    assert!((odd.value - 1500.0).abs() < f64::EPSILON);
}

#[test]
fn malformed_lines_name_their_line_number() {
    for (text, line) in [
        ("ok 1\nbroken\n", 2),
        ("x{a=\"1\" 2\n", 1),
        ("x 1 2 3\n", 1),
        ("x{a=1} 2\n", 1),
        ("x{a!=\"1\"} 2\n", 1),
        ("\n\nx one\n", 3),
    ] {
        let error = Exposition::parse(text).unwrap_err();
        assert_eq!(error.line, line, "{text:?}: {error}");
    }
    assert!(Exposition::parse("x +Inf\ny NaN\nz -1e-3 12\n").is_ok());
}

#[test]
fn selectors_reject_what_they_cannot_mean() {
    for bad in ["", "9lives", "x{", "x{a}", "x{a=b}", "x{a=~\"(\"}", "x y"] {
        assert!(Selector::parse(bad).is_err(), "{bad:?}");
    }
    let s = Selector::parse(r#" x{a="1", b=~"2|3" } "#).unwrap();
    assert_eq!(s.to_string(), r#"x{a="1",b=~"2|3"}"#);
}

#[test]
fn histograms_sum_their_series_and_give_quantiles() {
    let scrape = Exposition::parse(SCRAPE).unwrap();
    let all = scrape.histogram(&Selector::parse("lat").unwrap()).unwrap();
    assert_eq!(
        all.buckets,
        vec![(0.1, 15.0), (0.5, 35.0), (f64::INFINITY, 45.0)]
    );
    let work = scrape
        .histogram(&Selector::parse(r#"lat{path="/work"}"#).unwrap())
        .unwrap();
    // Rank 20 of 40 lies halfway through the (0.1, 0.5] bucket's 20 observations.
    assert!((work.quantile(0.5).unwrap() - 0.3).abs() < 1e-9);
    // Rank 5 in the first bucket interpolates from 0.
    assert!((work.quantile(0.125).unwrap() - 0.05).abs() < 1e-9);
    // In +Inf: the highest finite bound.
    assert!((work.quantile(0.99).unwrap() - 0.5).abs() < 1e-9);
    assert!(
        scrape
            .histogram(&Selector::parse("nothing").unwrap())
            .is_none()
    );
}

#[test]
fn a_window_is_the_difference_of_two_scrapes_and_survives_a_restart() {
    let before = Histogram {
        buckets: vec![(0.1, 100.0), (1.0, 100.0), (f64::INFINITY, 100.0)],
    };
    let after = Histogram {
        buckets: vec![(0.1, 100.0), (1.0, 110.0), (f64::INFINITY, 110.0)],
    };
    let window = after.since(&before);
    assert!((window.count() - 10.0).abs() < f64::EPSILON);
    // Every new observation is slow: the window says so though the totals are mostly fast.
    assert!(window.quantile(0.5).unwrap() > 0.1);
    assert!(after.quantile(0.5).unwrap() <= 0.1);
    // A restarted process: its counts start again below the old ones.
    let restarted = Histogram {
        buckets: vec![(0.1, 3.0), (1.0, 4.0), (f64::INFINITY, 4.0)],
    };
    assert_eq!(restarted.since(&before), restarted);
    assert_eq!(Histogram { buckets: vec![] }.quantile(0.5), None);
}

#[test]
fn counter_deltas_are_never_negative() {
    assert!((counter_delta(10.0, 15.0) - 5.0).abs() < f64::EPSILON);
    assert!((counter_delta(10.0, 4.0) - 4.0).abs() < f64::EPSILON);
}

fn parsed(text: &str) -> Exposition {
    Exposition::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn sum_of(text: &str, selector: &str) -> Option<f64> {
    parsed(text).sum(&Selector::parse(selector).unwrap())
}

fn refused(text: &str) -> ParseError {
    match Exposition::parse(text) {
        Ok(e) => panic!("{text:?} was read as {:?}", e.samples),
        Err(e) => e,
    }
}

#[test]
fn a_series_listed_twice_is_refused_never_added() {
    let error = refused("# TYPE b gauge\nb{x=\"1\"} 5\nb{x=\"2\"} 1\nb{x=\"1\"} 7\n");
    assert_eq!(error.line, 4, "{error}");
    assert!(error.message.contains(r#"b{x="1"}"#), "{error}");
    assert!(error.message.contains("line 2"), "{error}");
    // The same label set written in another order, or with an empty label (which is no label),
    // or with a bucket bound spelt another way, is the same series.
    for (text, line) in [
        ("c{x=\"1\",y=\"2\"} 1\nc{y=\"2\",x=\"1\"} 1\n", 2),
        ("c 1\nc{} 2\n", 2),
        ("c{x=\"\"} 1\n\nc 2\n", 3),
        ("h_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\n", 2),
        ("h_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"Inf\"} 1\n", 2),
        ("{\"c\"} 1\nc 2\n", 2),
    ] {
        assert_eq!(refused(text).line, line, "{text:?}");
    }
    // Distinct series of one name are summed, as before.
    assert_eq!(
        sum_of(
            "b{x=\"1\"} 5\nb{x=\"2\"} 7\nb{x=\"1\",y=\"3\"} 1\nb 1\n",
            "b"
        ),
        Some(14.0)
    );
}

#[test]
fn a_label_named_twice_in_one_sample_is_refused() {
    for text in [
        "a{x=\"1\",x=\"2\"} 1\n",
        "a{x=\"1\",\"x\"=\"1\"} 1\n",
        "a{__name__=\"b\"} 1\n",
    ] {
        let error = refused(text);
        assert_eq!(error.line, 1, "{text:?}: {error}");
    }
    assert!(
        refused("ok 1\na{x=\"1\",x=\"2\"} 1\n")
            .message
            .contains("\"x\"")
    );
}

#[test]
fn a_backslash_before_any_other_character_is_kept() {
    let scrape = parsed(concat!(
        r#"a{p="\foo",q="C:\dir\\x",r="\\n",s="\"\n\t"} 1"#,
        "\n"
    ));
    let labels = &scrape.samples[0].labels;
    assert_eq!(labels["p"], r"\foo");
    assert_eq!(labels["q"], r"C:\dir\x");
    assert_eq!(labels["r"], r"\n");
    assert_eq!(labels["s"], "\"\n\\t");
    // A selector reads its values the same way, so it finds the series it was written from.
    // (A regex spells a backslash `\\`, in the quotes `\\\\`.)
    let selector = Selector::parse(r#"a{p="\foo",q=~"C:\\\\dir.*"}"#).unwrap();
    assert!(selector.matches(&scrape.samples[0]));
}

#[test]
fn openmetrics_exemplars_timestamps_and_eof_are_read() {
    let text = "# HELP a_total Requests, with a trace of one.\n\
                # TYPE a counter\n\
                # UNIT a requests\n\
                a_total 1 # {trace_id=\"4bf92f35\"} 1.0\n\
                a_total{x=\"y\"} 2 1700000000.123 # {trace_id=\"00f0\",span=\"1\"} 0.5 1700000000.001\n\
                a_total{x=\"z\"} 4 # {} 7\n\
                a_created 1700000000.5\n\
                m 1 1700000000.123\n\
                m{l=\"v\"} 2 -1.5e3\n\
                # EOF\n";
    assert_eq!(sum_of(text, "a_total"), Some(7.0));
    assert_eq!(sum_of(text, "m"), Some(3.0));
    // What follows `# EOF` is not of the scrape, however it looks.
    let after = "a 1\n# EOF\na 2\nthis is { not text\n";
    assert_eq!(sum_of(after, "a"), Some(1.0));
    assert_eq!(sum_of("a 1\n# EOF", "a"), Some(1.0));
    assert_eq!(sum_of("a 1\r\n# EOF\r\na 5\r\n", "a"), Some(1.0));
}

#[test]
fn malformed_exemplars_and_timestamps_are_refused() {
    for text in [
        "a 1 # a comment\n",
        "a 1 #\n",
        "a 1 # {trace_id=\"x\"}\n",
        "a 1 # {trace_id=\"x\"} one\n",
        "a 1 # {trace_id=\"x\" 1\n",
        "a 1 # {trace_id=x} 1\n",
        "a 1 # {trace_id=\"x\"} 1 2 3\n",
        "a 1 # {\"x\"} 1\n",
        "a 1 2 # {trace_id=\"x\"} 1 NaN\n",
        "a 1 NaN\n",
        "a 1 +Inf\n",
        "a 1 12ms\n",
        "a 1 2 3\n",
    ] {
        assert_eq!(refused(text).line, 1, "{text:?}");
    }
}

#[test]
fn quoted_utf8_metric_and_label_names_are_read() {
    let text = concat!(
        "# HELP \"my.metric\" A dotted name.\n",
        "# TYPE \"my.metric\" gauge\n",
        "{\"my.metric\"} 1\n",
        "{\"my.metric\",l=\"v\"} 2\n",
        "{l=\"w\", \"my.metric\"} 4\n",
        "x{\"a.b\"=\"c\",\"région\"=\"été\"} 8\n",
        "{\"y\",\"with \\\"quotes\\\"\"=\"q\"} 16\n",
    );
    let scrape = parsed(text);
    assert_eq!(scrape.samples[1].name, "my.metric");
    assert_eq!(scrape.samples[1].labels["l"], "v");
    assert_eq!(scrape.samples[3].labels["a.b"], "c");
    assert_eq!(scrape.samples[3].labels["région"], "été");
    assert_eq!(scrape.samples[4].name, "y");
    assert_eq!(scrape.samples[4].labels["with \"quotes\""], "q");
    let sum = |s: &str| scrape.sum(&Selector::parse(s).unwrap());
    assert_eq!(sum(r#"{"my.metric"}"#), Some(7.0));
    assert_eq!(sum(r#"{"my.metric",l=~"v|w"}"#), Some(6.0));
    assert_eq!(sum(r#"{l="w","my.metric"}"#), Some(4.0));
    assert_eq!(sum(r#"x{"a.b"="c"}"#), Some(8.0));
    // A selector of a dotted name is shown as one that reads back the same.
    let shown = Selector::parse(r#"{"my.metric", "a.b"!="c"}"#)
        .unwrap()
        .to_string();
    assert_eq!(shown, r#"{"my.metric","a.b"!="c"}"#);
    assert_eq!(Selector::parse(&shown).unwrap().to_string(), shown);
    for bad in [
        "{l=\"v\"} 1\n",
        "{\"a\",\"b\"} 1\n",
        "a{\"b\"} 1\n",
        "{\"\"} 1\n",
        "a{\"\"=\"v\"} 1\n",
        "{\"a} 1\n",
        "my.metric 1\n",
        "x-1 1\n",
    ] {
        assert_eq!(refused(bad).line, 1, "{bad:?}");
    }
}

#[test]
fn blanks_around_the_label_set_are_allowed() {
    let text = "name {l=\"v\"} 1\nname{ l = \"w\" , } 2\nname\t{l=\"x\"}\t4\nname{l=\"y\"}8\n";
    assert_eq!(sum_of(text, "name"), Some(15.0));
    assert_eq!(sum_of(text, r#"name{l="w"}"#), Some(2.0));
    for bad in [
        "name{,l=\"v\"} 1\n",
        "name{l=\"v\",,} 1\n",
        "name{l=\"v\"}} 1\n",
        "name{l=\"v\"} {x=\"y\"} 1\n",
    ] {
        assert_eq!(refused(bad).line, 1, "{bad:?}");
    }
}

#[test]
fn comments_blank_lines_and_crlf_line_ends_are_read() {
    let text = "# HELP a Any text at all: {\"x\"} \\ \\n é.\r\n\
                \r\n\
                # TYPE a gauge\r\n\
                # UNIT a seconds\r\n\
                #no space after the hash\r\n\
                # a comment # with hashes\r\n\
                \t\r\n\
                a{b=\"c\"} 1\r\n\
                a 2\r";
    let scrape = parsed(text);
    assert_eq!(scrape.samples.len(), 2);
    assert_eq!(scrape.samples[0].labels["b"], "c");
    assert_eq!(scrape.sum(&Selector::parse("a").unwrap()), Some(3.0));
}

#[test]
fn values_are_read_as_prometheus_reads_them() {
    for (text, want) in [
        ("1", 1.0),
        ("-2.5", -2.5),
        ("+3", 3.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("-1.5E-3", -0.0015),
        ("2e+2", 200.0),
        ("+Inf", f64::INFINITY),
        ("Inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
    ] {
        let line = format!("v {text}\n");
        let value = parsed(&line).samples[0].value;
        assert!(value.total_cmp(&want).is_eq(), "{text}: {value}");
    }
    assert!(parsed("v NaN\n").samples[0].value.is_nan());
    for bad in [
        "0x10", "0x1p3", "1_000", "one", "--1", "1e", "1e400", "-1e400", "+NaN", "-NaN", "1,5", "",
    ] {
        let line = format!("v {bad}\n");
        assert_eq!(refused(&line).line, 1, "{bad:?}");
    }
}

#[test]
fn a_histogram_holding_a_nan_gives_no_quantile() {
    let nan_bucket = "h_bucket{le=\"0.1\"} NaN\nh_bucket{le=\"1\"} 8\nh_bucket{le=\"+Inf\"} 10\n";
    let nan_total = "h_bucket{le=\"0.1\"} 2\nh_bucket{le=\"1\"} 8\nh_bucket{le=\"+Inf\"} NaN\n";
    let inf_total = "h_bucket{le=\"0.1\"} 2\nh_bucket{le=\"1\"} 8\nh_bucket{le=\"+Inf\"} +Inf\n";
    let nan_bound = "h_bucket{le=\"0.1\"} 2\nh_bucket{le=\"NaN\"} 8\nh_bucket{le=\"+Inf\"} 10\n";
    let selector = Selector::parse("h").unwrap();
    for text in [nan_bucket, nan_total, inf_total, nan_bound] {
        let histogram = parsed(text).histogram(&selector);
        assert_eq!(histogram, None, "{text:?}");
    }
    // Built by hand, or left by a window: no answer rather than a number that passes.
    for buckets in [
        vec![(0.1, f64::NAN), (1.0, 8.0), (f64::INFINITY, 10.0)],
        vec![(0.1, 2.0), (1.0, 8.0), (f64::INFINITY, f64::NAN)],
        vec![
            (0.1, 2.0),
            (1.0, f64::INFINITY),
            (f64::INFINITY, f64::INFINITY),
        ],
        vec![(f64::NAN, 2.0), (f64::INFINITY, 10.0)],
        // Without the +Inf bucket the count is not known (Prometheus answers NaN).
        vec![(0.1, 2.0), (1.0, 8.0)],
    ] {
        let h = Histogram { buckets };
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(h.quantile(q), None, "{:?} q{q}", h.buckets);
        }
    }
    let earlier = Histogram {
        buckets: vec![(0.1, 1.0), (1.0, f64::NAN), (f64::INFINITY, 5.0)],
    };
    let later = Histogram {
        buckets: vec![(0.1, 2.0), (1.0, 8.0), (f64::INFINITY, 10.0)],
    };
    assert_eq!(later.since(&earlier).quantile(0.9), None);
    assert_eq!(earlier.since(&later).quantile(0.9), None);
    assert!(later.quantile(f64::NAN).is_none());
}

#[test]
fn a_sum_over_a_nan_or_infinite_sample_is_not_finite() {
    for text in [
        "a{x=\"1\"} 1\na{x=\"2\"} NaN\n",
        "a{x=\"1\"} +Inf\na{x=\"2\"} 1\n",
        "a{x=\"1\"} +Inf\na{x=\"2\"} -Inf\n",
        "a 1.5e308\na{x=\"1\"} 1.5e308\n",
    ] {
        let sum = sum_of(text, "a").unwrap();
        assert!(!sum.is_finite(), "{text:?}: {sum}");
    }
    assert_eq!(
        sum_of("a{x=\"1\"} 1\na{x=\"2\"} NaN\n", r#"a{x="1"}"#),
        Some(1.0)
    );
}

#[test]
fn try_sum_and_try_histogram_name_the_series_that_is_not_a_number() {
    let scrape = parsed(concat!(
        "g{pod=\"a\"} 1\n",
        "g{pod=\"b\"} NaN\n",
        "big 1e308\n",
        "big{x=\"1\"} 1e308\n",
        "h_bucket{path=\"/a\",le=\"1\"} 1\n",
        "h_bucket{path=\"/a\",le=\"+Inf\"} 2\n",
        "h_bucket{path=\"/b\",le=\"1\"} 1\n",
        "h_bucket{path=\"/c\",le=\"1\"} +Inf\n",
        "h_bucket{path=\"/c\",le=\"+Inf\"} +Inf\n",
        "{\"dotted.h_bucket\",le=\"+Inf\"} 3\n",
    ));
    let selector = |s: &str| Selector::parse(s).unwrap();
    let error = scrape.try_sum(&selector("g")).unwrap_err();
    assert_eq!(error.to_string(), r#"g{pod="b"} reads NaN"#);
    assert_eq!(scrape.try_sum(&selector(r#"g{pod="a"}"#)), Ok(Some(1.0)));
    assert_eq!(scrape.try_sum(&selector("absent")), Ok(None));
    let overflow = scrape.try_sum(&selector("big")).unwrap_err();
    assert_eq!(overflow.series, "big");
    let h = |s: &str| scrape.try_histogram(&selector(s));
    assert!((h(r#"h{path="/a"}"#).unwrap().unwrap().count() - 2.0).abs() < f64::EPSILON);
    let missing_inf = h(r#"h{path="/b"}"#).unwrap_err();
    assert!(missing_inf.why.contains("+Inf"), "{missing_inf}");
    // A series without its +Inf bucket spoils the sum of all of them.
    assert!(h("h").is_err());
    let nan_bound = parsed("n_bucket{le=\"NaN\"} 1\nn_bucket{le=\"+Inf\"} 1\n")
        .try_histogram(&selector("n"))
        .unwrap_err();
    assert_eq!(
        nan_bound.to_string(),
        r#"n_bucket{le="NaN"} has no number for its bound"#
    );
    assert_eq!(scrape.histogram(&selector("h")), None);
    let infinite = h(r#"h{path="/c"}"#).unwrap_err();
    assert_eq!(
        infinite.to_string(),
        r#"h_bucket{le="1",path="/c"} reads +Inf"#
    );
    assert_eq!(h("nothing"), Ok(None));
    assert!((h(r#"{"dotted.h"}"#).unwrap().unwrap().count() - 3.0).abs() < f64::EPSILON);
    let dotted = &scrape.samples[9];
    assert_eq!(dotted.series(), r#"{"dotted.h_bucket",le="+Inf"}"#);
}

#[test]
fn a_counter_delta_of_a_reading_that_is_not_a_number_is_not_one() {
    // A NaN before must not pass for a reset that makes all of `after` growth.
    assert!(counter_delta(f64::NAN, 5.0).is_nan());
    assert!(counter_delta(5.0, f64::NAN).is_nan());
    assert!(counter_delta(f64::INFINITY, 5.0).is_nan());
    assert!(counter_delta(1.0, f64::INFINITY).is_nan());
}
