//! The reader over whole inputs: detection, records never skipped, multi-line records,
//! hostile input.

use super::*;

fn read(text: &str) -> (Vec<LogRecord>, FileSummary) {
    read_all(text.as_bytes(), "t.log", ReadOptions::default().with_year(2026)).expect("read")
}

/// The fleet log of the issue: ISO 8601 time, host, level, component.
const ISO_FLEET: &str = "\
2026-03-01T21:20:00Z amr-05 INFO /wms_bridge: Task 132 accepted
2026-03-01T21:20:01.250Z amr-05 WARN /nav2: Path blocked near aisle 7, replanning
2026-03-01T21:20:03Z amr-02 ERROR /lidar_driver: Scan timeout (SAF_E101)
  retrying in 500 ms
2026-03-01T21:20:04Z amr-02 INFO /lidar_driver: Scan rate back to 15 Hz
";

#[test]
fn iso_fleet_log_is_read_whole() {
    let (records, summary) = read(ISO_FLEET);
    assert_eq!(summary.detected, Some(Format::Iso8601));
    assert_eq!(records.len(), 4);
    let r = &records[2];
    assert_eq!((r.source.as_deref(), r.level, r.line), (Some("amr-02"), Some("ERROR"), 3));
    assert_eq!(r.message, "Scan timeout (SAF_E101)\n  retrying in 500 ms");
    assert_eq!(r.joined, 1);
    assert_eq!(r.id(), "t.log:3");
    let m = r.metadata();
    assert_eq!(m["robot"], "amr-02");
    assert_eq!(m["node"], "/lidar_driver");
    assert_eq!(m["ts"], 1_772_400_003.0);
    assert_eq!(m["time"], "2026-03-01T21:20:03Z");
    assert_eq!(m["format"], "iso8601");
    assert_eq!(r.text(), "lidar driver: Scan timeout (SAF_E101)\n  retrying in 500 ms");
    assert_eq!(summary.lines, 5);
    assert_eq!(summary.joined, 1);
    assert_eq!(summary.total(), 4);
}

#[test]
fn no_line_is_skipped_and_stack_traces_join_their_first_line() {
    let text = "\
[ERROR] [1795161243.512000000] [robot_3.planner]: Planner crashed
Traceback (most recent call last):
  File \"planner.py\", line 3, in <module>
ValueError: bad goal
something no format reads

[INFO] [1795161244.000000000] [robot_3.planner]: Restarted
";
    let (records, summary) = read(text);
    assert_eq!(summary.detected, Some(Format::Ros2));
    let lines: Vec<(u64, Format)> = records.iter().map(|r| (r.line, r.format)).collect();
    assert_eq!(
        lines,
        vec![(1, Format::Ros2), (4, Format::Plain), (5, Format::Plain), (7, Format::Ros2)]
    );
    assert_eq!(records[0].joined, 2);
    assert!(records[0].message.ends_with("line 3, in <module>"));
    assert_eq!(records[1].message, "ValueError: bad goal");
    assert_eq!(records[2].metadata()["line"], 5);
    assert_eq!(summary.records.get(&Format::Plain), Some(&2));
    // Every non-empty line is in a record: 7 lines, 1 empty, 2 joined, 4 records.
    assert_eq!((summary.lines, summary.blank, summary.joined, summary.total()), (7, 1, 2, 4));
}

#[test]
fn each_format_is_detected_from_its_lines() {
    let cases = [
        (
            "[WARN] [1795161243.5] [robot_1.nav]: slow\n[INFO] [1795161244.5] [robot_1.nav]: ok\n",
            Format::Ros2,
        ),
        (
            "{\"ts\": 1795161243, \"msg\": \"a\"}\n{\"ts\": 1795161244, \"msg\": \"b\"}\n",
            Format::JsonLines,
        ),
        ("{\"__REALTIME_TIMESTAMP\":\"1795161243512345\",\"MESSAGE\":\"a\"}\n", Format::Journald),
        ("<13>1 2026-03-01T21:20:00Z h app - - - hello\n", Format::Syslog5424),
        (
            "Mar  1 21:20:00 amr-01 kernel: usb 1-1: new\nMar  1 21:20:01 amr-01 cron[9]: ok\n",
            Format::Syslog3164,
        ),
        (
            "2025-06-24 14:36:25 startup archives unpack\n2025-06-24 14:36:25 status installed\n",
            Format::Iso8601,
        ),
        ("just words\nmore words\n", Format::Plain),
    ];
    for (text, want) in cases {
        let (records, summary) = read(text);
        assert_eq!(summary.detected, Some(want), "{text}");
        assert!(records.iter().all(|r| r.format == want), "{text}");
        assert_eq!(summary.total() as usize, text.lines().count(), "{text}");
    }
}

#[test]
fn a_mixed_file_reads_each_line_in_the_format_that_fits() {
    let text = "\
2026-03-01T21:20:00Z amr-05 INFO /wms_bridge: Task 132 accepted
{\"ts\": \"2026-03-01T21:20:01Z\", \"msg\": \"json line\", \"robot\": \"amr-06\"}
[ERROR] [1772400002.0] [amr-07.arm]: Grip failed
2026-03-01T21:20:03Z amr-05 INFO /wms_bridge: Task 133 accepted
";
    let (records, _) = read(text);
    let formats: Vec<Format> = records.iter().map(|r| r.format).collect();
    assert_eq!(formats, vec![Format::Iso8601, Format::JsonLines, Format::Ros2, Format::Iso8601]);
    assert_eq!(records[1].source.as_deref(), Some("amr-06"));
    assert_eq!(records[2].time, Some("2026-03-01T21:20:02Z".parse().expect("t")));
}

#[test]
fn hostile_input_is_refused_or_repaired_never_held_whole() {
    // NUL bytes at the start: not a text log.
    let bin = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0 binary".repeat(8);
    let e = read_all(&bin[..], "a.out", ReadOptions::default()).expect_err("binary");
    assert!(matches!(e, LogError::NotText { .. }), "{e}");
    // Mostly invalid UTF-8: not text either.
    let noise: Vec<u8> = (0..4096u32).map(|i| (i * 131 % 256) as u8 | 0x80).collect();
    assert!(matches!(
        read_all(&noise[..], "n", ReadOptions::default()),
        Err(LogError::NotText { .. })
    ));
    // A very long line is cut at MAX_LINE; the line after it is read as usual.
    let mut text = String::from("2026-03-01T21:20:00Z amr-05 INFO /a: ");
    text.push_str(&"x".repeat(3 * MAX_LINE));
    text.push_str("\n2026-03-01T21:20:01Z amr-05 INFO /a: next\n");
    let (records, summary) = read(&text);
    assert_eq!(records.len(), 2);
    assert!(records[0].truncated && records[0].message.len() < MAX_LINE);
    assert_eq!(records[0].metadata()["truncated"], true);
    assert_eq!((records[1].message.as_str(), records[1].line), ("next", 2));
    assert_eq!(summary.truncated, 1);
    // Invalid UTF-8 and a NUL inside a line (after the first 8 KiB): repaired and counted.
    let mut bytes = "2026-03-01T21:20:00Z h INFO /a: ok\n".repeat(300).into_bytes();
    bytes.extend_from_slice(b"2026-03-01T21:20:01Z h INFO /a: caf\xe9 \0end\n");
    let (records, summary) = read_all(&bytes[..], "r", ReadOptions::default()).expect("read");
    assert_eq!(records.last().map(|r| r.message.as_str()), Some("caf\u{fffd} end"));
    assert_eq!(summary.repaired, 1);
    // Joined lines stop growing a record at MAX_RECORD.
    let mut text = String::from("2026-03-01T21:20:00Z h ERROR /a: trace\n");
    for _ in 0..(2 * MAX_RECORD / 1000) {
        text.push_str(&format!("  {}\n", "y".repeat(1000)));
    }
    let (records, summary) = read(&text);
    assert_eq!(records.len(), 1);
    assert!(records[0].message.len() <= MAX_RECORD && records[0].truncated);
    assert_eq!(summary.joined as usize, 2 * MAX_RECORD / 1000);
}

#[test]
fn a_one_gigabyte_line_streams_in_bounded_memory() {
    // A reader that produces 1 GiB of one line without holding it: the record keeps MAX_LINE.
    struct Endless(u64);
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Ok(0);
            }
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(b'a');
            self.0 -= n as u64;
            if self.0 == 0 {
                buf[n - 1] = b'\n';
            }
            Ok(n)
        }
    }
    let (records, summary) =
        read_all(Endless(1 << 30), "big", ReadOptions::default()).expect("read");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message.len(), MAX_LINE);
    assert_eq!(summary.truncated, 1);
}

#[test]
fn files_are_named_in_errors_and_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleet.log");
    std::fs::write(&path, ISO_FLEET).expect("write");
    let mut r = LogReader::open(&path, ReadOptions::default()).expect("open");
    let first = r.next().expect("record").expect("ok");
    assert_eq!(first.file, path.display().to_string());
    assert_eq!(r.by_ref().count(), 3);
    assert_eq!(r.summary().total(), 4);
    let e = LogReader::open(dir.path().join("missing.log"), ReadOptions::default()).err();
    assert!(matches!(e, Some(LogError::Io { .. })));
    assert!(e.is_some_and(|e| e.to_string().contains("missing.log")));
}
