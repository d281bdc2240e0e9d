//! One parser per line format. Each takes one line and answers `None` when the line is not in
//! its format (a timestamp that is not a real date included), never a guess.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{Format, JsonFields};

/// What a parser read from one line.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) time: Option<Timestamp>,
    pub(crate) level: Option<&'static str>,
    pub(crate) source: Option<String>,
    pub(crate) component: Option<String>,
    pub(crate) message: String,
    pub(crate) fields: Map<String, Value>,
}

/// Parses `line` as `format` (`Plain` takes any line).
pub(crate) fn parse(format: Format, line: &str, ctx: &Context<'_>) -> Option<Parsed> {
    match format {
        Format::Ros2 => ros2(line),
        Format::Journald => journald(line),
        Format::JsonLines => json_line(line, ctx.json),
        Format::Syslog5424 => syslog5424(line),
        Format::Syslog3164 => syslog3164(line, ctx.year),
        Format::Iso8601 => iso_line(line),
        Format::Plain => Some(Parsed { message: line.trim_end().to_string(), ..Parsed::default() }),
    }
}

/// What parsers need beyond the line.
pub(crate) struct Context<'a> {
    pub(crate) json: &'a JsonFields,
    /// The year of RFC 3164 timestamps (they carry none).
    pub(crate) year: i16,
}

/// A level word as AkiDB stores it: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`.
pub(crate) fn level(word: &str) -> Option<&'static str> {
    let w = word.trim_matches(|c| c == '[' || c == ']' || c == ':');
    Some(match w.to_ascii_uppercase().as_str() {
        "TRACE" | "TRC" => "TRACE",
        "DEBUG" | "DBG" => "DEBUG",
        "INFO" | "INF" | "NOTICE" => "INFO",
        "WARN" | "WARNING" | "WRN" => "WARN",
        "ERROR" | "ERR" => "ERROR",
        "FATAL" | "CRITICAL" | "CRIT" | "ALERT" | "EMERG" | "PANIC" => "FATAL",
        _ => return None,
    })
}

/// Syslog severity (0 emergency .. 7 debug) as a level.
fn severity(s: u8) -> &'static str {
    match s {
        0..=2 => "FATAL",
        3 => "ERROR",
        4 => "WARN",
        5 | 6 => "INFO",
        _ => "DEBUG",
    }
}

/// `[LEVEL] [secs.nanos] [logger]: message`, ROS 2's default console format; a logger
/// `robot_3.controller_server` names the robot (namespace) and the node.
fn ros2(line: &str) -> Option<Parsed> {
    let rest = line.trim_end().strip_prefix('[')?;
    let (lvl, rest) = rest.split_once("] [")?;
    let (ts, rest) = rest.split_once("] [")?;
    let (logger, message) = rest.split_once("]: ")?;
    let level = level(lvl.trim())?;
    let time = unix_seconds(ts)?;
    let (source, component) = match logger.split_once('.') {
        Some((r, n)) => (Some(r.to_string()), n.to_string()),
        None => (None, logger.to_string()),
    };
    Some(Parsed {
        time: Some(time),
        level: Some(level),
        source,
        component: Some(component),
        message: message.to_string(),
        fields: Map::new(),
    })
}

/// `secs[.fraction]` since the epoch.
fn unix_seconds(s: &str) -> Option<Timestamp> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i32 = format!("{frac:0<9}").parse().ok()?;
    Timestamp::new(secs.parse().ok()?, nanos).ok()
}

/// A number of seconds, milliseconds, microseconds or nanoseconds since the epoch, told apart by
/// magnitude (as log shippers do): below 10^11 seconds, below 10^14 milliseconds, below 10^17
/// microseconds, else nanoseconds.
fn epoch_number(n: &serde_json::Number) -> Option<Timestamp> {
    if let Some(i) = n.as_i64() {
        let a = i.unsigned_abs();
        return if a < 100_000_000_000 {
            Timestamp::from_second(i).ok()
        } else if a < 100_000_000_000_000 {
            Timestamp::from_millisecond(i).ok()
        } else if a < 100_000_000_000_000_000 {
            Timestamp::from_microsecond(i).ok()
        } else {
            Timestamp::from_nanosecond(i.into()).ok()
        };
    }
    let f = n.as_f64()?;
    if !f.is_finite() || f.abs() >= 1e11 {
        return None;
    }
    let secs = f.floor();
    Timestamp::new(secs as i64, ((f - secs) * 1e9).round().min(999_999_999.0) as i32).ok()
}

/// An RFC 3339 / ISO 8601 time: with an offset, or without (taken as UTC); `T` or a space
/// between date and time, `.` or `,` before a fraction. The calendar is checked.
pub(crate) fn iso_time(s: &str) -> Option<Timestamp> {
    let s = s.replacen(' ', "T", 1).replace(',', ".");
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let dt: DateTime = s.parse().ok()?;
    dt.to_zoned_datetime(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// The length of the ISO 8601 date-time at the start of `s` (`2026-03-01T21:20:00.5Z`,
/// `2025-06-24 14:36:25`, `2026-03-01T23:20:00+02:00`), if one is there.
fn iso_prefix(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    // `YYYY-MM-DD?HH:MM`, `?` being `T` or a space: a pattern of digits and separators.
    const SHAPE: &[u8; 16] = b"0000-00-00T00:00";
    let fits = SHAPE.iter().enumerate().all(|(i, want)| match (want, b.get(i)) {
        (b'0', Some(c)) => c.is_ascii_digit(),
        (b'T', Some(c)) => matches!(c, b'T' | b' '),
        (want, Some(c)) => want == c,
        (_, None) => false,
    });
    if !fits {
        return None;
    }
    let mut i = 16;
    while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], b':' | b'.' | b',')) {
        i += 1;
    }
    if i < b.len() && b[i] == b'Z' {
        i += 1;
    } else if i < b.len() && matches!(b[i], b'+' | b'-') {
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b':') && j - i <= 5 {
            j += 1;
        }
        if j - i >= 3 {
            i = j;
        }
    }
    Some(i)
}

/// `TIME [HOST] [LEVEL] [COMPONENT:] message`: a line that starts with an ISO 8601 time. A
/// level word among the next three tokens marks the layout: one token before it is the host;
/// a token after it that ends with `:` is the component. Without a level word, a first token
/// ending with `:` is the component and the rest the message.
fn iso_line(line: &str) -> Option<Parsed> {
    let line = line.trim_end();
    let end = iso_prefix(line)?;
    let time = iso_time(&line[..end])?;
    let rest = line[end..].trim_start();
    let tokens: Vec<&str> = rest.splitn(5, ' ').collect();
    let mut p = Parsed { time: Some(time), ..Parsed::default() };
    let at = tokens.iter().take(3).position(|t| level(t).is_some());
    let mut next = 0;
    match at {
        Some(0) => {
            p.level = level(tokens[0]);
            next = 1;
        }
        Some(1) if !tokens[0].ends_with(':') => {
            p.source = Some(tokens[0].trim_matches(|c| c == '[' || c == ']').to_string());
            p.level = level(tokens[1]);
            next = 2;
        }
        _ => {}
    }
    if let Some(c) = tokens.get(next).filter(|t| t.len() > 1 && t.ends_with(':')) {
        p.component = Some(c.trim_end_matches(':').to_string());
        next += 1;
    }
    // The message: the rest of the line after the tokens taken.
    let taken: usize = tokens[..next].iter().map(|t| t.len() + 1).sum();
    p.message = rest.get(taken.min(rest.len())..).unwrap_or("").trim_start().to_string();
    Some(p)
}

/// `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: message` (RFC 3164; the `<PRI>` is absent in files
/// written by syslog daemons). The year is the context's.
fn syslog3164(line: &str, year: i16) -> Option<Parsed> {
    let line = line.trim_end();
    let (pri, rest) = pri(line).map_or((None, line), |(p, r)| (Some(p), r));
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| rest.starts_with(m))? as i8 + 1;
    let rest = rest.get(3..)?.strip_prefix(' ')?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (day, rest) = rest.split_once(' ')?;
    let (clock, rest) = rest.split_once(' ')?;
    let day: i8 = day.parse().ok()?;
    let mut hms = clock.split(':').map(|x| x.parse::<i8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let date = Date::new(year, month, day).ok()?;
    let time =
        date.to_datetime(Time::new(h, m, s, 0).ok()?).to_zoned_datetime(TimeZone::UTC).ok()?;
    let (host, rest) = rest.split_once(' ')?;
    let (component, fields, message) = match rest.split_once(": ") {
        Some((tag, msg)) if !tag.contains(' ') => {
            let (name, pid) = match tag.split_once('[') {
                Some((n, p)) => (n, p.strip_suffix(']')),
                None => (tag, None),
            };
            let mut fields = Map::new();
            if let Some(pid) = pid {
                fields.insert("pid".into(), Value::String(pid.into()));
            }
            (Some(name.to_string()), fields, msg)
        }
        _ => (None, Map::new(), rest),
    };
    Some(Parsed {
        time: Some(time.timestamp()),
        level: pri.map(|p| severity(p % 8)),
        source: Some(host.to_string()),
        component,
        message: message.to_string(),
        fields,
    })
}

/// `<PRI>` at the start of a line: the priority (facility * 8 + severity) and the rest.
fn pri(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let (p, rest) = rest.split_once('>')?;
    if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let p: u8 = p.parse().ok().filter(|p| *p <= 191)?;
    Some((p, rest))
}

/// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD-ID k="v" ...] message` (RFC 5424; `-` is
/// nil). Structured data becomes fields named `SD-ID.k`.
fn syslog5424(line: &str) -> Option<Parsed> {
    let (pri, rest) = pri(line.trim_end())?;
    let rest = rest.strip_prefix("1 ")?;
    let mut parts = rest.splitn(6, ' ');
    let (ts, host, app, procid, msgid) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next().unwrap_or("");
    let time = match ts {
        "-" => None,
        t => Some(t.parse::<Timestamp>().ok()?),
    };
    let nil = |s: &str| (s != "-").then(|| s.to_string());
    let mut fields = Map::new();
    if let Some(p) = nil(procid) {
        fields.insert("pid".into(), Value::String(p));
    }
    if let Some(m) = nil(msgid) {
        fields.insert("msgid".into(), Value::String(m));
    }
    let message = if let Some(after) = rest.strip_prefix('-') {
        after
    } else if rest.starts_with('[') {
        structured_data(rest, &mut fields)?
    } else {
        return None;
    };
    let message = message.strip_prefix(' ').unwrap_or(message);
    Some(Parsed {
        time,
        level: Some(severity(pri % 8)),
        source: nil(host),
        component: nil(app),
        message: message.strip_prefix('\u{feff}').unwrap_or(message).to_string(),
        fields,
    })
}

/// Reads RFC 5424 structured data (`[id k="v"][id2 ...]`) into `fields`; returns what follows.
fn structured_data<'a>(mut s: &'a str, fields: &mut Map<String, Value>) -> Option<&'a str> {
    while let Some(rest) = s.strip_prefix('[') {
        let end = rest.find([' ', ']'])?;
        let id = &rest[..end];
        let mut r = &rest[end..];
        loop {
            r = r.trim_start_matches(' ');
            if let Some(after) = r.strip_prefix(']') {
                s = after;
                break;
            }
            let (name, after) = r.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next()? {
                    (_, '\\') => value.push(chars.next()?.1),
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            fields.insert(format!("{id}.{name}"), Value::String(value));
            r = &after[close + 1..];
        }
    }
    Some(s)
}

/// One entry of `journalctl -o json`: `__REALTIME_TIMESTAMP` (microseconds), `MESSAGE` (text or
/// an array of bytes), `PRIORITY`, `_HOSTNAME`, `SYSLOG_IDENTIFIER` (or `_COMM`, `_SYSTEMD_UNIT`).
fn journald(line: &str) -> Option<Parsed> {
    let v: Map<String, Value> = serde_json::from_str(line).ok()?;
    let us: i64 = v.get("__REALTIME_TIMESTAMP")?.as_str()?.parse().ok()?;
    let message = match v.get("MESSAGE")? {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => {
            let b: Vec<u8> = bytes
                .iter()
                .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
                .collect::<Option<_>>()?;
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => return None,
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut fields = Map::new();
    for k in ["_SYSTEMD_UNIT", "_PID", "CODE_FILE", "CODE_LINE"] {
        if let Some(x) = v.get(k).filter(|x| x.is_string()) {
            fields.insert(k.trim_start_matches('_').to_ascii_lowercase(), x.clone());
        }
    }
    Some(Parsed {
        time: Some(Timestamp::from_microsecond(us).ok()?),
        level: text("PRIORITY").and_then(|p| p.parse().ok()).map(severity),
        source: text("_HOSTNAME"),
        component: text("SYSLOG_IDENTIFIER")
            .or_else(|| text("_COMM"))
            .or_else(|| text("_SYSTEMD_UNIT")),
        message,
        fields,
    })
}

/// One JSON object per line, its fields found by the names in `names`; the other scalar
/// fields are kept as fields.
fn json_line(line: &str, names: &JsonFields) -> Option<Parsed> {
    let mut v: Map<String, Value> = serde_json::from_str(line).ok()?;
    let mut take = |keys: &[String]| keys.iter().find_map(|k| v.remove(k));
    let message = match take(&names.message)? {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let time = match take(&names.time) {
        None => None,
        Some(Value::Number(n)) => Some(epoch_number(&n)?),
        Some(Value::String(s)) => Some(iso_time(&s).or_else(|| unix_seconds(&s))?),
        Some(_) => return None,
    };
    let word = |x: Option<Value>| match x {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let level = match take(&names.level) {
        Some(Value::Number(n)) => n.as_u64().filter(|s| *s <= 7).map(|s| severity(s as u8)),
        x => word(x).and_then(|w| level(&w)),
    };
    let source = word(take(&names.source));
    let component = word(take(&names.component));
    let fields = v.into_iter().filter(|(_, x)| !x.is_object() && !x.is_array()).collect();
    Some(Parsed { time, level, source, component, message, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        static NAMES: std::sync::LazyLock<JsonFields> =
            std::sync::LazyLock::new(JsonFields::default);
        Context { json: &NAMES, year: 2026 }
    }

    fn p(format: Format, line: &str) -> Option<Parsed> {
        parse(format, line, &ctx())
    }

    fn ts(s: &str) -> Option<Timestamp> {
        Some(s.parse().expect("timestamp"))
    }

    #[test]
    fn ros2_console_lines() {
        let r = p(
            Format::Ros2,
            "[ERROR] [1795161243.512000000] [robot_3.controller_server]: Safety stop (NAV_E042)",
        )
        .expect("ros2");
        assert_eq!(r.level, Some("ERROR"));
        assert_eq!(r.time, ts("2026-11-20T07:54:03.512Z"));
        assert_eq!(
            (r.source.as_deref(), r.component.as_deref()),
            (Some("robot_3"), Some("controller_server"))
        );
        assert_eq!(r.message, "Safety stop (NAV_E042)");
        let r =
            p(Format::Ros2, "[WARN] [1795161243.5] [bt_navigator]: Goal aborted").expect("ros2");
        assert_eq!((r.source, r.component.as_deref()), (None, Some("bt_navigator")));
        assert!(p(Format::Ros2, "[NOPE] [1795161243.5] [x]: y").is_none());
        assert!(p(Format::Ros2, "[INFO] [17951x] [x]: y").is_none());
    }

    #[test]
    fn iso_lines_with_host_level_component() {
        let r =
            p(Format::Iso8601, "2026-03-01T21:20:00Z amr-05 INFO /wms_bridge: Task 132 accepted")
                .expect("iso");
        assert_eq!(r.time, ts("2026-03-01T21:20:00Z"));
        assert_eq!(r.source.as_deref(), Some("amr-05"));
        assert_eq!(r.level, Some("INFO"));
        assert_eq!(r.component.as_deref(), Some("/wms_bridge"));
        assert_eq!(r.message, "Task 132 accepted");
        // Offsets, fractions with a comma, a space before the time, no host, bracketed levels.
        let r = p(Format::Iso8601, "2026-03-01 23:20:00,250+02:00 [WARNING] planner: late")
            .expect("iso");
        assert_eq!(r.time, ts("2026-03-01T21:20:00.25Z"));
        assert_eq!(
            (r.level, r.source, r.component.as_deref()),
            (Some("WARN"), None, Some("planner"))
        );
        // dpkg.log: no level word, so the rest is the message.
        let r = p(Format::Iso8601, "2025-06-24 14:36:25 status installed libc-bin:amd64 2.36-9")
            .expect("iso");
        assert_eq!((r.level, r.source.as_deref()), (None, None));
        assert_eq!(r.message, "status installed libc-bin:amd64 2.36-9");
        // Impossible dates are refused.
        assert!(p(Format::Iso8601, "2026-02-30T10:00:00Z amr-1 INFO x: y").is_none());
        assert!(p(Format::Iso8601, "2026-13-01T10:00:00Z amr-1 INFO x: y").is_none());
        assert!(p(Format::Iso8601, "Task 132 accepted").is_none());
    }

    #[test]
    fn syslog_rfc3164_and_rfc5424() {
        let r = p(Format::Syslog3164, "Dec  2 19:54:01 amr-07 sshd[1234]: Accepted publickey")
            .expect("3164");
        assert_eq!(r.time, ts("2026-12-02T19:54:01Z"));
        assert_eq!((r.source.as_deref(), r.component.as_deref()), (Some("amr-07"), Some("sshd")));
        assert_eq!(r.fields.get("pid"), Some(&Value::String("1234".into())));
        assert_eq!((r.level, r.message.as_str()), (None, "Accepted publickey"));
        let r = p(Format::Syslog3164, "<34>Oct 11 22:14:15 mymachine su: 'su root' failed")
            .expect("3164");
        assert_eq!((r.level, r.component.as_deref()), (Some("FATAL"), Some("su")));
        assert!(p(Format::Syslog3164, "Feb 30 10:00:00 h x: y").is_none());
        let line = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
                    [exampleSDID@32473 iut=\"3\" eventSource=\"Appli\\\"cation\"] \
                    \u{feff}An application event";
        let r = p(Format::Syslog5424, line).expect("5424");
        assert_eq!(r.time, ts("2003-10-11T22:14:15.003Z"));
        assert_eq!((r.level, r.source.as_deref()), (Some("INFO"), Some("mymachine.example.com")));
        assert_eq!(r.component.as_deref(), Some("evntslog"));
        assert_eq!(
            r.fields.get("exampleSDID@32473.eventSource"),
            Some(&Value::String("Appli\"cation".into()))
        );
        assert_eq!(r.fields.get("msgid"), Some(&Value::String("ID47".into())));
        assert_eq!(r.message, "An application event");
        let r = p(Format::Syslog5424, "<13>1 - - - - - - no time").expect("nil");
        assert_eq!((r.time, r.level, r.message.as_str()), (None, Some("INFO"), "no time"));
        assert!(p(Format::Syslog5424, "<13>1 2026-02-30T00:00:00Z h a - - - x").is_none());
    }

    #[test]
    fn journald_and_json_lines() {
        let line = concat!(
            r#"{"__REALTIME_TIMESTAMP":"1795161243512345","PRIORITY":"3","_HOSTNAME":"amr-02","#,
            r#""SYSLOG_IDENTIFIER":"lidar","MESSAGE":[104,105,255],"_PID":"77"}"#
        );
        let r = p(Format::Journald, line).expect("journald");
        assert_eq!(r.time, ts("2026-11-20T07:54:03.512345Z"));
        assert_eq!(
            (r.level, r.source.as_deref(), r.component.as_deref()),
            (Some("ERROR"), Some("amr-02"), Some("lidar"))
        );
        assert_eq!(r.message, "hi\u{fffd}");
        assert_eq!(r.fields.get("pid"), Some(&Value::String("77".into())));
        let line = concat!(
            r#"{"ts": 1795161243512, "level": "warning", "robot": "r1", "logger": "nav", "#,
            r#""msg": "slow", "tote": 4411, "tags": [1]}"#
        );
        let r = p(Format::JsonLines, line).expect("json");
        assert_eq!(r.time, ts("2026-11-20T07:54:03.512Z"));
        assert_eq!(
            (r.level, r.source.as_deref(), r.component.as_deref()),
            (Some("WARN"), Some("r1"), Some("nav"))
        );
        assert_eq!(r.fields.get("tote"), Some(&Value::from(4411)));
        assert!(!r.fields.contains_key("tags"));
        let r = p(
            Format::JsonLines,
            r#"{"@timestamp": "2026-11-20T08:54:03+01:00", "message": "x", "severity": 4}"#,
        )
        .expect("json");
        assert_eq!((r.time, r.level), (ts("2026-11-20T07:54:03Z"), Some("WARN")));
        assert!(p(Format::JsonLines, r#"{"msg": "x", "ts": "2026-02-30T00:00:00Z"}"#).is_none());
        assert!(p(Format::JsonLines, r#"{"no_message": 1}"#).is_none());
        assert!(p(Format::JsonLines, "[1, 2]").is_none());
    }
}
