//! Text to terms: one rule for documents and queries.
//!
//! - **Case and accents fold**: NFKC first (full-width `ＮＡＶ` is `NAV`), then lower case, then
//!   Latin letters lose their accents (`Störung` matches `storung`), `ß` is `ss`.
//! - **Codes stay whole, and their parts count too**: letters and digits joined by `_ - . / :`
//!   form one compound term (`NAV_E042` -> `nav_e042`, `v2.14.3` -> `v2.14.3`), and each part
//!   is a term of its own at the same position (`nav`, `e042`; `v2`, `14`, `3`). A query for the
//!   code ranks documents with the whole code first; a query for a part still finds them.
//! - **CJK by character bigrams**: a run of Han, kana or Hangul becomes its overlapping pairs
//!   (`温度が高い` -> `温度 度が が高 高い`; a lone character is its own term): Japanese,
//!   Chinese and Korean are written without spaces, and bigrams need no dictionary.
//! - **Stop words** (a short English and German list) are dropped from documents and queries
//!   alike, so a question that shares only `the` or `der` with a line does not match it.
//! - Terms longer than [`MAX_TERM_BYTES`] (hashes, base64) are dropped; a compound that long
//!   keeps its parts.
//!
//! The rule is versioned ([`TOKENIZER_VERSION`]): an index written under another version is
//! rebuilt on open.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};
use unicode_normalization::UnicodeNormalization;

/// Version of the rule above; part of every index's commit payload.
pub const TOKENIZER_VERSION: u32 = 1;
/// Longest term kept, in bytes.
pub const MAX_TERM_BYTES: usize = 64;

/// Calls `emit` with each term of `text`, in order, with its position (a compound's parts share
/// the compound's position).
pub fn for_each_term(text: &str, mut emit: impl FnMut(&str, usize)) {
    let mut t = Terms { word: String::new(), parts: Vec::new(), joiner: false, cjk: Vec::new() };
    let mut position = 0usize;
    for c in text.nfkc() {
        if is_cjk(c) {
            t.flush_word(&mut position, &mut emit);
            t.cjk.push(c);
            continue;
        }
        t.flush_cjk(&mut position, &mut emit);
        if c.is_alphanumeric() {
            if t.joiner && !t.word.is_empty() {
                t.parts.push(t.word.len());
            }
            t.joiner = false;
            fold(c, &mut t.word);
        } else if is_joiner(c) && !t.word.is_empty() && !t.joiner {
            t.joiner = true;
            t.word.push(c);
        } else {
            t.flush_word(&mut position, &mut emit);
        }
    }
    t.flush_word(&mut position, &mut emit);
    t.flush_cjk(&mut position, &mut emit);
}

/// The terms of `text`, in order (duplicates kept).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |t, _| out.push(t.to_string()));
    out
}

struct Terms {
    /// The compound being read, folded; parts start at the offsets in `parts` (after 0).
    word: String,
    parts: Vec<usize>,
    /// The last character was a joiner (kept in `word` until a letter or digit follows).
    joiner: bool,
    cjk: Vec<char>,
}

impl Terms {
    fn flush_word(&mut self, position: &mut usize, emit: &mut impl FnMut(&str, usize)) {
        if self.joiner {
            self.word.pop();
            self.joiner = false;
        }
        if self.word.is_empty() {
            return;
        }
        if self.parts.is_empty() {
            if !is_stop_word(&self.word) && self.word.len() <= MAX_TERM_BYTES {
                emit(&self.word, *position);
            }
        } else {
            if self.word.len() <= MAX_TERM_BYTES {
                emit(&self.word, *position);
            }
            let mut start = 0;
            for end in self.parts.iter().copied().chain(std::iter::once(self.word.len() + 1)) {
                // Each part ends one byte (its ASCII joiner) before the next begins.
                let part = &self.word[start..end - 1];
                if !part.is_empty() && part.len() <= MAX_TERM_BYTES && !is_stop_word(part) {
                    emit(part, *position);
                }
                start = end;
            }
        }
        *position += 1;
        self.word.clear();
        self.parts.clear();
    }

    fn flush_cjk(&mut self, position: &mut usize, emit: &mut impl FnMut(&str, usize)) {
        let mut buf = String::new();
        match self.cjk.len() {
            0 => return,
            1 => {
                buf.push(self.cjk[0]);
                emit(&buf, *position);
                *position += 1;
            }
            _ => {
                for pair in self.cjk.windows(2) {
                    buf.clear();
                    buf.extend(pair);
                    emit(&buf, *position);
                    *position += 1;
                }
            }
        }
        self.cjk.clear();
    }
}

/// Characters that join the parts of a code (all ASCII: a part ends one byte before the next).
fn is_joiner(c: char) -> bool {
    matches!(c, '_' | '-' | '.' | '/' | ':')
}

/// Han, kana, Hangul: scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF // Hiragana, Katakana
        | 0x31F0..=0x31FF // Katakana phonetic extensions
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0x1100..=0x11FF // Hangul jamo
        | 0x3130..=0x318F // Hangul compatibility jamo
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0x20000..=0x2A6DF) // CJK extension B
}

/// Appends `c` lower-cased, a Latin letter without its accents.
fn fold(c: char, out: &mut String) {
    for l in c.to_lowercase() {
        match l {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'þ' => out.push_str("th"),
            'ø' => out.push('o'),
            'đ' | 'ð' => out.push('d'),
            'ł' => out.push('l'),
            'ı' => out.push('i'),
            // Latin-1 Supplement to Latin Extended-B, Latin Extended Additional.
            l if matches!(l as u32, 0xC0..=0x24F | 0x1E00..=0x1EFF) => {
                decompose_canonical(l, |d| {
                    if !is_combining_mark(d) {
                        out.push(d);
                    }
                });
            }
            // Combining diacritics a lower-casing left (`İ` -> `i` + U+0307).
            l if matches!(l as u32, 0x300..=0x36F) => {}
            l => out.push(l),
        }
    }
}

fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// English and German function words, folded as documents are, sorted. Negations (`no`, `not`,
/// `nicht`, `kein`) are kept: in logs they carry the meaning (`no scan received`).
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "al", "als", "am", "an", "and", "are", "as", "at", "auf", "aus", "be",
    "been", "bei", "bin", "bis", "but", "by", "da", "das", "dass", "dem", "den", "der", "des",
    "did", "die", "do", "does", "du", "durch", "ein", "eine", "einem", "einen", "einer", "eines",
    "er", "es", "for", "from", "fur", "had", "has", "have", "he", "her", "his", "how", "i", "ich",
    "ihr", "im", "in", "into", "is", "ist", "it", "its", "mit", "nach", "of", "on", "or", "our",
    "she", "sich", "sie", "sind", "so", "some", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "to", "uber", "um", "und", "uns", "vom", "von", "vor", "war",
    "was", "we", "were", "what", "when", "where", "which", "who", "why", "wie", "will", "wir",
    "wird", "with", "would", "you", "your", "zu", "zum", "zur",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_and_folded() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        for w in STOP_WORDS {
            assert_eq!(terms(w), Vec::<String>::new(), "{w}");
        }
    }

    #[test]
    fn codes_stay_whole_and_their_parts_count() {
        assert_eq!(
            terms("Robot halted (NAV_E042)"),
            ["robot", "halted", "nav_e042", "nav", "e042"]
        );
        assert_eq!(terms("nav_e042"), terms("NAV_E042"));
        assert_eq!(terms("firmware v2.14.3."), ["firmware", "v2.14.3", "v2", "14", "3"]);
        assert_eq!(terms("[robot_3.controller_server]:"), {
            ["robot_3.controller_server", "robot", "3", "controller", "server"]
        });
        assert_eq!(terms("/wms_bridge: Task 132"), ["wms_bridge", "wms", "bridge", "task", "132"]);
        assert_eq!(terms("tote 4411"), ["tote", "4411"]);
        // A joiner that joins nothing is a separator.
        assert_eq!(terms("stopped. Then - again_"), ["stopped", "again"]);
    }

    #[test]
    fn case_width_and_accents_fold() {
        assert_eq!(terms("Störung"), terms("storung"));
        assert_eq!(terms("ÜBERHITZUNG"), ["uberhitzung"]);
        assert_eq!(terms("Straße Œuvre Ålesund"), ["strasse", "oeuvre", "alesund"]);
        assert_eq!(terms("ＮＡＶ＿Ｅ０４２"), terms("NAV_E042"));
        assert_eq!(terms("Ωmega Привет"), ["ωmega", "привет"]);
    }

    #[test]
    fn cjk_runs_become_bigrams_and_kana_keep_their_marks() {
        assert_eq!(terms("温度が高い"), ["温度", "度が", "が高", "高い"]);
        assert_eq!(terms("バッテリー"), ["バッ", "ッテ", "テリ", "リー"]);
        assert_eq!(terms("が"), ["が"]);
        assert_ne!(terms("が"), terms("か"), "a voiced kana is another kana");
        assert_eq!(terms("ロボット3が停止"), ["ロボ", "ボッ", "ット", "3", "が停", "停止"]);
        assert_eq!(terms("배터리"), ["배터", "터리"]);
    }

    #[test]
    fn positions_advance_per_word_and_parts_share_theirs() {
        let mut seen = Vec::new();
        for_each_term("lidar NAV_E042 停止した", |t, p| seen.push((t.to_string(), p)));
        let positions: Vec<usize> = seen.iter().map(|(_, p)| *p).collect();
        assert_eq!(positions, [0, 1, 1, 1, 2, 3, 4]);
    }

    #[test]
    fn long_terms_are_dropped_but_compound_parts_stay() {
        let hash = "f".repeat(MAX_TERM_BYTES + 1);
        assert_eq!(terms(&format!("digest {hash}")), ["digest"]);
        let long = format!("{}_{}", "a".repeat(40), "b".repeat(40));
        assert_eq!(terms(&long), ["a".repeat(40), "b".repeat(40)]);
    }

    #[test]
    fn punctuation_and_control_characters_make_no_terms() {
        assert!(terms("!!! ??? ... --- ::: \u{0} \u{7f} \t\r\n").is_empty());
        assert!(terms("").is_empty());
        assert!(terms("the and of").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_text_tokenizes_without_panicking(s in ".{0,200}") {
            for t in terms(&s) {
                proptest::prop_assert!(!t.is_empty() && t.len() <= MAX_TERM_BYTES);
                let again = terms(&t);
                proptest::prop_assert_eq!(again.first(), Some(&t));
            }
        }
    }
}
