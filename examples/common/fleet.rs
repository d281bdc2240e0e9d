//! A synthetic but realistic warehouse-fleet log corpus in ROS 2 console format, with a labelled
//! question set whose relevant lines are known by construction.
//!
//! Lines look like ROS 2's default console output, with the robot as the logger namespace:
//!
//! ```text
//! [ERROR] [1795161243.512000000] [robot_3.controller_server]: Safety stop: obstacle ... (NAV_E042)
//! ```
//!
//! Most lines are routine traffic (heartbeats, battery levels, scan rates, goals reached, ...),
//! some of it deliberately close in wording to the incidents. Incidents are scripted episodes
//! (a lidar fault that stops robot 3 at the loading dock, a battery overheating on robot 5, a
//! gripper failing picks, ...), each written as several differently worded lines over a few
//! minutes; each question names the incident lines that answer it. A few incidents are logged in
//! German or Japanese, as multilingual teams do.
//!
//! Used by `examples/robot_logs.rs`, the relevance test and the end-to-end benches.
#![allow(dead_code)]

use serde_json::{json, Value};

/// Start of the generated day: 2026-11-20T06:00:00Z.
pub const T0: i64 = 1_795_154_400;

/// One log event.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// Stable id (`evt-000123`).
    pub id: String,
    /// Unix time, seconds (fractional).
    pub ts: f64,
    /// `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`.
    pub level: String,
    /// `robot_3`, or `fleet` for fleet-wide services.
    pub robot: String,
    /// Node name (`controller_server`, `lidar_driver`, ...).
    pub node: String,
    /// Message text.
    pub message: String,
    /// Error code if any (`NAV_E042`).
    pub code: Option<String>,
}

impl LogEvent {
    /// The ROS 2 console line.
    pub fn line(&self) -> String {
        format!(
            "[{}] [{:.9}] [{}.{}]: {}",
            self.level, self.ts, self.robot, self.node, self.message
        )
    }

    /// What gets embedded: node and message (timestamps and levels carry no meaning to a model).
    pub fn text(&self) -> String {
        format!("{}: {}", self.node.replace('_', " "), self.message)
    }

    /// Metadata stored beside the text, used by filters.
    pub fn metadata(&self) -> Value {
        let mut m = json!({
            "robot": self.robot, "level": self.level, "node": self.node,
            "ts": self.ts, "time": iso8601(self.ts as i64),
        });
        if let Some(c) = &self.code {
            m["code"] = json!(c);
        }
        m
    }

    /// Parses a ROS 2 console line (`[LEVEL] [secs.nanos] [robot.node]: message`).
    pub fn parse_line(id: String, line: &str) -> Option<LogEvent> {
        let rest = line.trim_end().strip_prefix('[')?;
        let (level, rest) = rest.split_once("] [")?;
        let (ts, rest) = rest.split_once("] [")?;
        let (logger, message) = rest.split_once("]: ")?;
        let (robot, node) = match logger.split_once('.') {
            Some((r, n)) => (r.to_string(), n.to_string()),
            None => ("unknown".to_string(), logger.to_string()),
        };
        let code = message
            .rsplit_once('(')
            .and_then(|(_, c)| c.strip_suffix(')'))
            .filter(|c| {
                c.contains('_')
                    && c.chars()
                        .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
            })
            .map(str::to_string);
        Some(LogEvent {
            id,
            ts: ts.parse().ok()?,
            level: level.trim().to_string(),
            robot,
            node,
            message: message.to_string(),
            code,
        })
    }

    /// Parses one JSON object: `ts` (number or ISO 8601), `level`, `robot`, `node`, `msg` or
    /// `message`.
    pub fn parse_json(id: String, v: &Value) -> Option<LogEvent> {
        let ts = match &v["ts"] {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => parse_time(s).ok()? as f64,
            _ => return None,
        };
        let message = v.get("msg").or_else(|| v.get("message"))?.as_str()?.to_string();
        let s = |k: &str, d: &str| v.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
        Some(LogEvent {
            id: v.get("id").and_then(Value::as_str).map_or(id, str::to_string),
            ts,
            level: s("level", "INFO"),
            robot: s("robot", "unknown"),
            node: s("node", "unknown"),
            message,
            code: v.get("code").and_then(Value::as_str).map(str::to_string),
        })
    }
}

/// A question over the generated corpus with the ids of the lines that answer it.
#[derive(Debug, Clone)]
pub struct Question {
    /// The question as a person would type it.
    pub text: &'static str,
    /// Optional robot filter a person would add.
    pub robot: Option<&'static str>,
    /// Relevant event ids.
    pub relevant: Vec<String>,
}

/// SplitMix64: small, deterministic across platforms and crate versions.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const ROBOTS: usize = 8;
const PLACES: [&str; 8] = [
    "aisle 4",
    "aisle 7",
    "charging bay 2",
    "packing station B",
    "rack row 12",
    "cross-dock lane 3",
    "pallet buffer",
    "outbound gate 5",
];

/// Routine traffic: `{p}` place, `{o}` obstacle, `{n}` `{m}` `{t}` integers, `{f}` `{V}` `{a}`
/// `{s}` decimals.
const ROUTINE: &[(&str, &str, &str)] = &[
    ("INFO", "bt_navigator", "Goal reached at {p} after {n} s"),
    ("INFO", "bt_navigator", "Received new goal: navigate to {p}"),
    ("INFO", "controller_server", "Following path to {p}, {m} m remaining"),
    ("INFO", "planner_server", "Global plan computed to {p} in {n} ms ({m} poses)"),
    ("DEBUG", "controller_server", "Control loop running at {n} Hz"),
    ("INFO", "battery_monitor", "Battery at {n}%, voltage {V} V, discharging"),
    ("INFO", "battery_monitor", "Charging at charging bay 2: {n}% ({a} A)"),
    ("DEBUG", "battery_monitor", "Cell temperatures nominal: {t} C average, spread {f} C"),
    ("INFO", "lidar_driver", "Publishing /scan at {n} Hz, {m} points per sweep"),
    ("DEBUG", "lidar_driver", "Motor speed stable at {m} rpm"),
    ("INFO", "amcl", "Pose estimate updated, covariance {f}"),
    ("INFO", "arm_controller", "Pick completed: tote {m} from {p}"),
    ("INFO", "arm_controller", "Trajectory executed in {f} s, max joint error {f} rad"),
    ("DEBUG", "arm_controller", "Joint states published at {n} Hz"),
    ("INFO", "safety_monitor", "Safety field clear, speed limit {s} m/s"),
    ("INFO", "safety_monitor", "Entering slow zone near {p}, speed limited to 0.5 m/s"),
    ("INFO", "fleet_client", "Heartbeat sent to fleet manager (latency {n} ms)"),
    ("INFO", "fleet_client", "Task {m} assigned: move tote to {p}"),
    ("INFO", "wifi_manager", "Roamed to access point AP-{n}, signal {n} dBm"),
    ("DEBUG", "diagnostics", "CPU {n}%, memory {n}%, disk {n}%"),
    ("INFO", "docking_server", "Docked at charging bay 2 successfully"),
    ("INFO", "conveyor_interface", "Handed tote {m} to conveyor 2"),
    ("WARN", "controller_server", "Path blocked briefly near {p} by {o}, replanning ({n} s delay)"),
    ("WARN", "wifi_manager", "Signal weak ({n} dBm) near {p}"),
    ("WARN", "battery_monitor", "Battery at {n}%, scheduling charge after current task"),
];

/// An incident: a robot, a start offset into the day, the lines (level, node, message, code),
/// and the questions it answers.
struct Incident {
    robot: usize,
    at_s: i64,
    lines: &'static [(&'static str, &'static str, &'static str, Option<&'static str>)],
    questions: &'static [(&'static str, bool)],
}

const INCIDENTS: &[Incident] = &[
    Incident {
        robot: 3,
        at_s: 2 * 3600 + 840,
        lines: &[
            (
                "WARN",
                "lidar_driver",
                "Scan packets dropped: 18% loss on /scan while approaching the loading dock",
                Some("LID_W011"),
            ),
            (
                "ERROR",
                "lidar_driver",
                "Lidar timeout: no scan received for 1.2 s",
                Some("LID_E003"),
            ),
            (
                "ERROR",
                "safety_monitor",
                "Protective stop triggered at loading dock 1: safety scanner data stale",
                Some("SAF_E101"),
            ),
            (
                "ERROR",
                "controller_server",
                "Robot halted near the loading dock, waiting for the safety field to clear",
                Some("NAV_E042"),
            ),
            ("INFO", "lidar_driver", "Lidar restarted after timeout; scans resumed", None),
        ],
        questions: &[
            ("why did robot 3 stop near the loading dock?", true),
            ("lidar timeout caused a protective stop", false),
        ],
    },
    Incident {
        robot: 5,
        at_s: 3 * 3600 + 1500,
        lines: &[
            (
                "WARN",
                "battery_monitor",
                "Battery cell temperature rising fast: 58 C on cell 7",
                Some("BAT_W020"),
            ),
            (
                "ERROR",
                "battery_monitor",
                "Battery overheating: pack temperature 67 C exceeds limit of 60 C",
                Some("BAT_E021"),
            ),
            (
                "ERROR",
                "safety_monitor",
                "Thermal protection engaged, drive power cut until the battery cools down",
                Some("SAF_E130"),
            ),
            ("WARN", "fleet_client", "Robot removed from task pool: battery thermal fault", None),
        ],
        questions: &[
            ("battery overheating", false),
            ("which robot had a thermal problem with its battery?", false),
        ],
    },
    Incident {
        robot: 2,
        at_s: 4 * 3600 + 600,
        lines: &[
            (
                "WARN",
                "arm_controller",
                "Grasp failed on tote 4411: vacuum pressure too low",
                Some("ARM_W305"),
            ),
            (
                "WARN",
                "arm_controller",
                "Retrying pick, second attempt also lost suction",
                Some("ARM_W305"),
            ),
            (
                "ERROR",
                "arm_controller",
                "Pick aborted after 3 failed grasp attempts at packing station B",
                Some("ARM_E310"),
            ),
            (
                "ERROR",
                "gripper_driver",
                "Vacuum gripper seal leak suspected: pressure -12 kPa instead of -60 kPa",
                Some("GRP_E012"),
            ),
        ],
        questions: &[
            ("gripper could not pick up the tote", false),
            ("vacuum suction problems on the arm", true),
        ],
    },
    Incident {
        robot: 7,
        at_s: 5 * 3600 + 300,
        lines: &[
            ("WARN", "amcl", "Particle filter diverging: pose covariance 2.8 m", Some("LOC_W050")),
            (
                "ERROR",
                "amcl",
                "Localization lost: scan matching score 0.21 below threshold",
                Some("LOC_E051"),
            ),
            (
                "ERROR",
                "bt_navigator",
                "Navigation aborted because the robot does not know where it is",
                Some("NAV_E060"),
            ),
            ("INFO", "amcl", "Relocalised against map v12 after manual initial pose", None),
        ],
        questions: &[
            ("localization lost", false),
            ("robot 7 did not know its position on the map", true),
        ],
    },
    Incident {
        robot: 1,
        at_s: 6 * 3600 + 2100,
        lines: &[
            (
                "FATAL",
                "safety_monitor",
                "Emergency stop button pressed by operator at outbound gate 5",
                Some("SAF_F001"),
            ),
            (
                "ERROR",
                "controller_server",
                "All motion disabled: e-stop circuit open",
                Some("SAF_F001"),
            ),
            (
                "INFO",
                "safety_monitor",
                "Emergency stop released, awaiting reset confirmation",
                None,
            ),
        ],
        questions: &[
            ("someone hit the emergency stop", false),
            ("e-stop pressed at the outbound gate", false),
        ],
    },
    Incident {
        robot: 4,
        at_s: 7 * 3600 + 900,
        lines: &[
            (
                "WARN",
                "motor_driver",
                "Left wheel motor current 14.2 A above nominal 9 A",
                Some("MOT_W201"),
            ),
            (
                "ERROR",
                "motor_driver",
                "Overcurrent on left drive motor, driver tripped",
                Some("MOT_E202"),
            ),
            (
                "ERROR",
                "controller_server",
                "Drive fault: left wheel not responding to velocity commands",
                Some("MOT_E202"),
            ),
        ],
        questions: &[("left wheel motor overcurrent", false), ("drive motor fault", false)],
    },
    Incident {
        robot: 6,
        at_s: 8 * 3600 + 1200,
        lines: &[
            (
                "WARN",
                "wifi_manager",
                "Lost connection to access point, reconnecting",
                Some("NET_W400"),
            ),
            (
                "ERROR",
                "fleet_client",
                "Fleet manager unreachable for 45 s, holding position",
                Some("NET_E401"),
            ),
            (
                "ERROR",
                "fleet_client",
                "Task 9032 timed out: no acknowledgement from fleet manager",
                Some("NET_E402"),
            ),
            ("INFO", "wifi_manager", "Connection restored on AP-17", None),
        ],
        questions: &[
            ("robot lost its network connection", false),
            ("fleet manager unreachable", true),
        ],
    },
    Incident {
        robot: 8,
        at_s: 9 * 3600 + 2400,
        lines: &[
            (
                "WARN",
                "docking_server",
                "Docking attempt 1 failed: charging contacts not detected",
                Some("DCK_W500"),
            ),
            (
                "WARN",
                "docking_server",
                "Docking attempt 2 failed: misaligned by 4 cm",
                Some("DCK_W500"),
            ),
            (
                "ERROR",
                "docking_server",
                "Could not dock at charging bay 2 after 3 attempts; battery at 9%",
                Some("DCK_E501"),
            ),
        ],
        questions: &[
            ("robot failed to dock at the charger", false),
            ("charging contacts not detected", false),
        ],
    },
    Incident {
        robot: 3,
        at_s: 10 * 3600 + 500,
        lines: &[
            (
                "ERROR",
                "conveyor_interface",
                "Tote 5120 jammed during handover to conveyor 2",
                Some("CNV_E700"),
            ),
            (
                "WARN",
                "conveyor_interface",
                "Conveyor 2 belt stalled, handover paused",
                Some("CNV_W701"),
            ),
            ("INFO", "conveyor_interface", "Jam cleared by operator, handover resumed", None),
        ],
        questions: &[("tote stuck on the conveyor", false)],
    },
    Incident {
        robot: 5,
        at_s: 11 * 3600 + 100,
        lines: &[
            (
                "WARN",
                "diagnostics",
                "Disk usage at 97% on /var/log, rotating logs",
                Some("SYS_W800"),
            ),
            (
                "ERROR",
                "diagnostics",
                "Rosbag recording stopped: no space left on device",
                Some("SYS_E801"),
            ),
        ],
        questions: &[("disk full on the robot", false)],
    },
    Incident {
        robot: 2,
        at_s: 12 * 3600 + 1800,
        lines: &[
            (
                "WARN",
                "safety_monitor",
                "Person detected in the arm workspace, arm paused",
                Some("SAF_W140"),
            ),
            (
                "WARN",
                "safety_monitor",
                "Arm workspace intrusion: worker too close to the manipulator",
                Some("SAF_W140"),
            ),
        ],
        questions: &[("a person walked into the robot arm's area", false)],
    },
    Incident {
        robot: 6,
        at_s: 13 * 3600 + 700,
        lines: &[
            (
                "WARN",
                "imu_driver",
                "IMU gyro bias drift 0.8 deg/s, recalibrating",
                Some("IMU_W900"),
            ),
            (
                "WARN",
                "odometry",
                "Wheel odometry and IMU disagree by 0.35 m over 20 m",
                Some("ODO_W910"),
            ),
        ],
        questions: &[("odometry drift", false)],
    },
    Incident {
        robot: 4,
        at_s: 14 * 3600 + 1300,
        lines: &[
            (
                "ERROR",
                "safety_monitor",
                "Sicherheitsstopp: Person im Arbeitsbereich des Greifarms erkannt",
                Some("SAF_E141"),
            ),
            (
                "WARN",
                "arm_controller",
                "Greifarm angehalten, Freigabe durch Bediener erforderlich",
                Some("SAF_E141"),
            ),
            ("INFO", "safety_monitor", "Arbeitsbereich wieder frei, Greifarm fährt fort", None),
        ],
        questions: &[("Sicherheitsstopp Greifarm Person erkannt", false)],
    },
    Incident {
        robot: 1,
        at_s: 15 * 3600 + 400,
        lines: &[
            (
                "WARN",
                "battery_monitor",
                "バッテリー残量が少なくなっています：12%",
                Some("BAT_W010"),
            ),
            (
                "ERROR",
                "battery_monitor",
                "バッテリー残量低下のため充電ステーションへ戻ります",
                Some("BAT_E011"),
            ),
        ],
        questions: &[("バッテリー残量が少ない", false)],
    },
    Incident {
        robot: 7,
        at_s: 16 * 3600 + 2000,
        lines: &[
            (
                "WARN",
                "camera_driver",
                "Depth camera frame rate dropped to 4 Hz, USB bandwidth exceeded",
                Some("CAM_W600"),
            ),
            (
                "ERROR",
                "camera_driver",
                "Depth camera disconnected, obstacle layer disabled",
                Some("CAM_E601"),
            ),
        ],
        questions: &[("depth camera disconnected", false), ("camera problems on robot 7", true)],
    },
    Incident {
        robot: 8,
        at_s: 17 * 3600 + 900,
        lines: &[
            (
                "ERROR",
                "planner_server",
                "No valid path to rack row 12: aisle 7 blocked by a pallet",
                Some("NAV_E044"),
            ),
            (
                "WARN",
                "bt_navigator",
                "Goal to rack row 12 failed, requesting an alternative route from fleet manager",
                Some("NAV_E044"),
            ),
        ],
        questions: &[("path planning failed because an aisle was blocked", false)],
    },
];

/// Generates `n` routine lines plus every incident (incident lines count toward `n`), sorted by
/// time, and the labelled questions. Deterministic for a given `seed`.
pub fn generate(n: usize, seed: u64) -> (Vec<LogEvent>, Vec<Question>) {
    let mut rng = Rng::new(seed);
    let incident_lines: usize = INCIDENTS.iter().map(|i| i.lines.len()).sum();
    let mut events = Vec::with_capacity(n.max(incident_lines));
    let day = 18 * 3600;
    for _ in 0..n.saturating_sub(incident_lines) {
        let (level, node, tpl) = *rng.pick(ROUTINE);
        let robot = 1 + rng.below(ROBOTS);
        let msg = fill(tpl, &mut rng);
        events.push(LogEvent {
            id: String::new(),
            ts: T0 as f64 + rng.range(0.0, day as f64),
            level: level.into(),
            robot: format!("robot_{robot}"),
            node: node.into(),
            message: msg,
            code: None,
        });
    }
    let mut marks: Vec<(usize, usize)> = Vec::new(); // (incident, line) per incident event
    for (ii, inc) in INCIDENTS.iter().enumerate() {
        for (li, (level, node, msg, code)) in inc.lines.iter().enumerate() {
            let message = match code {
                Some(c) => format!("{msg} ({c})"),
                None => msg.to_string(),
            };
            events.push(LogEvent {
                id: format!("incident-{ii}-{li}"),
                ts: (T0 + inc.at_s + 20 * li as i64) as f64 + rng.range(0.0, 15.0),
                level: level.to_string(),
                robot: format!("robot_{}", inc.robot),
                node: node.to_string(),
                message,
                code: code.map(str::to_string),
            });
            marks.push((ii, li));
        }
    }
    events.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let mut ids = std::collections::HashMap::new();
    for (i, e) in events.iter_mut().enumerate() {
        let new_id = format!("evt-{i:07}");
        if !e.id.is_empty() {
            ids.insert(e.id.clone(), new_id.clone());
        }
        e.id = new_id;
    }
    let mut questions = Vec::new();
    for (ii, inc) in INCIDENTS.iter().enumerate() {
        let relevant: Vec<String> =
            (0..inc.lines.len()).map(|li| ids[&format!("incident-{ii}-{li}")].clone()).collect();
        for (q, filtered) in inc.questions {
            questions.push(Question {
                text: q,
                robot: filtered.then(|| ROBOT_NAMES[inc.robot - 1]),
                relevant: relevant.clone(),
            });
        }
    }
    let _ = marks;
    (events, questions)
}

const ROBOT_NAMES: [&str; ROBOTS] =
    ["robot_1", "robot_2", "robot_3", "robot_4", "robot_5", "robot_6", "robot_7", "robot_8"];

fn fill(tpl: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(tpl.len() + 16);
    let mut rest = tpl;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map_or(rest.len(), |e| i + e);
        match &rest[i + 1..end] {
            "p" => out.push_str(PLACES[rng.below(PLACES.len())]),
            "n" => out.push_str(&(5 + rng.below(90)).to_string()),
            "m" => out.push_str(&(100 + rng.below(9000)).to_string()),
            "t" => out.push_str(&(24 + rng.below(12)).to_string()),
            "o" => out.push_str(
                ["a pallet", "a person", "a stopped robot", "a cart", "a forklift"][rng.below(5)],
            ),
            "V" => out.push_str(&format!("{:.1}", rng.range(44.0, 54.0))),
            "a" => out.push_str(&format!("{:.1}", rng.range(5.0, 30.0))),
            "s" => out.push_str(&format!("{:.1}", rng.range(0.3, 2.0))),
            _ => out.push_str(&format!("{:.2}", rng.range(0.01, 2.5))),
        }
        rest = &rest[(end + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// recall@k and MRR@k of ranked ids against relevant ids (recall counts min(k, |relevant|)).
pub fn score(ranked: &[String], relevant: &[String], k: usize) -> (f64, f64) {
    let top = &ranked[..ranked.len().min(k)];
    let found = top.iter().filter(|id| relevant.contains(id)).count();
    let recall = found as f64 / relevant.len().min(k) as f64;
    let mrr = top.iter().position(|id| relevant.contains(id)).map_or(0.0, |p| 1.0 / (p + 1) as f64);
    (recall, mrr)
}

/// Unix seconds -> `2026-11-20T08:14:03Z`.
pub fn iso8601(t: i64) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("@{t}"),
    }
}

/// A point in time -> unix seconds. Takes an RFC 3339 / ISO 8601 timestamp with any offset
/// (`2026-11-20T08:14:03Z`, `2026-11-20T10:14:03+02:00`), a date and time without offset (taken
/// as UTC: `2026-11-20T08:14`, `2026-11-20 08:14:03`), a date (midnight UTC), or whole unix
/// seconds. Dates are checked by the calendar (`2026-02-31` is refused) and must lie in the
/// years 1 to 9999.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let in_range = |t: i64| {
        let ok = jiff::Timestamp::from_second(t).is_ok_and(|ts| {
            (1..=9999).contains(&ts.to_zoned_datetime(jiff::tz::TimeZone::UTC).year())
        });
        if ok {
            Ok(t)
        } else {
            Err(format!("{s:?} is outside the years 1 to 9999"))
        }
    };
    if !s.is_empty() && s.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) {
        let t: i64 = s.parse().map_err(|_| format!("{s:?} is out of range"))?;
        return in_range(t);
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return in_range(ts.as_second());
    }
    // A date and time without offset (UTC), or a date (midnight UTC): one civil time.
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>().map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|e| {
            format!(
                "{s:?} is not a time ({e}); use 2026-11-20T08:00:00Z, 2026-11-20T08:00, \
                 2026-11-20 or unix seconds"
            )
        })?;
    let t = civil.to_zoned_datetime(jiff::tz::TimeZone::UTC).map_err(|e| e.to_string())?;
    in_range(t.timestamp().as_second())
}
