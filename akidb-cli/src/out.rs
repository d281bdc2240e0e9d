//! What the command prints: aligned tables and plain lines for people (bold headers only on a
//! terminal, and never with `NO_COLOR` set), or one JSON document with `--json`. Results go to
//! standard output; progress and errors to standard error.

use std::io::{IsTerminal, Write};

use serde_json::Value;

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// One JSON document instead of text.
    pub json: bool,
    color: bool,
}

impl Out {
    /// Human output unless `json`; styled only on a terminal without `NO_COLOR`.
    pub fn new(json: bool) -> Self {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { json, color }
    }

    /// Prints `value` as pretty JSON.
    pub fn json(&self, value: &Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
        line(&text);
    }

    /// `text` in bold when styling is on.
    pub fn bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// `text` dimmed when styling is on.
    pub fn dim(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[2m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A table: a bold header row, then the rows, columns padded to their widest cell (the
    /// last column is not padded). Nothing but the header when there are no rows.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for r in rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let render = |cells: Vec<String>, style: &dyn Fn(&str) -> String| {
            let last = cells.len().saturating_sub(1);
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i == last {
                    s.push_str(&style(cell));
                } else {
                    let pad = w - cell.chars().count();
                    s.push_str(&style(cell));
                    s.push_str(&" ".repeat(pad + 2));
                }
            }
            s
        };
        line(&render(header.iter().map(|h| h.to_string()).collect(), &|c| self.bold(c)));
        for r in rows {
            line(&render(r.clone(), &|c| c.to_string()));
        }
    }
}

/// One line on standard output; a closed pipe (`akidb ... | head`) ends the process quietly.
pub fn line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{text}").is_err() {
        std::process::exit(0);
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
