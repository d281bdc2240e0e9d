//! The labelled question set for keyword, vector and hybrid search: a multi-day fleet log
//! (the day of `fleet.rs` first, then days of routine traffic) with scripted incidents whose
//! relevant lines are known by construction, and questions in four slices:
//!
//! - **general**: the English questions of `fleet.rs` (words shared with their lines, or not);
//! - **exact token**: an error code, tote, task, order, part, serial or firmware version, each
//!   in 2-3 lines over different days, beside decoy lines that differ by one character or
//!   digit and read alike (`NAV_E045` among `NAV_E047`, `tote 15521` among `tote 15512`);
//! - **non-English**: German and Japanese questions over German and Japanese lines (those of
//!   `fleet.rs` and ten more);
//! - **paraphrase**: English questions that share no term (as `akidb::fulltext` tokenizes)
//!   with any of their relevant lines; checked by `both_question_sets_are_well_formed_and_apart`.
//!
//! That is the reported set ([`QuestionSet::Reported`]). A second, the tuning set
//! ([`QuestionSet::Tuning`], `tuning_set.rs`), has its own incidents, questions and routine
//! traffic in the same slices; fusion parameters are chosen on it and reported on this one.
//!
//! Used by `examples/hybrid_eval.rs` and `tests/hybrid_relevance.rs`.
#![allow(dead_code)]

#[path = "tuning_set.rs"]
mod tuning_set;

use super::fleet::{self, LogEvent, Rng};

/// Which labelled set: the one results are reported on, or the one fusion is tuned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionSet {
    Reported,
    Tuning,
}

impl QuestionSet {
    pub fn name(self) -> &'static str {
        match self {
            QuestionSet::Reported => "reported",
            QuestionSet::Tuning => "tuning",
        }
    }
}

/// The four slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slice {
    General,
    ExactToken,
    NonEnglish,
    Paraphrase,
}

impl Slice {
    pub const ALL: [Slice; 4] =
        [Slice::General, Slice::ExactToken, Slice::NonEnglish, Slice::Paraphrase];

    pub fn name(self) -> &'static str {
        match self {
            Slice::General => "general",
            Slice::ExactToken => "exact-token",
            Slice::NonEnglish => "non-English",
            Slice::Paraphrase => "paraphrase",
        }
    }
}

/// A question, its slice, the robot filter a person would add, and the ids that answer it.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub text: String,
    pub slice: Slice,
    pub robot: Option<String>,
    pub relevant: Vec<String>,
}

/// One scripted line: day (0-based), seconds into the day, robot, level, node, message.
type Line = (usize, i64, usize, &'static str, &'static str, &'static str);

/// A question that hinges on one token: the question, whether it is filtered by the robot of
/// its first line, the relevant lines, then decoys (not relevant).
type Exact = (&'static str, bool, &'static [Line], &'static [Line]);

/// A question, whether it is filtered by the robot of its first line, its relevant lines.
type Asked = (&'static str, bool, &'static [Line]);

/// Incidents whose questions hinge on one token.
const EXACT: &[Exact] = &[
    (
        "NAV_E045",
        false,
        &[
            (
                1,
                3_000,
                2,
                "ERROR",
                "controller_server",
                "Goal aborted, costmap inflated around a rack (NAV_E045)",
            ),
            (
                2,
                40_000,
                6,
                "ERROR",
                "controller_server",
                "Controller gave up after 3 retries (NAV_E045)",
            ),
        ],
        &[
            (
                1,
                9_000,
                4,
                "ERROR",
                "controller_server",
                "Goal aborted, costmap inflated near a rack (NAV_E047)",
            ),
            (
                2,
                12_000,
                1,
                "ERROR",
                "controller_server",
                "Controller gave up after 4 retries (NAV_E048)",
            ),
        ],
    ),
    (
        "NAV_E046 on robot 5",
        true,
        &[
            (
                1,
                20_000,
                5,
                "ERROR",
                "bt_navigator",
                "Recovery behaviour spin failed twice (NAV_E046)",
            ),
            (
                2,
                22_000,
                5,
                "WARN",
                "bt_navigator",
                "Backing up 0.3 m after blocked spin (NAV_E046)",
            ),
        ],
        &[(
            1,
            21_000,
            5,
            "ERROR",
            "bt_navigator",
            "Recovery behaviour wait failed twice (NAV_E049)",
        )],
    ),
    (
        "SAF_E107",
        false,
        &[
            (
                1,
                30_000,
                3,
                "ERROR",
                "safety_monitor",
                "Speed monitoring violated in slow zone (SAF_E107)",
            ),
            (
                2,
                50_000,
                7,
                "ERROR",
                "safety_monitor",
                "Speed limit exceeded inside slow zone (SAF_E107)",
            ),
        ],
        &[(
            1,
            31_000,
            4,
            "ERROR",
            "safety_monitor",
            "Speed monitoring violated in slow zone (SAF_E108)",
        )],
    ),
    (
        "BAT_E212",
        false,
        &[
            (
                2,
                7_000,
                1,
                "ERROR",
                "battery_monitor",
                "Cell voltage imbalance 180 mV, pack isolated (BAT_E212)",
            ),
            (
                2,
                7_040,
                1,
                "WARN",
                "battery_monitor",
                "Pack isolation confirmed, limp mode (BAT_E212)",
            ),
        ],
        &[(
            1,
            7_000,
            2,
            "ERROR",
            "battery_monitor",
            "Cell voltage imbalance 160 mV, pack isolated (BAT_E213)",
        )],
    ),
    (
        "ARM_E331",
        false,
        &[
            (
                1,
                44_000,
                8,
                "ERROR",
                "arm_controller",
                "Wrist joint torque above limit, motion stopped (ARM_E331)",
            ),
            (
                2,
                14_000,
                8,
                "ERROR",
                "arm_controller",
                "Wrist torque limit hit during place (ARM_E331)",
            ),
        ],
        &[(
            2,
            15_000,
            3,
            "ERROR",
            "arm_controller",
            "Elbow joint torque above limit, motion stopped (ARM_E332)",
        )],
    ),
    (
        "LID_W015",
        false,
        &[
            (
                1,
                52_000,
                6,
                "WARN",
                "lidar_driver",
                "Window contamination detected, range reduced (LID_W015)",
            ),
            (2, 3_500, 2, "WARN", "lidar_driver", "Lidar window dirty, max range 8 m (LID_W015)"),
        ],
        &[(
            1,
            53_000,
            6,
            "WARN",
            "lidar_driver",
            "Window contamination cleared, range nominal (LID_W016)",
        )],
    ),
    (
        "CAM_E604",
        false,
        &[(
            2,
            33_000,
            4,
            "ERROR",
            "camera_driver",
            "Stereo calibration invalid, depth disabled (CAM_E604)",
        )],
        &[(
            2,
            34_000,
            4,
            "ERROR",
            "camera_driver",
            "Stereo calibration stale, depth degraded (CAM_E605)",
        )],
    ),
    (
        "where is tote 15521?",
        false,
        &[
            (1, 11_000, 2, "INFO", "arm_controller", "Picked tote 15521 from rack row 3"),
            (
                1,
                11_300,
                2,
                "WARN",
                "conveyor_interface",
                "Tote 15521 not confirmed by conveyor 2, holding",
            ),
            (2, 2_000, 6, "INFO", "fleet_client", "Tote 15521 found at packing station B"),
        ],
        &[
            (1, 12_000, 3, "INFO", "arm_controller", "Picked tote 15512 from rack row 3"),
            (2, 2_500, 6, "INFO", "fleet_client", "Tote 15512 found at packing station B"),
        ],
    ),
    (
        "tote 18830",
        false,
        &[
            (
                2,
                60_000,
                7,
                "ERROR",
                "arm_controller",
                "Tote 18830 dropped during transfer, gripper open",
            ),
            (2, 60_050, 7, "INFO", "fleet_client", "Tote 18830 reported to operator for pickup"),
        ],
        &[(
            2,
            61_000,
            5,
            "ERROR",
            "arm_controller",
            "Tote 18803 dropped during transfer, gripper open",
        )],
    ),
    (
        "task 88123 status",
        false,
        &[
            (1, 15_000, 4, "INFO", "fleet_client", "Task 88123 accepted: replenish rack row 12"),
            (1, 15_900, 4, "WARN", "fleet_client", "Task 88123 paused, path blocked"),
        ],
        &[
            (1, 16_000, 5, "INFO", "fleet_client", "Task 88132 accepted: replenish rack row 12"),
            (1, 16_500, 5, "WARN", "fleet_client", "Task 81823 paused, path blocked"),
        ],
    ),
    (
        "order SO-44017",
        false,
        &[
            (2, 18_000, 3, "INFO", "wms_bridge", "Order SO-44017 released, 6 totes"),
            (2, 19_000, 3, "WARN", "wms_bridge", "Order SO-44017 short by 1 tote"),
        ],
        &[(2, 18_500, 8, "INFO", "wms_bridge", "Order SO-44071 released, 6 totes")],
    ),
    (
        "part HX-2231-B replaced",
        false,
        &[
            (
                1,
                25_000,
                6,
                "INFO",
                "maintenance",
                "Replaced drive belt part HX-2231-B on left wheel",
            ),
            (2, 26_000, 6, "INFO", "maintenance", "HX-2231-B belt tension checked after 24 h"),
        ],
        &[(
            1,
            26_000,
            7,
            "INFO",
            "maintenance",
            "Replaced drive belt part HX-2231-C on left wheel",
        )],
    ),
    (
        "firmware v2.14.3",
        false,
        &[
            (1, 1_000, 1, "INFO", "updater", "Lidar firmware v2.14.3 installed, reboot pending"),
            (1, 1_200, 1, "INFO", "updater", "Running firmware v2.14.3 after reboot"),
        ],
        &[
            (1, 1_100, 2, "INFO", "updater", "Lidar firmware v2.13.4 installed, reboot pending"),
            (2, 1_000, 3, "INFO", "updater", "Running firmware v2.14.2 after reboot"),
        ],
    ),
    (
        "serial LDR-99812",
        false,
        &[(2, 45_000, 5, "WARN", "lidar_driver", "Sensor serial LDR-99812 reports motor wear 87%")],
        &[(2, 45_500, 6, "WARN", "lidar_driver", "Sensor serial LDR-98812 reports motor wear 78%")],
    ),
    (
        "pallet PAL-3307",
        false,
        &[
            (1, 35_000, 8, "WARN", "planner_server", "Pallet PAL-3307 left in aisle 7, replanning"),
            (2, 35_000, 2, "INFO", "fleet_client", "Pallet PAL-3307 cleared from aisle 7"),
        ],
        &[(1, 36_000, 8, "WARN", "planner_server", "Pallet PAL-3370 left in aisle 4, replanning")],
    ),
    (
        "charger CHG-07",
        false,
        &[
            (1, 48_000, 3, "ERROR", "docking_server", "Charger CHG-07 handshake timeout"),
            (2, 48_000, 5, "ERROR", "docking_server", "Charger CHG-07 output voltage out of range"),
        ],
        &[(1, 49_000, 4, "ERROR", "docking_server", "Charger CHG-01 handshake timeout")],
    ),
    (
        "shelf S12-04-3",
        false,
        &[(2, 28_000, 2, "WARN", "arm_controller", "Slot S12-04-3 occupied, cannot place tote")],
        &[(2, 28_500, 2, "WARN", "arm_controller", "Slot S12-03-4 occupied, cannot place tote")],
    ),
    (
        "error 0x1F3A",
        false,
        &[(1, 57_000, 7, "ERROR", "motor_driver", "Drive fault code 0x1F3A, power stage reset")],
        &[(1, 58_000, 1, "ERROR", "motor_driver", "Drive fault code 0x1F3B, power stage reset")],
    ),
    (
        "AP-131 roaming",
        false,
        &[(2, 9_000, 4, "WARN", "wifi_manager", "Roaming to AP-131 failed, staying on AP-113")],
        &[(2, 9_500, 5, "WARN", "wifi_manager", "Roaming to AP-113 failed, staying on AP-311")],
    ),
    (
        "SAF_E103 robot 3",
        true,
        &[(1, 2_000, 3, "ERROR", "safety_monitor", "Protective stop at loading dock 2 (SAF_E103)")],
        &[(1, 2_100, 3, "ERROR", "safety_monitor", "Protective stop at loading dock 2 (SAF_E113)")],
    ),
    (
        "version 4.2.0-rc1",
        false,
        &[(2, 55_000, 1, "INFO", "updater", "Fleet agent 4.2.0-rc1 rolled out to canary group")],
        &[(2, 55_300, 2, "INFO", "updater", "Fleet agent 4.2.1-rc0 rolled out to canary group")],
    ),
];

/// Incidents logged in German or Japanese, with questions in the same language.
const FOREIGN: &[(&str, &[Line])] = &[
    (
        "Not-Aus am Förderband ausgelöst",
        &[
            (
                1,
                10_000,
                4,
                "ERROR",
                "safety_monitor",
                "Not-Aus am Förderband 3 ausgelöst, Antrieb gestoppt",
            ),
            (1, 10_060, 4, "INFO", "safety_monitor", "Not-Aus quittiert, Förderband läuft wieder"),
        ],
    ),
    (
        "Radencoder liefert keine Werte",
        &[
            (1, 23_000, 2, "ERROR", "base_driver", "Radencoder links liefert keine Werte mehr"),
            (
                1,
                23_030,
                2,
                "WARN",
                "base_driver",
                "Odometrie unzuverlässig wegen Radencoder-Ausfall",
            ),
        ],
    ),
    (
        "Kollision mit dem Regal",
        &[(
            2,
            16_000,
            7,
            "ERROR",
            "collision_monitor",
            "Kollision mit Regal 14 erkannt, Fahrt gestoppt",
        )],
    ),
    (
        "WLAN Verbindung verloren",
        &[
            (
                2,
                30_000,
                8,
                "WARN",
                "wifi_manager",
                "WLAN-Verbindung verloren, Wiederverbindung läuft",
            ),
            (2, 30_040, 8, "INFO", "wifi_manager", "WLAN-Verbindung wiederhergestellt nach 40 s"),
        ],
    ),
    (
        "Bremsen überhitzt",
        &[(
            1,
            41_000,
            5,
            "ERROR",
            "base_driver",
            "Bremsen überhitzt: 96 °C, Geschwindigkeit reduziert",
        )],
    ),
    (
        "充電ステーションに接続できない",
        &[
            (1, 13_000, 6, "ERROR", "docking_server", "充電ステーションに接続できません"),
            (1, 13_050, 6, "WARN", "docking_server", "充電ステーションへの再接続を試みています"),
        ],
    ),
    (
        "モーター温度 上限",
        &[(2, 21_000, 3, "ERROR", "motor_driver", "モーター温度が上限を超えました：92℃")],
    ),
    (
        "非常停止ボタン",
        &[
            (2, 42_000, 1, "ERROR", "safety_monitor", "非常停止ボタンが押されました"),
            (2, 42_090, 1, "INFO", "safety_monitor", "非常停止が解除されました"),
        ],
    ),
    (
        "床が濡れて滑った",
        &[(1, 47_000, 7, "WARN", "base_driver", "床が濡れていて車輪が滑りました")],
    ),
    (
        "カメラのレンズが汚れている",
        &[(2, 51_000, 2, "WARN", "camera_driver", "カメラのレンズが汚れています、清掃が必要です")],
    ),
];

/// Incidents asked about in other words: no question term is a term of its lines.
const PARAPHRASE: &[(&str, &[Line])] = &[
    (
        "power connector rusty",
        &[(
            1,
            5_000,
            8,
            "ERROR",
            "docking_server",
            "Charging contacts corroded, dock handshake failed",
        )],
    ),
    (
        "cooling broke, processor slowed",
        &[
            (2, 5_500, 3, "ERROR", "diagnostics", "Fan failure in compute module, CPU throttling"),
            (2, 5_560, 3, "WARN", "diagnostics", "Compute temperature 91 C with fan stopped"),
        ],
    ),
    (
        "gate sensor unlatched so access refused",
        &[(
            1,
            18_000,
            5,
            "WARN",
            "safety_monitor",
            "Door interlock open, entering restricted zone denied",
        )],
    ),
    (
        "liquid puddle ahead",
        &[(
            2,
            24_000,
            6,
            "WARN",
            "cliff_sensor",
            "Floor spill detected by downward sensor, slowing down",
        )],
    ),
    (
        "belt clogged at handoff",
        &[(
            1,
            29_000,
            1,
            "ERROR",
            "conveyor_interface",
            "Conveyor jam at transfer point, tote stuck",
        )],
    ),
    (
        "slow connection, server lag",
        &[(2, 37_000, 4, "WARN", "fleet_client", "Network latency spike 900 ms to fleet manager")],
    ),
    (
        "abrupt halt",
        &[(
            1,
            39_000,
            2,
            "ERROR",
            "base_driver",
            "Emergency brake engaged after sudden deceleration",
        )],
    ),
    (
        "scanner could not decode the package sticker",
        &[(2, 44_000, 8, "WARN", "barcode_reader", "Barcode unreadable on carton label, retrying")],
    ),
    (
        "machine unsure where it is",
        &[(2, 46_000, 5, "ERROR", "amcl", "Localization lost, particle filter diverged")],
    ),
    (
        "hand dropped a box",
        &[(1, 54_000, 3, "ERROR", "arm_controller", "Gripper released the carton unexpectedly")],
    ),
];

/// What makes a set: the seed of its routine traffic and its scripted part.
struct Script {
    seed: u64,
    exact: &'static [Exact],
    foreign: &'static [(&'static str, &'static [Line])],
    paraphrase: &'static [(&'static str, &'static [Line])],
    general: &'static [Asked],
    /// Keep `fleet.rs`'s incidents and questions on day 0.
    fleet_incidents: bool,
}

impl QuestionSet {
    fn script(self) -> Script {
        match self {
            QuestionSet::Reported => Script {
                seed: 42,
                exact: EXACT,
                foreign: FOREIGN,
                paraphrase: PARAPHRASE,
                general: &[],
                fleet_incidents: true,
            },
            QuestionSet::Tuning => Script {
                seed: 1042,
                exact: tuning_set::EXACT,
                foreign: tuning_set::FOREIGN,
                paraphrase: tuning_set::PARAPHRASE,
                general: tuning_set::GENERAL,
                fleet_incidents: false,
            },
        }
    }
}

/// The reported set: `days` days of `lines_per_day` lines each (day 0 is `fleet::generate`'s
/// day, with its incidents), the scripted incidents above, and the labelled questions.
/// Deterministic.
pub fn generate(days: usize, lines_per_day: usize) -> (Vec<LogEvent>, Vec<Labelled>) {
    generate_set(QuestionSet::Reported, days, lines_per_day)
}

/// One set's corpus and questions (see [`generate`]; the tuning set's day 0 is routine traffic
/// only). Deterministic.
pub fn generate_set(
    set: QuestionSet,
    days: usize,
    lines_per_day: usize,
) -> (Vec<LogEvent>, Vec<Labelled>) {
    assert!(days >= 3, "the scripted incidents span three days");
    let script = set.script();
    let seed = script.seed;
    let (mut events, mut day0) = fleet::generate(lines_per_day, seed);
    if !script.fleet_incidents {
        events.retain(|e| !is_scripted(e));
        day0.clear();
    }
    for day in 1..days {
        let (routine, _) = fleet::generate(lines_per_day, seed + day as u64);
        events.extend(routine.into_iter().filter(|e| !is_scripted(e)).map(|mut e| {
            e.ts += (day as i64 * 86_400) as f64;
            e.id = format!("d{day}-{}", e.id);
            e
        }));
    }
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut questions = Vec::new();
    let mut add = |lines: &[Line], tag: &str, events: &mut Vec<LogEvent>| -> Vec<String> {
        lines
            .iter()
            .enumerate()
            .map(|(i, &(day, at, robot, level, node, message))| {
                let id = format!("{tag}-{i}");
                events.push(LogEvent {
                    id: id.clone(),
                    ts: (fleet::T0 + day as i64 * 86_400 + at) as f64 + rng.range(0.0, 0.9),
                    level: level.into(),
                    robot: format!("robot_{robot}"),
                    node: node.into(),
                    message: message.into(),
                    code: None,
                });
                id
            })
            .collect()
    };
    for (qi, (q, filtered, relevant, decoys)) in script.exact.iter().enumerate() {
        let ids = add(relevant, &format!("exact{qi}"), &mut events);
        add(decoys, &format!("decoy{qi}"), &mut events);
        let robot = filtered.then(|| format!("robot_{}", relevant[0].2));
        questions.push(labelled(q, Slice::ExactToken, robot, ids));
    }
    for (qi, (q, lines)) in script.foreign.iter().enumerate() {
        let ids = add(lines, &format!("foreign{qi}"), &mut events);
        questions.push(labelled(q, Slice::NonEnglish, None, ids));
    }
    for (qi, (q, lines)) in script.paraphrase.iter().enumerate() {
        let ids = add(lines, &format!("para{qi}"), &mut events);
        questions.push(labelled(q, Slice::Paraphrase, None, ids));
    }
    for (qi, (q, filtered, lines)) in script.general.iter().enumerate() {
        let ids = add(lines, &format!("general{qi}"), &mut events);
        let robot = filtered.then(|| format!("robot_{}", lines[0].2));
        questions.push(labelled(q, Slice::General, robot, ids));
    }
    let foreign: std::collections::HashSet<&str> =
        events.iter().filter(|e| !e.message.is_ascii()).map(|e| e.id.as_str()).collect();
    let day0: Vec<(fleet::Question, bool)> = day0
        .into_iter()
        .map(|q| {
            let f = q.relevant.iter().any(|r| foreign.contains(r.as_str()));
            (q, f)
        })
        .collect();
    for (q, foreign) in day0 {
        let slice = if foreign { Slice::NonEnglish } else { Slice::General };
        questions.push(Labelled {
            text: q.text.into(),
            slice,
            robot: q.robot.map(str::to_string),
            relevant: q.relevant,
        });
    }
    // Time order and final ids (`evt-0000123`), as in `fleet::generate`.
    events.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let mut ids = std::collections::HashMap::new();
    for (i, e) in events.iter_mut().enumerate() {
        let new_id = format!("evt-{i:07}");
        ids.insert(std::mem::replace(&mut e.id, new_id.clone()), new_id);
    }
    for q in &mut questions {
        for r in &mut q.relevant {
            *r = ids[r].clone();
        }
    }
    (events, questions)
}

/// Lines of `fleet.rs`'s incidents (kept on day 0 only: their questions are labelled there).
fn is_scripted(e: &LogEvent) -> bool {
    e.code.is_some()
}

fn labelled(q: &str, slice: Slice, robot: Option<String>, relevant: Vec<String>) -> Labelled {
    Labelled { text: q.into(), slice, robot, relevant }
}
