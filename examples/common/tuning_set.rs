//! The tuning question set: incidents, lines and questions written apart from the reported set
//! of `relevance.rs` (no incident, code or question of that set; routine traffic from another
//! seed; `fleet.rs`'s own incidents left out), so that what hybrid fusion is tuned on is not
//! what it is reported on. Same slices and rules: exact-token lines beside decoys one character
//! or digit away, German and Japanese lines asked in their language, paraphrases that share no
//! term with their lines, and general English questions whose incidents routine traffic does
//! not also describe.

use super::{Asked, Exact, Line};

/// Questions that hinge on one token; each with its relevant lines, then decoys.
pub(super) const EXACT: &[Exact] = &[
    (
        "NAV_E051",
        false,
        &[
            (
                0,
                4_200,
                6,
                "ERROR",
                "controller_server",
                "Path tracking error above 0.5 m, goal cancelled (NAV_E051)",
            ),
            (
                2,
                31_000,
                1,
                "ERROR",
                "controller_server",
                "Lateral deviation too large, stopping (NAV_E051)",
            ),
        ],
        &[
            (
                1,
                4_500,
                3,
                "ERROR",
                "controller_server",
                "Path tracking error above 0.5 m, goal cancelled (NAV_E057)",
            ),
            (
                2,
                31_500,
                2,
                "ERROR",
                "controller_server",
                "Lateral deviation too large, stopping (NAV_E015)",
            ),
        ],
    ),
    (
        "BAT_W031 robot 4",
        true,
        &[
            (
                1,
                12_000,
                4,
                "WARN",
                "battery_monitor",
                "State of charge estimate jumped 12% (BAT_W031)",
            ),
            (
                2,
                13_000,
                4,
                "WARN",
                "battery_monitor",
                "Coulomb counter reset, charge estimate unreliable (BAT_W031)",
            ),
        ],
        &[(
            1,
            12_500,
            4,
            "WARN",
            "battery_monitor",
            "State of charge estimate jumped 9% (BAT_W013)",
        )],
    ),
    (
        "MOT_E220",
        false,
        &[
            (
                0,
                20_000,
                7,
                "ERROR",
                "motor_driver",
                "Right wheel encoder mismatch, drive disabled (MOT_E220)",
            ),
            (
                1,
                40_000,
                3,
                "ERROR",
                "motor_driver",
                "Encoder count mismatch on right wheel (MOT_E220)",
            ),
        ],
        &[(
            0,
            20_500,
            5,
            "ERROR",
            "motor_driver",
            "Right wheel encoder mismatch, drive disabled (MOT_E202)",
        )],
    ),
    (
        "SAF_E119",
        false,
        &[(
            2,
            9_000,
            8,
            "ERROR",
            "safety_monitor",
            "Light curtain muting expired at dock door (SAF_E119)",
        )],
        &[(
            2,
            9_300,
            8,
            "ERROR",
            "safety_monitor",
            "Light curtain muting expired at dock door (SAF_E191)",
        )],
    ),
    (
        "tote 27714",
        false,
        &[
            (0, 14_000, 5, "INFO", "arm_controller", "Placed tote 27714 on conveyor 1"),
            (
                1,
                2_000,
                5,
                "WARN",
                "conveyor_interface",
                "Tote 27714 label missing, sent to manual station",
            ),
        ],
        &[
            (0, 14_400, 6, "INFO", "arm_controller", "Placed tote 27741 on conveyor 1"),
            (
                1,
                2_300,
                6,
                "WARN",
                "conveyor_interface",
                "Tote 22714 label missing, sent to manual station",
            ),
        ],
    ),
    (
        "what happened to task 90412",
        false,
        &[
            (
                2,
                17_000,
                2,
                "INFO",
                "fleet_client",
                "Task 90412 accepted: bring empty totes to packing station A",
            ),
            (2, 17_600, 2, "ERROR", "fleet_client", "Task 90412 failed: destination unreachable"),
        ],
        &[(2, 18_000, 3, "ERROR", "fleet_client", "Task 90421 failed: destination unreachable")],
    ),
    (
        "order PO-55830",
        false,
        &[
            (1, 22_000, 1, "INFO", "wms_bridge", "Order PO-55830 picked complete, 4 totes"),
            (1, 23_500, 1, "INFO", "wms_bridge", "Order PO-55830 handed to shipping"),
        ],
        &[(1, 22_400, 4, "INFO", "wms_bridge", "Order PO-55803 picked complete, 4 totes")],
    ),
    (
        "part GR-1180-A",
        false,
        &[
            (0, 33_000, 8, "INFO", "maintenance", "Suction cup part GR-1180-A swapped on gripper"),
            (2, 33_000, 8, "INFO", "maintenance", "GR-1180-A cup wear inspected, ok"),
        ],
        &[(0, 34_000, 2, "INFO", "maintenance", "Suction cup part GR-1180-B swapped on gripper")],
    ),
    (
        "firmware 3.8.11",
        false,
        &[
            (1, 1_500, 6, "INFO", "updater", "Motor controller firmware 3.8.11 flashed"),
            (
                1,
                1_800,
                6,
                "INFO",
                "updater",
                "Motor controller reports firmware 3.8.11 after restart",
            ),
        ],
        &[
            (1, 1_600, 7, "INFO", "updater", "Motor controller firmware 3.8.1 flashed"),
            (2, 1_500, 5, "INFO", "updater", "Motor controller firmware 3.11.8 flashed"),
        ],
    ),
    (
        "serial CAM-40217",
        false,
        &[(2, 50_000, 3, "WARN", "camera_driver", "Camera serial CAM-40217 frame drops 5%")],
        &[(2, 50_400, 7, "WARN", "camera_driver", "Camera serial CAM-40271 frame drops 5%")],
    ),
    (
        "rack R-22-07",
        false,
        &[
            (
                0,
                44_000,
                4,
                "WARN",
                "planner_server",
                "Rack R-22-07 footprint overlaps lane, path rejected",
            ),
            (1, 44_000, 1, "INFO", "fleet_client", "Rack R-22-07 moved back into its slot"),
        ],
        &[(
            0,
            44_500,
            4,
            "WARN",
            "planner_server",
            "Rack R-22-70 footprint overlaps lane, path rejected",
        )],
    ),
    (
        "door D-14 did not open",
        false,
        &[
            (
                1,
                30_000,
                2,
                "ERROR",
                "door_bridge",
                "Fire door D-14 did not open on request, waiting",
            ),
            (1, 30_200, 2, "WARN", "door_bridge", "Door D-14 open request timed out after 20 s"),
        ],
        &[(
            1,
            31_000,
            6,
            "ERROR",
            "door_bridge",
            "Fire door D-41 did not open on request, waiting",
        )],
    ),
    (
        "fault 0xA41C",
        false,
        &[(2, 26_000, 1, "ERROR", "motor_driver", "Inverter fault 0xA41C, phase current limit")],
        &[(2, 26_600, 4, "ERROR", "motor_driver", "Inverter fault 0xA41D, phase current limit")],
    ),
    (
        "IMU_W008",
        false,
        &[
            (0, 52_000, 3, "WARN", "imu_driver", "Gyro bias drift above threshold (IMU_W008)"),
            (2, 6_000, 5, "WARN", "imu_driver", "IMU bias recalibration requested (IMU_W008)"),
        ],
        &[(0, 52_300, 3, "WARN", "imu_driver", "Gyro bias drift above threshold (IMU_W009)")],
    ),
    (
        "lift LFT_E002 robot 6",
        true,
        &[
            (
                1,
                47_000,
                6,
                "ERROR",
                "lift_controller",
                "Lift mast did not reach top position (LFT_E002)",
            ),
            (
                1,
                47_090,
                6,
                "WARN",
                "lift_controller",
                "Lift homing repeated after stall (LFT_E002)",
            ),
        ],
        &[(
            1,
            48_000,
            6,
            "ERROR",
            "lift_controller",
            "Lift mast did not reach top position (LFT_E020)",
        )],
    ),
    (
        "map version 2026.11.3",
        false,
        &[
            (2, 500, 7, "INFO", "map_server", "Loaded map version 2026.11.3 for floor 1"),
            (2, 700, 8, "INFO", "map_server", "Loaded map version 2026.11.3 for floor 2"),
        ],
        &[(1, 500, 7, "INFO", "map_server", "Loaded map version 2026.11.2 for floor 1")],
    ),
];

/// Incidents logged in German or Japanese, asked about in the same language.
pub(super) const FOREIGN: &[(&str, &[Line])] = &[
    (
        "Akku zu heiß beim Laden",
        &[
            (
                0,
                11_000,
                1,
                "ERROR",
                "battery_monitor",
                "Akku zu heiß beim Laden: 61 °C, Ladevorgang abgebrochen",
            ),
            (0, 11_050, 1, "WARN", "docking_server", "Laden pausiert, Akku kühlt ab"),
        ],
    ),
    (
        "Greifer verliert Vakuum",
        &[
            (
                1,
                16_000,
                3,
                "ERROR",
                "arm_controller",
                "Greifer verliert Vakuum beim Anheben, Teil fallen gelassen",
            ),
            (1, 16_040, 3, "WARN", "arm_controller", "Vakuumpumpe liefert nur 40 % Unterdruck"),
        ],
    ),
    (
        "Person im Gang erkannt",
        &[(2, 12_500, 6, "WARN", "safety_monitor", "Person im Gang 5 erkannt, Roboter wartet")],
    ),
    (
        "Laserscanner verschmutzt",
        &[
            (
                2,
                38_000,
                4,
                "WARN",
                "lidar_driver",
                "Laserscanner verschmutzt, Reichweite eingeschränkt",
            ),
            (2, 38_300, 4, "INFO", "lidar_driver", "Laserscanner gereinigt, Reichweite normal"),
        ],
    ),
    (
        "Rad blockiert",
        &[(0, 27_000, 7, "ERROR", "base_driver", "Rechtes Rad blockiert, Motorstrom zu hoch")],
    ),
    ("ドアが開かない", &[(1, 30_500, 5, "ERROR", "door_bridge", "ドアが開かないため待機中です")]),
    (
        "荷物が落下した",
        &[
            (2, 20_000, 8, "ERROR", "arm_controller", "荷物が落下しました、作業を中断します"),
            (2, 20_060, 8, "INFO", "arm_controller", "落下した荷物を回収しました"),
        ],
    ),
    (
        "地図の読み込みに失敗",
        &[(0, 3_000, 2, "ERROR", "map_server", "地図の読み込みに失敗しました")],
    ),
    (
        "通信が途切れた",
        &[
            (1, 36_000, 7, "WARN", "wifi_manager", "通信が途切れました、再接続中です"),
            (1, 36_030, 7, "INFO", "wifi_manager", "通信が回復しました"),
        ],
    ),
    (
        "障害物で経路がふさがれている",
        &[(2, 42_500, 4, "WARN", "planner_server", "障害物で経路がふさがれています、迂回します")],
    ),
];

/// Incidents asked about in other words: no question term is a term of its lines.
pub(super) const PARAPHRASE: &[(&str, &[Line])] = &[
    (
        "sucker cannot hold items",
        &[(
            0,
            15_500,
            5,
            "ERROR",
            "arm_controller",
            "Vacuum gripper lost grip on carton, pick failed",
        )],
    ),
    (
        "scale says parcel too heavy",
        &[(
            1,
            9_500,
            2,
            "WARN",
            "conveyor_interface",
            "Weight check exceeded limit for tote, diverted to rework lane",
        )],
    ),
    (
        "wheels spinning without grip",
        &[(
            2,
            14_500,
            3,
            "WARN",
            "base_driver",
            "Traction loss detected, drive slipping on smooth floor",
        )],
    ),
    (
        "robot too warm inside",
        &[(
            0,
            36_000,
            6,
            "WARN",
            "diagnostics",
            "Compute enclosure temperature 78 C, fans at maximum",
        )],
    ),
    (
        "no juice left, shut off",
        &[(1, 50_000, 8, "ERROR", "battery_monitor", "Battery depleted, powering down")],
    ),
    (
        "someone opened the cage",
        &[(
            2,
            2_800,
            1,
            "ERROR",
            "safety_monitor",
            "Enclosure gate unlocked by operator, arm halted",
        )],
    ),
    (
        "cannot decipher the shelf tag",
        &[(0, 49_000, 4, "WARN", "barcode_reader", "Rack label unreadable, location unconfirmed")],
    ),
    (
        "took a wrong turn",
        &[(
            1,
            27_500,
            5,
            "WARN",
            "bt_navigator",
            "Heading deviated from planned route, correcting",
        )],
    ),
    (
        "forklift almost crashed into us",
        &[(
            2,
            46_500,
            7,
            "WARN",
            "collision_monitor",
            "Near miss with manned truck, emergency slowdown",
        )],
    ),
    (
        "clock out of sync",
        &[(0, 23_500, 3, "WARN", "chrony", "Time offset 2.4 s from server, timestamps unreliable")],
    ),
    (
        "arm bumped itself",
        &[(
            1,
            42_000,
            4,
            "ERROR",
            "moveit",
            "Self-collision predicted between elbow and mast, motion aborted",
        )],
    ),
    (
        "charger gave no current",
        &[(1, 55_000, 2, "ERROR", "docking_server", "Dock output zero amps, contact check failed")],
    ),
];

/// English questions over incidents whose lines share some of their words, or none.
pub(super) const GENERAL: &[Asked] = &[
    (
        "why did robot 2 get stuck in aisle 9?",
        true,
        &[
            (
                0,
                8_000,
                2,
                "WARN",
                "controller_server",
                "No valid control command, robot stuck between pallets in aisle 9",
            ),
            (
                0,
                8_040,
                2,
                "ERROR",
                "bt_navigator",
                "Navigation aborted after 5 recovery attempts in aisle 9",
            ),
            (
                0,
                8_300,
                2,
                "INFO",
                "fleet_client",
                "Operator freed robot from aisle 9, resuming tasks",
            ),
        ],
    ),
    (
        "conveyor belt stopped with a tote on it",
        false,
        &[
            (
                1,
                19_000,
                4,
                "ERROR",
                "conveyor_interface",
                "Conveyor 1 stopped mid-transfer, tote left on belt",
            ),
            (
                1,
                19_030,
                4,
                "WARN",
                "conveyor_interface",
                "Waiting for conveyor 1 restart before next handoff",
            ),
        ],
    ),
    (
        "phantom obstacles from lidar noise",
        false,
        &[
            (
                2,
                10_000,
                5,
                "WARN",
                "lidar_driver",
                "High scan noise near open dock door, spurious obstacles",
            ),
            (
                2,
                10_200,
                5,
                "WARN",
                "costmap",
                "Clearing phantom obstacles from costmap near dock door",
            ),
        ],
    ),
    (
        "tasks reassigned because a robot went offline",
        false,
        &[
            (1, 33_500, 7, "WARN", "fleet_manager", "Robot 7 missed 3 heartbeats, marked offline"),
            (1, 33_530, 7, "INFO", "fleet_manager", "Reassigned 2 tasks from offline robot 7"),
        ],
    ),
    (
        "gripper camera could not find the tote handle",
        false,
        &[
            (
                0,
                29_000,
                8,
                "WARN",
                "perception",
                "Tote handle not detected in wrist camera image, retrying pick",
            ),
            (
                0,
                29_060,
                8,
                "ERROR",
                "perception",
                "Pick failed: tote pose estimate not found after 3 images",
            ),
        ],
    ),
    (
        "emergency stop on robot 1",
        true,
        &[
            (
                2,
                3_600,
                1,
                "ERROR",
                "safety_monitor",
                "Emergency stop pressed on robot body, drives off",
            ),
            (
                2,
                3_900,
                1,
                "INFO",
                "safety_monitor",
                "Emergency stop released, restart confirmed by operator",
            ),
        ],
    ),
    (
        "low battery forced a return to the charger",
        false,
        &[
            (
                0,
                40_000,
                3,
                "WARN",
                "battery_monitor",
                "Battery at 9%, aborting task to return to charger",
            ),
            (
                0,
                40_100,
                3,
                "INFO",
                "docking_server",
                "Returned to charger early because of low battery",
            ),
        ],
    ),
    (
        "wifi dropped in the freezer area",
        false,
        &[
            (
                1,
                6_500,
                6,
                "WARN",
                "wifi_manager",
                "Connection lost in freezer zone, buffering telemetry",
            ),
            (
                1,
                6_700,
                6,
                "INFO",
                "wifi_manager",
                "Reconnected after leaving freezer zone, 212 messages sent",
            ),
        ],
    ),
    (
        "arm collided with the rack",
        false,
        &[
            (
                2,
                21_500,
                2,
                "ERROR",
                "arm_controller",
                "Unexpected contact force 45 N, arm hit rack upright",
            ),
            (2, 21_530, 2, "WARN", "arm_controller", "Arm retracted after contact, pick skipped"),
        ],
    ),
    (
        "planner took too long to find a path",
        false,
        &[
            (
                0,
                17_500,
                1,
                "WARN",
                "planner_server",
                "Planning exceeded 2 s budget, using previous path",
            ),
            (
                0,
                17_600,
                1,
                "WARN",
                "planner_server",
                "Planner timed out twice in a row near packing station B",
            ),
        ],
    ),
    (
        "software update failed",
        false,
        &[
            (1, 3_000, 4, "ERROR", "updater", "Package download checksum mismatch, update aborted"),
            (1, 3_200, 4, "WARN", "updater", "Rolled back to previous release after failed update"),
        ],
    ),
    (
        "robot drove into a restricted zone",
        false,
        &[
            (
                2,
                54_000,
                3,
                "ERROR",
                "safety_monitor",
                "Keep-out zone violated near cross-dock lane 3, robot stopped",
            ),
            (
                2,
                54_100,
                3,
                "WARN",
                "planner_server",
                "Keep-out zone missing from local map, reloading",
            ),
        ],
    ),
    (
        "motor temperature too high on robot 8",
        true,
        &[
            (1, 58_000, 8, "WARN", "motor_driver", "Left drive motor at 88 C, derating torque"),
            (
                1,
                58_400,
                8,
                "ERROR",
                "motor_driver",
                "Left drive motor over temperature, drive disabled",
            ),
        ],
    ),
    (
        "camera image too dark",
        false,
        &[
            (
                0,
                56_000,
                2,
                "WARN",
                "camera_driver",
                "Exposure at maximum, image too dark for detection",
            ),
            (
                0,
                56_030,
                2,
                "WARN",
                "perception",
                "Detection confidence low in dark aisle, slowing down",
            ),
        ],
    ),
    (
        "robot waited a long time at the elevator",
        false,
        &[
            (
                2,
                29_000,
                6,
                "WARN",
                "elevator_bridge",
                "Elevator call not answered after 90 s, still waiting",
            ),
            (
                2,
                29_200,
                6,
                "INFO",
                "elevator_bridge",
                "Elevator arrived after 3 min wait, boarding",
            ),
        ],
    ),
    (
        "disk almost full, logs being deleted",
        false,
        &[
            (1, 60_000, 5, "WARN", "diagnostics", "Log partition 95% used, rotating old bags"),
            (1, 60_010, 5, "WARN", "log_rotator", "Deleted 14 old rosbag files to free space"),
        ],
    ),
];
