//! Tidy: the crate reads its own source and refuses architecture and style violations.
//!
//! In the spirit of `TigerBeetle`'s `src/tidy.zig` and glommio's `tests/linters.rs`, this test
//! walks `src/`, `tests/`, `benches/` and `perf/` and enforces what neither rustc nor clippy
//! can see:
//!
//! - Layers. Every top-level module of `src/` is a layer (see [`LAYERS`]) and may name, through
//!   `crate::`, `klein::` or enough `super::`, only itself and the layers it lists. The lower
//!   layers must stay testable without a runtime, and the server reaches the replicated core
//!   only through the embedded API.
//! - glommio is named only in `src/runtime/`, so replacing or faking the runtime touches one
//!   directory.
//! - The consensus core and the state machine are deterministic: no clocks, randomness, files,
//!   sockets, threads or processes, so the simulator can replay any run from a seed.
//! - Source is ASCII, lines are at most 100 characters, and a TODO(owner) or FIXME(issue 12)
//!   comment always names an owner or an issue.
//! - Every binary uses mimalloc as its global allocator, and every top-level module begins
//!   with a `//!` doc comment that says what it owns.
//!
//! A small lexer blanks comments and string/char literals (keeping line numbers) before the
//! code rules run, so documentation may talk about `Instant` or glommio freely. Every rule has
//! a test below that proves it fires, and one that proves the allowed case passes.

use std::fmt;
use std::fs;
use std::path::Path;

/// The longest line allowed, in characters (the same as rustfmt's `max_width`).
const LINE_LENGTH_MAX: usize = 100;

/// One layer: a top-level module of `src/` and the crate paths it may name.
struct Layer {
    name: &'static str,
    level: &'static str,
    /// Crate paths this layer may use, as prefixes: `"runtime::shard"` allows
    /// `crate::runtime::shard::Shard` but not `crate::runtime::Executor`.
    allowed: &'static [&'static str],
}

/// The layers, lowest first. A path into a layer that is not listed is a wrong arrow.
const LAYERS: &[Layer] = &[
    Layer { name: "constants", level: "0", allowed: &[] },
    Layer { name: "types", level: "0", allowed: &["constants"] },
    Layer { name: "config", level: "0", allowed: &["constants", "types"] },
    Layer { name: "consensus", level: "1", allowed: &["constants", "types"] },
    Layer { name: "log", level: "1", allowed: &["constants", "types"] },
    Layer { name: "state_machine", level: "1", allowed: &["constants", "types"] },
    Layer { name: "wire", level: "2", allowed: &["constants", "types", "consensus"] },
    Layer {
        name: "runtime",
        level: "3",
        allowed: &["constants", "types", "config", "consensus", "log", "state_machine", "wire"],
    },
    Layer {
        name: "embedded",
        level: "4",
        allowed: &[
            "constants",
            "types",
            "config",
            "consensus",
            "log",
            "state_machine",
            "wire",
            "runtime",
        ],
    },
    Layer {
        name: "server",
        level: "5",
        allowed: &["constants", "types", "config", "embedded", "runtime", "wire"],
    },
    // The load generator is a client of the server over TCP: it may not use the server's code.
    Layer { name: "loadgen", level: "tool", allowed: &[] },
    // The operator's client (`klein admin`) talks RESP to a node over TCP, like loadgen.
    Layer { name: "admin", level: "tool", allowed: &[] },
    // The history checkers judge Klein from the outside, through what clients saw.
    Layer { name: "jepsen", level: "tool", allowed: &["constants"] },
    Layer {
        name: "sim",
        level: "sim",
        allowed: &[
            "constants",
            "types",
            "config",
            "consensus",
            "log",
            "state_machine",
            "wire",
            "runtime::shard",
        ],
    },
];

/// Layers that must be deterministic, so the simulator can replay them from a seed.
const DETERMINISTIC_LAYERS: &[&str] = &["consensus", "state_machine"];

/// Identifiers the deterministic layers may not name (whole identifiers only).
const NONDETERMINISTIC_IDENTS: &[&str] = &[
    "Instant",
    "SystemTime",
    "rand",
    "getrandom",
    "fastrand",
    "File",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "UnixStream",
    "tokio",
    "io_uring",
    "libc",
    "rustix",
];

/// Paths the deterministic layers may not name, matched as consecutive segments anywhere in a
/// path, after grouped `use` trees are expanded (`use std::{fs, io::stdout}` names both).
const NONDETERMINISTIC_PATHS: &[&str] = &[
    "std::time",
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "std::env",
    "io::stdin",
    "io::stdout",
];

/// Keywords, which never start a path; `crate`, `self`, `super` and `Self` are not here.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "yield",
];

/// Directories never walked: build output, VCS data, fuzz corpora (binary inputs: cargo
/// fuzz's `corpus` and `artifacts`, and `tests/fuzz-corpus` of `tests/fuzz_log.rs`) and the npm
/// packages `.ci/clients` installs for `tests/clients.rs`.
const SKIPPED_DIRS: &[&str] = &["target", "corpus", "artifacts", "fuzz-corpus", "node_modules"];

/// One broken rule, printed as `path:line: rule: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    path: String,
    line: usize,
    rule: &'static str,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.path, self.line, self.rule, self.message)
    }
}

/// Collects the violations of one file.
struct Report<'a> {
    path: &'a str,
    violations: Vec<Violation>,
}

impl Report<'_> {
    fn push(&mut self, line: usize, rule: &'static str, message: String) {
        let path = self.path.to_string();
        self.violations.push(Violation { path, line, rule, message });
    }
}

// ---------------------------------------------------------------------------------------------
// The checker.
// ---------------------------------------------------------------------------------------------

/// Checks one file. `path` is relative to the crate root with `/` separators
/// (`"src/server/mod.rs"`); it decides which rules apply.
fn check_file(path: &str, text: &str) -> Vec<Violation> {
    let mut report = Report { path, violations: Vec::new() };
    check_ascii(&mut report, text);
    if is_rust(path) {
        check_line_length(&mut report, text);
        let stripped = strip(text);
        check_todo(&mut report, &stripped.comments);
        let tokens = tokenize(&stripped.code);
        let paths = collect_paths(&tokens, module_depth(path));
        if path != "tests/tidy.rs" && !path.starts_with("src/runtime/") {
            check_glommio(&mut report, &tokens);
        }
        if let Some(name) = layer_name(path) {
            match LAYERS.iter().find(|layer| layer.name == name) {
                Some(layer) => check_layers(&mut report, layer, &paths),
                None => report.push(
                    1,
                    "layers",
                    format!(
                        "`{name}` is not a known layer; add it to LAYERS in tests/tidy.rs \
                         with the layers it may use"
                    ),
                ),
            }
            if DETERMINISTIC_LAYERS.contains(&name) {
                check_determinism(&mut report, name, &tokens, &paths);
            }
        }
        if is_binary_root(path) {
            check_allocator(&mut report, &stripped.code, &paths);
        }
        if is_module_root(path) {
            check_module_doc(&mut report, text);
        }
    }
    let mut violations = report.violations;
    violations.sort();
    violations.dedup();
    violations
}

/// Checks every file under `src/`, `tests/`, `benches/` and `perf/` (only `.rs` files there),
/// plus the checks that need the whole tree.
fn check_tree(root: &Path) -> Vec<Violation> {
    let files = source_files(root);
    let mut violations = Vec::new();
    if !files.iter().any(|file| file == "src/lib.rs") {
        violations.push(Violation {
            path: "src/lib.rs".to_string(),
            line: 1,
            rule: "tree",
            message: "not found: tidy is not looking at the crate".to_string(),
        });
    }
    for file in &files {
        match fs::read(root.join(file)) {
            Ok(bytes) => violations.extend(check_file(file, &String::from_utf8_lossy(&bytes))),
            Err(error) => violations.push(Violation {
                path: file.clone(),
                line: 1,
                rule: "tree",
                message: format!("cannot read: {error}"),
            }),
        }
    }
    // A module directory without its module file would slip past the module doc rule.
    for file in &files {
        let Some(rest) = file.strip_prefix("src/") else { continue };
        let Some((dir, _)) = rest.split_once('/') else { continue };
        let mod_rs = format!("src/{dir}/mod.rs");
        let dir_rs = format!("src/{dir}.rs");
        let has_module_file = files.iter().any(|file| *file == mod_rs || *file == dir_rs);
        let reported = violations.iter().any(|v| v.path == mod_rs && v.rule == "module-doc");
        if dir != "bin" && !has_module_file && !reported {
            violations.push(Violation {
                path: mod_rs,
                line: 1,
                rule: "module-doc",
                message: format!("module `{dir}` has neither src/{dir}/mod.rs nor src/{dir}.rs"),
            });
        }
    }
    violations
}

/// Every file tidy checks, relative to `root`, sorted.
fn source_files(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for top in ["src", "tests", "benches", "perf"] {
        walk(root, &root.join(top), &mut files);
    }
    files.retain(|file| !file.starts_with("perf/") || is_rust(file));
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden files and editor backups (`.x.rs.swp`, `x.rs~`) are not source.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        if kind.is_dir() && !SKIPPED_DIRS.contains(&name.as_str()) {
            walk(root, &path, files);
        } else if kind.is_file()
            && let Ok(relative) = path.strip_prefix(root)
        {
            let parts: Vec<_> = relative.iter().map(|part| part.to_string_lossy()).collect();
            files.push(parts.join("/"));
        }
    }
}

/// The layer of a file: its first path component under `src/`. `None` outside `src/` and for
/// the top (`src/lib.rs`, `src/main.rs`, `src/bin/`), which may use every layer.
fn layer_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "bin")).then_some(name)
}

/// How many modules deep a file's module is below the crate root (`src/server/mod.rs` is 1,
/// `src/server/session.rs` is 2), so that enough `super::` can be seen to reach the root.
fn module_depth(path: &str) -> usize {
    let Some(rest) = path.strip_prefix("src/") else { return 0 };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["lib.rs" | "main.rs"] => 0,
        [.., "mod.rs"] => parts.len() - 1,
        _ => parts.len(),
    }
}

/// Whether `path` is Rust source (`.rs`, as cargo spells it).
fn is_rust(path: &str) -> bool {
    Path::new(path).extension().is_some_and(|extension| extension == "rs")
}

/// `src/main.rs` and every `src/bin/*.rs` (or `src/bin/*/main.rs`).
fn is_binary_root(path: &str) -> bool {
    path == "src/main.rs"
        || path.strip_prefix("src/bin/").is_some_and(|rest| {
            (!rest.contains('/') && is_rust(rest)) || rest.ends_with("/main.rs")
        })
}

/// `src/<layer>/mod.rs` or `src/<name>.rs`, other than `src/lib.rs` and `src/main.rs`.
fn is_module_root(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("src/") else { return false };
    match rest.split_once('/') {
        None => is_rust(rest) && rest != "lib.rs" && rest != "main.rs",
        Some((dir, file)) => dir != "bin" && file == "mod.rs",
    }
}

fn check_ascii(report: &mut Report<'_>, text: &str) {
    for (index, line) in text.split('\n').enumerate() {
        if let Some(column) = line.bytes().position(|byte| !byte.is_ascii()) {
            let byte = line.as_bytes()[column];
            let column = column + 1;
            report.push(
                index + 1,
                "ascii",
                format!("non-ASCII byte 0x{byte:02X} at column {column}"),
            );
            return;
        }
    }
}

fn check_line_length(report: &mut Report<'_>, text: &str) {
    for (index, line) in text.lines().enumerate() {
        let length = line.chars().count();
        if length > LINE_LENGTH_MAX {
            report.push(
                index + 1,
                "line-length",
                format!("{length} characters, more than {LINE_LENGTH_MAX}"),
            );
        }
    }
}

/// A TODO(owner) or FIXME(issue 12) comment names who or what; a bare marker is refused.
fn check_todo(report: &mut Report<'_>, comments: &str) {
    for (index, line) in comments.lines().enumerate() {
        for marker in ["TODO", "FIXME"] {
            for (at, _) in line.match_indices(marker) {
                let before = line[..at].chars().next_back();
                let after = &line[at + marker.len()..];
                let is_word = !before.is_some_and(is_ident_char)
                    && !after.chars().next().is_some_and(is_ident_char);
                let has_owner = after
                    .strip_prefix('(')
                    .and_then(|inside| inside.find(')'))
                    .is_some_and(|close| close > 0);
                if is_word && !has_owner {
                    report.push(
                        index + 1,
                        "todo",
                        format!(
                            "`{marker}` must name an owner or issue, like `{marker}(issue 12):`"
                        ),
                    );
                }
            }
        }
    }
}

fn check_glommio(report: &mut Report<'_>, tokens: &[Token]) {
    for token in tokens {
        if matches!(&token.tok, Tok::Ident(word) if word == "glommio") {
            report.push(
                token.line,
                "glommio",
                "glommio is named only in src/runtime/; go through the runtime layer".to_string(),
            );
        }
    }
}

fn check_layers(report: &mut Report<'_>, layer: &Layer, paths: &[PathRef]) {
    for path in paths {
        let Some(rest) = crate_relative(path) else { continue };
        let names: Vec<&str> = rest.iter().map(|(name, _)| name.as_str()).collect();
        let allowed = layer.allowed.iter().any(|entry| {
            let prefix: Vec<&str> = entry.split("::").collect();
            names.starts_with(&prefix)
        });
        if names[0] == layer.name || allowed {
            continue;
        }
        let written = path.names().join("::");
        let may = match layer.allowed {
            [] => "nothing in the crate".to_string(),
            allowed => allowed.join(", "),
        };
        report.push(
            rest[0].1,
            "layers",
            format!(
                "`{}` (level {}) may not use `{written}`; it may use only: {may}",
                layer.name, layer.level
            ),
        );
    }
}

/// The segments after the crate root if `path` goes through it (`crate::`, `$crate::`,
/// `klein::` or as many `super::` as the module is deep), else `None`.
fn crate_relative(path: &PathRef) -> Option<&[(String, usize)]> {
    let rest = match path.segments.first()?.0.as_str() {
        "crate" | "klein" => &path.segments[1..],
        "super" => {
            let supers = path.segments.iter().take_while(|(name, _)| name == "super").count();
            if supers < path.depth {
                return None;
            }
            &path.segments[supers..]
        }
        _ => return None,
    };
    match rest.first() {
        Some((name, _)) if name != "self" => Some(rest),
        _ => None,
    }
}

fn check_determinism(report: &mut Report<'_>, layer: &str, tokens: &[Token], paths: &[PathRef]) {
    let mut refuse = |line: usize, what: &str| {
        report.push(
            line,
            "determinism",
            format!(
                "`{what}` is a clock, randomness, file, socket, thread or process API; \
                 `{layer}` must stay deterministic so the simulator can replay it"
            ),
        );
    };
    for token in tokens {
        if let Tok::Ident(word) = &token.tok
            && NONDETERMINISTIC_IDENTS.contains(&word.as_str())
        {
            refuse(token.line, word);
        }
    }
    for path in paths {
        let names = path.names();
        for pattern in NONDETERMINISTIC_PATHS {
            let wanted: Vec<&str> = pattern.split("::").collect();
            if let Some(at) = names.windows(wanted.len()).position(|window| window == wanted) {
                refuse(path.segments[at].1, pattern);
            }
        }
    }
}

fn check_allocator(report: &mut Report<'_>, code: &str, paths: &[PathRef]) {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let has_attribute = compact.contains("#[global_allocator]");
    let has_mimalloc = paths
        .iter()
        .any(|path| path.names().windows(2).any(|pair| pair == ["mimalloc", "MiMalloc"]));
    if !has_attribute || !has_mimalloc {
        report.push(
            1,
            "allocator",
            "a binary must declare `#[global_allocator] static GLOBAL: mimalloc::MiMalloc = \
             mimalloc::MiMalloc;`"
                .to_string(),
        );
    }
}

fn check_module_doc(report: &mut Report<'_>, text: &str) {
    let first = text.lines().enumerate().find(|(_, line)| !line.trim().is_empty());
    match first {
        Some((_, line)) if line.trim_start().starts_with("//!") => {}
        Some((index, _)) => report.push(
            index + 1,
            "module-doc",
            "a top-level module must begin with a `//!` doc comment".to_string(),
        ),
        None => report.push(1, "module-doc", "empty module: no `//!` doc comment".to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The lexer: blank comments and literals, tokenize the rest, and expand paths.
// ---------------------------------------------------------------------------------------------

/// A file's text twice, with the same lines and columns: `code` has comments and literals
/// blanked, `comments` has everything but comments blanked.
struct Stripped {
    code: String,
    comments: String,
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn strip(text: &str) -> Stripped {
    let chars: Vec<char> = text.chars().collect();
    let mut code = chars.clone();
    let mut comments: Vec<char> =
        chars.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }).collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        let starts_word = i == 0 || !is_ident_char(chars[i - 1]);
        let (end, is_comment) = if c == '/' && next == Some('/') {
            let end = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |n| i + n);
            (end, true)
        } else if c == '/' && next == Some('*') {
            (block_comment_end(&chars, i), true)
        } else if let Some(end) = literal_end(&chars, i, starts_word) {
            (end, false)
        } else {
            // Skip a whole word, so a string prefix is only looked for at a word's start.
            i += 1;
            while is_ident_char(c) && chars.get(i).is_some_and(|&c| is_ident_char(c)) {
                i += 1;
            }
            continue;
        };
        for (k, &ch) in chars.iter().enumerate().take(end).skip(i) {
            if ch != '\n' {
                code[k] = ' ';
                if is_comment {
                    comments[k] = ch;
                }
            }
        }
        i = end;
    }
    Stripped { code: code.into_iter().collect(), comments: comments.into_iter().collect() }
}

/// The end of a nested `/* */` comment starting at `i`.
fn block_comment_end(chars: &[char], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < chars.len() {
        match (chars[j], chars.get(j + 1)) {
            ('/', Some('*')) => {
                depth += 1;
                j += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return j;
                }
            }
            _ => j += 1,
        }
    }
    chars.len()
}

/// The end of a string or char literal starting at `i` (with its `b`, `c`, `r`, `br`, `cr`
/// prefix and `#`s), or `None` if none starts there: a lifetime or label like `'a` is code.
fn literal_end(chars: &[char], i: usize, starts_word: bool) -> Option<usize> {
    let at = |k: usize| chars.get(k).copied();
    match chars[i] {
        '"' => Some(quoted_end(chars, i + 1)),
        '\'' => char_end(chars, i),
        'b' | 'c' | 'r' if starts_word => {
            let mut j = i;
            if chars[i] != 'r' {
                j += 1;
                match at(j) {
                    Some('\'') if chars[i] == 'b' => return char_end(chars, j),
                    Some('"') => return Some(quoted_end(chars, j + 1)),
                    Some('r') => {}
                    _ => return None,
                }
            }
            j += 1;
            let hashes_start = j;
            while at(j) == Some('#') {
                j += 1;
            }
            // `r#match` is a raw identifier, not a raw string.
            (at(j) == Some('"')).then(|| raw_end(chars, j + 1, j - hashes_start))
        }
        _ => None,
    }
}

/// The end of a `"..."` body starting at `i`, past its closing quote.
fn quoted_end(chars: &[char], mut i: usize) -> usize {
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The end of a raw string body starting at `i`, closed by `"` and `hashes` `#`s.
fn raw_end(chars: &[char], mut i: usize, hashes: usize) -> usize {
    while let Some(&c) = chars.get(i) {
        if c == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    chars.len()
}

/// The end of a char literal at the `'` at `i`: `'x'` or `'\...'`. `None` for `'a` and
/// `'static`, which are lifetimes or labels.
fn char_end(chars: &[char], i: usize) -> Option<usize> {
    match (chars.get(i + 1), chars.get(i + 2)) {
        (Some('\\'), _) => {
            let close =
                chars.iter().skip(i + 3).take_while(|&&c| c != '\n').position(|&c| c == '\'');
            close.map(|n| i + 3 + n + 1)
        }
        (Some(&c), Some('\'')) if c != '\'' && c != '\n' => Some(i + 3),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Tokens of blanked code: identifiers (raw ones without `r#`), `::`, braces, commas and `*`.
/// Numbers and lifetimes are dropped; every other character is `Other`.
fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let word_end = |mut i: usize| {
        while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
            i += 1;
        }
        i
    };
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            // Char literals are blanked already: this is a lifetime or a label.
            i = word_end(i + 1);
        } else if is_ident_char(c) {
            let start = i;
            i = word_end(i);
            if c.is_ascii_digit() {
                continue;
            }
            let mut word: String = chars[start..i].iter().collect();
            if word == "r" && chars.get(i) == Some(&'#') {
                let start = i + 1;
                i = word_end(start);
                word = chars[start..i].iter().collect();
            }
            tokens.push(Token { tok: Tok::Ident(word), line });
        } else {
            let tok = match c {
                ':' if chars.get(i + 1) == Some(&':') => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '*' => Tok::Star,
                _ => Tok::Other,
            };
            i += 1;
            tokens.push(Token { tok, line });
        }
    }
    tokens
}

/// A path as written, one entry per segment with its line, and the module depth it was
/// written at (the file's depth plus enclosing inline `mod x { ... }`).
#[derive(Debug)]
struct PathRef {
    segments: Vec<(String, usize)>,
    depth: usize,
}

impl PathRef {
    fn names(&self) -> Vec<&str> {
        self.segments.iter().map(|(name, _)| name.as_str()).collect()
    }
}

/// Every path in the tokens, with grouped `use` trees expanded: `use crate::{a, b::{c, d}}`
/// gives `crate::a`, `crate::b::c` and `crate::b::d`.
fn collect_paths(tokens: &[Token], file_depth: usize) -> Vec<PathRef> {
    let mut paths = Vec::new();
    let mut braces = 0usize;
    let mut inline_modules: Vec<usize> = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        match &token.tok {
            Tok::Open => {
                braces += 1;
                if i >= 2 && is_word(&tokens[i - 2], Some("mod")) && is_word(&tokens[i - 1], None) {
                    inline_modules.push(braces);
                }
                i += 1;
            }
            Tok::Close => {
                if inline_modules.last() == Some(&braces) {
                    inline_modules.pop();
                }
                braces = braces.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(word) if !KEYWORDS.contains(&word.as_str()) => {
                let mut found = Vec::new();
                i = parse_path(tokens, i, Vec::new(), &mut found);
                let depth = file_depth + inline_modules.len();
                paths.extend(found.into_iter().map(|segments| PathRef { segments, depth }));
            }
            _ => i += 1,
        }
    }
    paths
}

/// Whether `token` is an identifier (equal to `want`, if given).
fn is_word(token: &Token, want: Option<&str>) -> bool {
    matches!(&token.tok, Tok::Ident(word) if want.is_none_or(|want| word == want))
}

type Segments = Vec<(String, usize)>;

/// Parses a path (or use tree) at `i` after `prefix`; returns the index after it.
fn parse_path(
    tokens: &[Token],
    mut i: usize,
    mut segments: Segments,
    out: &mut Vec<Segments>,
) -> usize {
    while let Some(token) = tokens.get(i) {
        match &token.tok {
            Tok::Ident(word) => segments.push((word.clone(), token.line)),
            Tok::Star => {
                segments.push(("*".to_string(), token.line));
                i += 1;
                break;
            }
            Tok::Open => return parse_group(tokens, i, &segments, out),
            _ => break,
        }
        i += 1;
        if tokens.get(i).map(|token| &token.tok) != Some(&Tok::PathSep) {
            break;
        }
        i += 1;
    }
    if !segments.is_empty() {
        out.push(segments);
    }
    i
}

/// Parses `{ tree, tree as x, ... }` at `open` after `prefix`; returns the index after `}`.
fn parse_group(
    tokens: &[Token],
    open: usize,
    prefix: &[(String, usize)],
    out: &mut Vec<Segments>,
) -> usize {
    let mut i = open + 1;
    while let Some(token) = tokens.get(i) {
        match token.tok {
            Tok::Close => return i + 1,
            Tok::Ident(_) | Tok::Star | Tok::Open => {
                i = parse_path(tokens, i, prefix.to_vec(), out);
                // Skip a rename (`as x`) up to the next `,` or `}` of this group.
                let mut depth = 0usize;
                while let Some(token) = tokens.get(i) {
                    match token.tok {
                        Tok::Comma | Tok::Close if depth == 0 => break,
                        Tok::Open => depth += 1,
                        Tok::Close => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    i
}

// ---------------------------------------------------------------------------------------------
// The tree itself.
// ---------------------------------------------------------------------------------------------

#[test]
fn tidy_source_tree_is_clean() {
    let violations = check_tree(Path::new(env!("CARGO_MANIFEST_DIR")));
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{} tidy violation(s):\n{}", listed.len(), listed.join("\n"));
}

#[test]
fn walker_sees_the_crate_sources() {
    let files = source_files(Path::new(env!("CARGO_MANIFEST_DIR")));
    for expected in ["src/lib.rs", "src/main.rs", "tests/tidy.rs"] {
        assert!(files.iter().any(|file| file == expected), "{expected} not in {files:?}");
    }
    assert!(files.iter().all(|file| !file.starts_with("target/") && !file.contains("/.")));
}

#[test]
fn layers_form_a_dag_of_known_layers() {
    fn reaches(from: &str, to: &str, seen: &mut Vec<String>) -> bool {
        let layer = LAYERS.iter().find(|layer| layer.name == from).unwrap();
        layer.allowed.iter().map(|entry| entry.split("::").next().unwrap()).any(|next| {
            if next == to {
                return true;
            }
            if seen.iter().any(|name| name == next) {
                return false;
            }
            seen.push(next.to_string());
            reaches(next, to, seen)
        })
    }
    for layer in LAYERS {
        for entry in layer.allowed {
            let name = entry.split("::").next().unwrap();
            assert!(LAYERS.iter().any(|l| l.name == name), "{}: unknown {name}", layer.name);
        }
        assert!(!reaches(layer.name, layer.name, &mut Vec::new()), "{} is in a cycle", layer.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Each rule fires, and its allowed case passes.
// ---------------------------------------------------------------------------------------------

/// The `(line, rule)` of each violation `check_file` reports.
fn fired(path: &str, text: &str) -> Vec<(usize, &'static str)> {
    check_file(path, text).iter().map(|violation| (violation.line, violation.rule)).collect()
}

#[test]
fn consensus_importing_runtime_is_an_upward_import() {
    let violations =
        check_file("src/consensus/mod.rs", "//! Paxos.\n\nuse crate::runtime::Shard;\n");
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!((violations[0].line, violations[0].rule), (3, "layers"));
    assert!(violations[0].to_string().contains("crate::runtime::Shard"), "{}", violations[0]);
    assert!(violations[0].to_string().starts_with("src/consensus/mod.rs:3: layers: "));

    // An expression path counts as much as a `use`.
    let text = "fn f() {\n    let _ = crate::wire::Frame::new();\n}\n";
    assert_eq!(fired("src/consensus/ballot.rs", text), [(2, "layers")]);
}

#[test]
fn grouped_use_is_checked_per_name() {
    let text = "\
use crate::{
    constants::SLOTS_COUNT_MAX,
    runtime::{shard::Shard, Executor},
    types::{GroupId, NodeId},
    wire::{self, frame::{Header, Frame as F}},
};
";
    assert_eq!(
        fired("src/consensus/ballot.rs", text),
        [(3, "layers"), (3, "layers"), (5, "layers"), (5, "layers"), (5, "layers")]
    );
    let allowed = "use crate::{constants::{A, B}, types::{self, NodeId as Id}, consensus::X};\n";
    assert_eq!(fired("src/consensus/ballot.rs", allowed), []);
}

#[test]
fn server_reaching_into_consensus_is_refused() {
    for text in [
        "use crate::consensus::Ballot;\n",
        "use crate::log::Segment;\n",
        "use crate::state_machine::{Apply};\n",
        "fn f() { crate::consensus::step(); }\n",
    ] {
        assert_eq!(fired("src/server/session.rs", text), [(1, "layers")], "{text}");
    }
}

#[test]
fn server_using_runtime_and_embedded_is_allowed() {
    let text = "\
use crate::runtime::{self, Connection, ConnectionHandler};
use crate::embedded::Handle;
use crate::{config::Config, constants::*, types::NodeId, wire::Frame};
use crate::server::resp::Parser;
use super::session::{Flow, Session};
pub(crate) fn f() {}
";
    assert_eq!(fired("src/server/commands/mod.rs", text), []);
}

#[test]
fn wire_using_consensus_is_allowed_but_not_log() {
    assert_eq!(fired("src/wire/frame.rs", "use crate::consensus::{Ballot, Slot};\n"), []);
    assert_eq!(fired("src/wire/frame.rs", "use crate::log::Record;\n"), [(1, "layers")]);
}

#[test]
fn sim_may_use_runtime_shard_only() {
    let allowed = "\
use crate::runtime::shard::Shard;
use crate::runtime::{shard::{self, Step}};
use crate::{consensus::Replica, log::Log, state_machine::Kv, wire::Frame, config::Config};
fn f() { crate::runtime::shard::run(); }
";
    assert_eq!(fired("src/sim/cluster.rs", allowed), []);
    let refused = "\
use crate::runtime::Executor;
use crate::runtime;
use crate::runtime::{self, shard};
use crate::embedded::Node;
use crate::server::run;
";
    assert_eq!(
        fired("src/sim/cluster.rs", refused),
        [(1, "layers"), (2, "layers"), (3, "layers"), (4, "layers"), (5, "layers")]
    );
}

#[test]
fn every_layer_may_use_itself_and_what_it_lists() {
    for layer in LAYERS {
        let path = format!("src/{}/inner.rs", layer.name);
        for entry in layer.allowed.iter().chain([&layer.name]) {
            let text = format!("use crate::{entry}::Item;\nuse klein::{entry}::Other;\n");
            assert_eq!(fired(&path, &text), [], "{text}");
        }
    }
}

#[test]
fn every_layer_refuses_what_it_does_not_list() {
    for layer in LAYERS {
        let path = format!("src/{}/inner.rs", layer.name);
        let refused = LAYERS
            .iter()
            .map(|other| other.name)
            .filter(|name| *name != layer.name && !layer.allowed.contains(name));
        for name in refused {
            let text = format!("use crate::{name}::Item;\n");
            assert_eq!(fired(&path, &text), [(1, "layers")], "{}: {text}", layer.name);
        }
    }
}

#[test]
fn klein_and_super_paths_to_the_crate_root_are_checked() {
    assert_eq!(fired("src/log/segment.rs", "use klein::runtime::Dma;\n"), [(1, "layers")]);
    assert_eq!(fired("src/log/segment.rs", "use ::klein::wire::Frame;\n"), [(1, "layers")]);
    let macro_text = "macro_rules! m { () => { $crate::embedded::Node::new() }; }\n";
    assert_eq!(fired("src/consensus/m.rs", macro_text), [(1, "layers")]);

    // `super` of `src/consensus/mod.rs` is the crate root; inside `mod tests` it takes two.
    let text = "\
//! Paxos.
use super::runtime::Shard;
#[cfg(test)]
mod tests {
    use super::Ballot;
    use super::super::types::NodeId;
    use super::super::log::Log;
}
use super::wire::Frame;
";
    assert_eq!(fired("src/consensus/mod.rs", text), [(2, "layers"), (7, "layers"), (9, "layers")]);
    assert_eq!(fired("src/consensus/acceptor.rs", "use super::super::types::Slot;\n"), []);
    assert_eq!(fired("src/consensus/acceptor.rs", "use super::ballot::Ballot;\n"), []);
}

#[test]
fn the_top_and_outside_src_may_use_every_layer() {
    let lib = "//! Klein.\npub use crate::embedded::Node;\nuse crate::consensus::Replica;\n";
    assert_eq!(fired("src/lib.rs", lib), []);
    let main = "\
//! The binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() { klein::server::run(); klein::consensus::x(); }
";
    assert_eq!(fired("src/main.rs", main), []);
    assert_eq!(fired("tests/cluster.rs", "use klein::{consensus::Ballot, sim::Sim};\n"), []);
    assert_eq!(fired("benches/resp.rs", "use klein::server::resp::Parser;\n"), []);
}

#[test]
fn unknown_layer_is_refused() {
    assert_eq!(fired("src/cache/mod.rs", "//! A cache.\n"), [(1, "layers")]);
    assert_eq!(fired("src/cache.rs", "//! A cache.\n"), [(1, "layers")]);
}

#[test]
fn glommio_outside_runtime_is_refused() {
    for path in ["src/server/session.rs", "src/sim/net.rs", "tests/cluster.rs", "benches/resp.rs"] {
        let text = "fn f() {}\nuse glommio::net::TcpListener;\n";
        assert_eq!(fired(path, text), [(2, "glommio")], "{path}");
    }
    assert_eq!(fired("src/embedded/x.rs", "extern crate glommio;\n"), [(1, "glommio")]);
    assert_eq!(fired("src/server/x.rs", "use {std::io, glommio::Task};\n"), [(1, "glommio")]);
}

#[test]
fn glommio_in_runtime_is_allowed() {
    let text = "//! Runtime.\nuse glommio::{LocalExecutorBuilder, Placement};\n";
    assert_eq!(fired("src/runtime/mod.rs", text), []);
    assert_eq!(fired("src/runtime/shard/executor.rs", text), []);
    // tidy itself names glommio in its test inputs.
    assert_eq!(fired("tests/tidy.rs", "use glommio::Task;\n"), []);
    // Neither is a word that merely contains it, nor a comment or a string.
    let text = "let glommio_free = 1; // glommio\nlet s = \"glommio\";\n";
    assert_eq!(fired("src/server/x.rs", text), []);
}

#[test]
fn clock_in_consensus_is_refused() {
    let cases = [
        ("use std::time::Instant;\n", 2),
        ("let now = std::time::SystemTime::now();\n", 2),
        ("use std::{fs, net::TcpStream};\n", 3),
        ("let seed: u64 = rand::random();\n", 1),
        ("let n = fastrand::u64(..);\n", 1),
        ("std::thread::spawn(|| {});\n", 1),
        ("let _ = std::io::stdout();\n", 1),
        ("use std::io::{stdin, Read};\n", 1),
        ("fn f(file: &mut File) {}\n", 1),
        ("use ::std::env::var;\n", 1),
        ("let r#File = 1;\n", 1),
        ("let ring = io_uring::IoUring::new(8);\n", 1),
    ];
    for (text, count) in cases {
        for path in ["src/consensus/acceptor.rs", "src/state_machine/kv.rs"] {
            let violations = fired(path, text);
            assert_eq!(violations, vec![(1, "determinism"); count], "{path}: {text}");
        }
    }
}

#[test]
fn determinism_matches_whole_identifiers_only() {
    let text = "\
use std::io::Write;
use core::time::Duration;
fn f(operand: u64, random_seed: u64, brand: u8) -> u64 { operand + random_seed }
struct InstantFoo; struct Filed; struct NotFile;
fn g(x: &mut dyn std::io::Write) { let _ = x.time; }
";
    assert_eq!(fired("src/consensus/acceptor.rs", text), []);
}

#[test]
fn clock_outside_the_deterministic_core_is_allowed() {
    let text = "use std::time::Instant;\nuse std::fs::File;\n";
    for path in ["src/log/segment.rs", "src/runtime/timer.rs", "src/server/x.rs", "src/sim/x.rs"] {
        assert_eq!(fired(path, text), [], "{path}");
    }
}

#[test]
fn identifiers_in_comments_and_strings_are_ignored() {
    let text = r##"//! Paxos: no Instant, no glommio, no crate::runtime here.
/// Not `std::time::Instant` either.
/* A block /* nested: Instant */ still a comment: crate::runtime::X */
fn f<'a, 'b: 'a>(x: &'a str, _y: &'b [u8]) -> &'a str {
    let _ = "Instant glommio crate::runtime \" // TODO still a string";
    x
}
const C: char = '"';
const D: char = '\'';
const E: &str = r#"Instant " crate::runtime::X"#;
const F: &[u8] = br"File";
const G: u8 = b'\'';
const H: &str = "multi
line Instant";
const I: &CStr = c"glommio";
fn label() -> &'static str { 'outer: loop { break 'outer "rand"; } }
"##;
    assert_eq!(fired("src/consensus/mod.rs", text), []);
}

#[test]
fn lexer_keeps_line_numbers_and_does_not_swallow_code() {
    let text = "\
fn f<'a>(x: &'a u8) -> &'a u8 { x }
/*
 * Instant
 */
const S: &str = \"a
b\";
use crate::runtime::X;
const Q: char = '\\u{7f}'; use std::time::Instant;
";
    let violations = fired("src/consensus/x.rs", text);
    assert_eq!(violations, [(7, "layers"), (8, "determinism"), (8, "determinism")]);
    let stripped = strip(text);
    assert_eq!(stripped.code.lines().count(), text.lines().count());
    assert_eq!(stripped.comments.lines().nth(2), Some(" * Instant"));
}

#[test]
fn non_ascii_is_refused_with_position() {
    let violations = check_file("src/types.rs", "//! Types.\nconst A: &str = \"caf\u{e9}\";\n");
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!((violations[0].line, violations[0].rule), (2, "ascii"));
    assert!(violations[0].message.contains("0xC3 at column 21"), "{}", violations[0]);
    // In a comment too, and in any file, once per file.
    let text = "ok\n// em \u{2014} dash \u{2014}\n\u{2026}\n";
    assert_eq!(fired("src/server/resp/README.md", text), [(2, "ascii")]);
    assert_eq!(fired("tests/cluster.rs", text), [(2, "ascii")]);
}

#[test]
fn long_line_is_refused() {
    let exact = format!("//! {}\n", "x".repeat(LINE_LENGTH_MAX - 4));
    assert_eq!(fired("tests/cluster.rs", &exact), []);
    let long = format!("fn f() {{}}\n// {}\n", "x".repeat(LINE_LENGTH_MAX - 2));
    assert_eq!(fired("tests/cluster.rs", &long), [(2, "line-length")]);
    // Not in files other than Rust source.
    assert_eq!(fired("benches/data.txt", &long), []);
}

#[test]
fn bare_todo_is_refused_and_owned_todo_passes() {
    let text = "\
// TODO: make it faster
fn f() {} // FIXME later
/// TODO(issue 5): shard the map.
// FIXME(alice) this leaks
/* TODO() */
let s = \"TODO\"; // TODOs and NOTFIXME are other words
//! TODO
";
    assert_eq!(
        fired("src/server/x.rs", text),
        [(1, "todo"), (2, "todo"), (5, "todo"), (7, "todo")]
    );
}

#[test]
fn binary_without_mimalloc_is_refused() {
    assert_eq!(fired("src/bin/load.rs", "fn main() {}\n"), [(1, "allocator")]);
    assert_eq!(fired("src/bin/tool/main.rs", "fn main() {}\n"), [(1, "allocator")]);
    let system = "#[global_allocator]\nstatic G: std::alloc::System = std::alloc::System;\n";
    assert_eq!(fired("src/main.rs", system), [(1, "allocator")]);
    let commented = "// #[global_allocator] static G: mimalloc::MiMalloc = mimalloc::MiMalloc;\n";
    assert_eq!(fired("src/main.rs", commented), [(1, "allocator")]);
}

#[test]
fn binary_with_mimalloc_passes() {
    let full = "#[global_allocator]\nstatic GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;\n";
    assert_eq!(fired("src/bin/load.rs", full), []);
    let imported =
        "use mimalloc::MiMalloc;\n#[ global_allocator ]\nstatic G: MiMalloc = MiMalloc;\n";
    assert_eq!(fired("src/main.rs", imported), []);
    // A file under a binary's directory is not itself an entry point.
    assert_eq!(fired("src/bin/tool/args.rs", "fn f() {}\n"), []);
}

#[test]
fn module_without_doc_is_refused() {
    assert_eq!(fired("src/wire/mod.rs", "use crate::types::NodeId;\n"), [(1, "module-doc")]);
    assert_eq!(fired("src/config.rs", "\n/// An item doc.\nstruct C;\n"), [(2, "module-doc")]);
    assert_eq!(fired("src/constants.rs", ""), [(1, "module-doc")]);
}

#[test]
fn module_with_doc_passes() {
    assert_eq!(fired("src/wire/mod.rs", "\n\n//! The wire format.\n"), []);
    // Only top-level modules need one; the crate root and binaries are documented elsewhere.
    assert_eq!(fired("src/wire/frame.rs", "use super::Header;\n"), []);
    assert_eq!(fired("src/server/resp/mod.rs", "mod parser;\n"), []);
    assert_eq!(fired("src/lib.rs", "pub mod wire;\n"), []);
}
