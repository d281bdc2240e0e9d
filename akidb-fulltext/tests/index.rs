//! The full-text index on real folders: BM25 ranking, filters inside the search, deletes, the
//! watermark across reopen, and everything that makes an open start afresh instead of failing.

use akidb_fulltext::{
    digest, FullTextError, FullTextIndex, Identity, KeywordQuery, Opened, MAX_QUERY_TERMS,
};

const ID: Identity = Identity { database_id: [7; 16], collection_id: 3 };

const LINES: &[&str] = &[
    "Robot halted near the loading dock, waiting for the safety field to clear (NAV_E042)",
    "No valid path to rack row 12: aisle 7 blocked by a pallet (NAV_E044)",
    "Goal to rack row 12 failed, requesting an alternative route (NAV_E044)",
    "Akku-Temperatur kritisch: 61 °C, Ladevorgang abgebrochen (BAT_E210)",
    "グリッパーの把持に失敗しました (ARM_E330)",
    "Pick completed: tote 4411 from aisle 4",
    "Heartbeat sent to fleet manager (latency 12 ms)",
    "Firmware v2.14.3 installed on lidar_driver",
];

fn open(dir: &std::path::Path, last_seq: u64) -> (FullTextIndex, Opened) {
    FullTextIndex::open(dir, ID, last_seq).expect("open")
}

/// An index of `LINES` under sequence numbers 1..=8, committed.
fn filled(dir: &std::path::Path) -> FullTextIndex {
    let (ix, _) = open(dir, 0);
    for (i, l) in LINES.iter().enumerate() {
        ix.add(i as u64 + 1, l).expect("add");
    }
    ix.commit(LINES.len() as u64).expect("commit");
    ix
}

fn search(ix: &FullTextIndex, q: &str, k: usize) -> Vec<u64> {
    let q = KeywordQuery::new(q).expect("query");
    ix.snapshot().search(&q, k, None).expect("search").into_iter().map(|(s, _)| s).collect()
}

#[test]
fn codes_parts_other_languages_and_numbers_are_found() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ix = filled(&tmp.path().join("ft"));
    let mut code = search(&ix, "NAV_E044", 10);
    code.truncate(2);
    code.sort_unstable();
    assert_eq!(code, [2, 3], "the two lines with the whole code first");
    assert_eq!(search(&ix, "nav_e042", 1), [1], "case folds");
    assert_eq!(search(&ix, "E042", 1), [1], "a part of the code finds it");
    assert_eq!(search(&ix, "akku temperatur", 1), [4]);
    assert_eq!(search(&ix, "Ladevorgang", 1), [4]);
    assert_eq!(search(&ix, "把持に失敗", 1), [5], "Japanese by bigrams");
    assert_eq!(search(&ix, "tote 4411", 1), [6]);
    assert_eq!(search(&ix, "v2.14.3", 1), [8]);
    assert!(search(&ix, "the of and", 10).is_empty(), "stop words alone match nothing");
    assert!(search(&ix, "?!?! ...", 10).is_empty());
    assert!(search(&ix, "zeppelin", 10).is_empty());
}

#[test]
fn query_syntax_in_user_text_is_text() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ix = filled(&tmp.path().join("ft"));
    for q in ["body:tote AND 4411", "\"tote 4411", "tote~2 4411^10", "(tote OR *) -4411"] {
        let hits = search(&ix, q, 10);
        assert_eq!(hits.first(), Some(&6), "{q}");
    }
    // No field syntax either: `seq:6` is the words seq and 6, in no line.
    assert!(search(&ix, "seq:6", 10).is_empty());
}

#[test]
fn the_filter_is_applied_inside_the_search_not_after() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (ix, _) = open(&tmp.path().join("ft"), 0);
    // 200 documents that match strongly (even) and 200 that match weakly (odd).
    for s in 1..=400u64 {
        let text = if s % 2 == 0 { "lidar timeout lidar timeout" } else { "lidar restarted" };
        ix.add(s, text).expect("add");
    }
    let snap = ix.commit(400).expect("commit");
    let q = KeywordQuery::new("lidar timeout").expect("query");
    let odd = |s: u64| s % 2 == 1;
    let hits = snap.search(&q, 10, Some(&odd)).expect("search");
    assert_eq!(hits.len(), 10, "k hits although the 200 best are filtered out");
    assert!(hits.iter().all(|(s, _)| s % 2 == 1));
    let all = snap.search(&q, 10, None).expect("search");
    assert!(all.iter().all(|(s, _)| s % 2 == 0));
    // Ties are broken by sequence number.
    let seqs: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=10).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn deletes_show_at_the_commit_and_snapshots_stay_as_they_were() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ix = filled(&tmp.path().join("ft"));
    let before = ix.snapshot();
    ix.delete(6);
    ix.add(9, "Pick completed: tote 4411 from aisle 9").expect("add");
    assert_eq!(search(&ix, "tote 4411", 10), [6], "nothing visible before the commit");
    ix.commit(9).expect("commit");
    assert_eq!(search(&ix, "tote 4411", 10), [9]);
    let q = KeywordQuery::new("tote 4411").expect("q");
    let old: Vec<u64> = before.search(&q, 10, None).expect("s").iter().map(|h| h.0).collect();
    assert_eq!(old, [6], "an earlier snapshot is unchanged");
}

#[test]
fn reopen_keeps_the_watermark_and_the_digests() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("ft");
    drop(filled(&dir));
    let (ix, opened) = open(&dir, 8);
    assert_eq!(opened, Opened::Loaded { covered_seq: 8 });
    let indexed = ix.indexed().expect("indexed");
    let expected: Vec<(u64, u64)> =
        LINES.iter().enumerate().map(|(i, l)| (i as u64 + 1, digest(l))).collect();
    assert_eq!(indexed, expected);
    assert_eq!(search(&ix, "NAV_E042", 1), [1]);
}

#[test]
fn a_foreign_newer_or_damaged_index_starts_afresh() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("ft");
    drop(filled(&dir));
    // Another database's index.
    let other = Identity { database_id: [8; 16], ..ID };
    let (_, opened) = FullTextIndex::open(&dir, other, 8).expect("open");
    assert!(matches!(opened, Opened::Fresh { .. }), "{opened:?}");
    // Storage older than the index (restored from a copy).
    drop(filled(&dir));
    let (ix, opened) = open(&dir, 7);
    assert!(matches!(&opened, Opened::Fresh { reason } if reason.contains("storage ends")));
    assert!(ix.indexed().expect("indexed").is_empty());
    drop(ix);
    // A byte changed in every segment file: checksums fail.
    drop(filled(&dir));
    let mut damaged = 0;
    for e in std::fs::read_dir(&dir).expect("dir").flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".idx") || name.ends_with(".term") {
            let mut bytes = std::fs::read(e.path()).expect("read");
            bytes[0] ^= 0xff;
            std::fs::write(e.path(), bytes).expect("write");
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    let (ix, opened) = open(&dir, 8);
    assert!(
        matches!(&opened, Opened::Fresh { reason } if reason.contains("damaged")),
        "{opened:?}"
    );
    assert!(search(&ix, "NAV_E042", 1).is_empty());
    drop(ix);
    // Garbage meta file.
    drop(filled(&dir));
    std::fs::write(dir.join("meta.json"), b"{not json").expect("write");
    let (_, opened) = open(&dir, 8);
    assert!(matches!(opened, Opened::Fresh { .. }));
    // A plain file where the folder should be.
    std::fs::remove_dir_all(&dir).expect("rm");
    std::fs::write(&dir, b"x").expect("write");
    let (ix, opened) = open(&dir, 8);
    assert!(matches!(opened, Opened::Fresh { .. }));
    assert!(dir.is_dir());
    ix.add(1, "after").expect("add");
    ix.commit(1).expect("commit");
}

#[test]
fn a_symlink_in_place_of_the_folder_is_removed_and_its_target_left_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let target = tmp.path().join("elsewhere");
    drop(filled(&target));
    let before: Vec<_> =
        std::fs::read_dir(&target).expect("dir").flatten().map(|e| e.path()).collect();
    let dir = tmp.path().join("ft");
    std::os::unix::fs::symlink(&target, &dir).expect("symlink");
    let (ix, opened) = open(&dir, 8);
    assert!(matches!(opened, Opened::Fresh { .. }), "{opened:?}");
    assert!(!std::fs::symlink_metadata(&dir).expect("meta").file_type().is_symlink());
    ix.add(1, "mine").expect("add");
    ix.commit(1).expect("commit");
    let after: Vec<_> =
        std::fs::read_dir(&target).expect("dir").flatten().map(|e| e.path()).collect();
    assert_eq!(before.len(), after.len(), "the link's target is untouched");
}

#[test]
fn huge_queries_are_refused_and_long_ones_work() {
    let many: String = (0..10_000).map(|i| format!("w{i} ")).collect();
    assert!(matches!(
        KeywordQuery::new(&many),
        Err(FullTextError::TooManyTerms { terms: 10_000, max: MAX_QUERY_TERMS })
    ));
    // Repetition is not distinctness: a 10,000-word query of few terms is fine.
    let repeated = "lidar timeout ".repeat(5_000);
    assert_eq!(KeywordQuery::new(&repeated).expect("query").terms(), ["lidar", "timeout"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let ix = filled(&tmp.path().join("ft"));
    let long: String = (0..MAX_QUERY_TERMS - 3).map(|i| format!("w{i} ")).collect();
    assert_eq!(search(&ix, &format!("{long} NAV_E042"), 1), [1]);
}
