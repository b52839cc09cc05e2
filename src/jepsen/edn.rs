//! A small EDN reader and writer: the subset Jepsen histories use.
//!
//! Supported: `nil`, `true`/`false`, integers (`i64`), strings with the common escapes,
//! keywords, vectors, lists, sets and maps; commas are whitespace and `;` starts a comment.
//! Not supported (refused with an error): floats, ratios, big integers, characters, symbols
//! other than `nil`/`true`/`false`, tagged literals (`#inst`, records) and `#_` discards.
//!
//! Why no crate: `edn-rs` is marked deprecated by its authors, and `edn-format` 3.3 brings
//! `bigdecimal`, `chrono`, `internship`, `itertools`, `num-bigint`, `ordered-float` and
//! `uuid` into a library crate for a subset that takes a few hundred lines here. The reader
//! is recursive, with its depth bounded by [`JEPSEN_EDN_DEPTH_MAX`].
//!
//! Must never: panic on any input (errors carry the line and column), or recurse deeper than
//! the bound.

use std::fmt::{self, Write as _};

use crate::constants::JEPSEN_EDN_DEPTH_MAX;

/// One EDN value of the supported subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A string.
    Str(String),
    /// A keyword, without its colon (`:ok` is `Keyword("ok")`).
    Keyword(String),
    /// `[a b]`.
    Vector(Vec<Edn>),
    /// `(a b)`.
    List(Vec<Edn>),
    /// `#{a b}`, in the order written.
    Set(Vec<Edn>),
    /// `{k v}`, pairs in the order written.
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// A keyword value.
    #[must_use]
    pub fn keyword(name: &str) -> Edn {
        Edn::Keyword(name.to_string())
    }

    /// The value of `key` in a map; `None` for a missing key or a non-map.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Edn> {
        let Edn::Map(pairs) = self else { return None };
        pairs.iter().find(|(k, _)| matches!(k, Edn::Keyword(name) if name == key)).map(|(_, v)| v)
    }

    /// The elements of a vector, list or set.
    #[must_use]
    pub fn as_seq(&self) -> Option<&[Edn]> {
        match self {
            Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => Some(items),
            _ => None,
        }
    }

    /// The integer, if this is one.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Edn::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// The keyword's name, if this is one.
    #[must_use]
    pub fn as_keyword(&self) -> Option<&str> {
        match self {
            Edn::Keyword(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
            f.write_str(open)?;
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    f.write_char(' ')?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(value) => write!(f, "{value}"),
            Edn::Int(value) => write!(f, "{value}"),
            Edn::Str(text) => {
                f.write_char('"')?;
                for c in text.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        c => f.write_char(c)?,
                    }
                }
                f.write_char('"')
            }
            Edn::Keyword(name) => write!(f, ":{name}"),
            Edn::Vector(items) => seq(f, "[", items, "]"),
            Edn::List(items) => seq(f, "(", items, ")"),
            Edn::Set(items) => seq(f, "#{", items, "}"),
            Edn::Map(pairs) => {
                f.write_char('{')?;
                for (at, (key, value)) in pairs.iter().enumerate() {
                    if at > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key} {value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Why a text is not EDN of the supported subset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("EDN line {line} column {column}: {message}")]
pub struct EdnError {
    /// 1-based line of the offending character.
    pub line: usize,
    /// 1-based column (in characters) of the offending character.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads every top-level value of `text`, in order.
///
/// # Errors
/// The first place where `text` is not EDN of the supported subset.
pub fn parse_all(text: &str) -> Result<Vec<Edn>, EdnError> {
    let mut reader = Reader { chars: text.chars().collect(), at: 0 };
    let mut values = Vec::new();
    loop {
        reader.skip_blank();
        if reader.at >= reader.chars.len() {
            return Ok(values);
        }
        values.push(reader.value(0)?);
    }
}

/// Reads exactly one value from `text`.
///
/// # Errors
/// `text` is not one EDN value of the supported subset.
pub fn parse(text: &str) -> Result<Edn, EdnError> {
    let mut values = parse_all(text)?;
    if values.len() != 1 {
        return Err(EdnError {
            line: 1,
            column: 1,
            message: format!("expected one value, found {}", values.len()),
        });
    }
    Ok(values.remove(0))
}

struct Reader {
    chars: Vec<char>,
    at: usize,
}

/// Characters that end a token (a number, keyword or symbol).
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';')
}

impl Reader {
    fn error(&self, at: usize, message: impl Into<String>) -> EdnError {
        let before = &self.chars[..at.min(self.chars.len())];
        let line = before.iter().filter(|c| **c == '\n').count() + 1;
        let column = before.iter().rev().take_while(|c| **c != '\n').count() + 1;
        EdnError { line, column, message: message.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' {
                self.at += 1;
            } else if c == ';' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Edn, EdnError> {
        self.skip_blank();
        let start = self.at;
        let Some(c) = self.peek() else {
            return Err(self.error(start, "unexpected end of input"));
        };
        match c {
            '[' | '(' | '{' => {
                if depth >= JEPSEN_EDN_DEPTH_MAX {
                    return Err(self.error(start, "nested deeper than JEPSEN_EDN_DEPTH_MAX"));
                }
                self.at += 1;
                let close = match c {
                    '[' => ']',
                    '(' => ')',
                    _ => '}',
                };
                let items = self.items(close, depth + 1)?;
                match c {
                    '[' => Ok(Edn::Vector(items)),
                    '(' => Ok(Edn::List(items)),
                    _ => Self::pairs(items).ok_or_else(|| self.error(start, "odd map")),
                }
            }
            '#' => {
                if self.chars.get(self.at + 1) != Some(&'{') {
                    return Err(self.error(start, "tagged literals and dispatch are unsupported"));
                }
                if depth >= JEPSEN_EDN_DEPTH_MAX {
                    return Err(self.error(start, "nested deeper than JEPSEN_EDN_DEPTH_MAX"));
                }
                self.at += 2;
                Ok(Edn::Set(self.items('}', depth + 1)?))
            }
            '"' => self.string(),
            ')' | ']' | '}' => Err(self.error(start, format!("unexpected `{c}`"))),
            _ => self.token(),
        }
    }

    fn items(&mut self, close: char, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                None => return Err(self.error(self.at, format!("missing `{close}`"))),
                Some(c) if c == close => {
                    self.at += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.value(depth)?),
            }
        }
    }

    fn pairs(items: Vec<Edn>) -> Option<Edn> {
        if !items.len().is_multiple_of(2) {
            return None;
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            pairs.push((key, value));
        }
        Some(Edn::Map(pairs))
    }

    fn string(&mut self) -> Result<Edn, EdnError> {
        let start = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, "unterminated string"));
            };
            self.at += 1;
            match c {
                '"' => return Ok(Edn::Str(text)),
                '\\' => {
                    let escaped = match self.peek() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        _ => return Err(self.error(self.at, "unsupported string escape")),
                    };
                    self.at += 1;
                    text.push(escaped);
                }
                c => text.push(c),
            }
        }
    }

    fn token(&mut self) -> Result<Edn, EdnError> {
        let start = self.at;
        while self.peek().is_some_and(|c| !is_delimiter(c)) {
            self.at += 1;
        }
        let token: String = self.chars[start..self.at].iter().collect();
        if let Some(name) = token.strip_prefix(':') {
            if name.is_empty() {
                return Err(self.error(start, "empty keyword"));
            }
            return Ok(Edn::Keyword(name.to_string()));
        }
        match token.as_str() {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        let digits = token.strip_prefix(['-', '+']).unwrap_or(&token);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return token
                .parse::<i64>()
                .map(Edn::Int)
                .map_err(|_| self.error(start, format!("integer `{token}` does not fit i64")));
        }
        Err(self.error(start, format!("unsupported token `{token}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_map_round_trips() {
        let text = "{:type :invoke, :f :txn, :value [[:append 5 1] [:r 5 [1 2]] [:r 6 nil]], \
                    :process 0, :time 123, :index 0, :error \"a \\\"b\\\"\\n\"}";
        let value = parse(text).unwrap();
        assert_eq!(value.get("type"), Some(&Edn::keyword("invoke")));
        assert_eq!(value.get("time").and_then(Edn::as_int), Some(123));
        assert_eq!(value.get("error"), Some(&Edn::Str("a \"b\"\n".to_string())));
        let txn = value.get("value").and_then(Edn::as_seq).unwrap();
        assert_eq!(txn.len(), 3);
        assert_eq!(
            txn[1],
            Edn::Vector(vec![
                Edn::keyword("r"),
                Edn::Int(5),
                Edn::Vector(vec![Edn::Int(1), Edn::Int(2)])
            ])
        );
        assert_eq!(parse(&value.to_string()).unwrap(), value);
    }

    #[test]
    fn sets_lists_comments_and_negative_numbers_parse() {
        let values = parse_all("; a comment\n#{1 -2} (3 +4) true false nil :a/b").unwrap();
        assert_eq!(
            values,
            vec![
                Edn::Set(vec![Edn::Int(1), Edn::Int(-2)]),
                Edn::List(vec![Edn::Int(3), Edn::Int(4)]),
                Edn::Bool(true),
                Edn::Bool(false),
                Edn::Nil,
                Edn::keyword("a/b"),
            ]
        );
        for value in &values {
            assert_eq!(&parse(&value.to_string()).unwrap(), value);
        }
    }

    #[test]
    fn malformed_input_is_an_error_with_its_position() {
        let error = parse("{:a 1\n :b}").unwrap_err();
        assert_eq!((error.line, error.column), (1, 1));
        assert!(error.message.contains("odd map"), "{error}");
        let error = parse("[1 2").unwrap_err();
        assert!(error.message.contains("missing `]`"), "{error}");
        let error = parse("[1\n  1.5]").unwrap_err();
        assert_eq!((error.line, error.column), (2, 3));
        assert!(parse("#inst \"2020\"").is_err());
        assert!(parse("99999999999999999999").is_err());
        assert!(parse("\"open").is_err());
        assert!(parse("]").is_err());
        assert!(parse("1 2").is_err());
    }

    #[test]
    fn nesting_past_the_depth_limit_is_refused() {
        let deep = "[".repeat(JEPSEN_EDN_DEPTH_MAX + 1) + &"]".repeat(JEPSEN_EDN_DEPTH_MAX + 1);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let ok = "[".repeat(JEPSEN_EDN_DEPTH_MAX) + &"]".repeat(JEPSEN_EDN_DEPTH_MAX);
        assert!(parse(&ok).is_ok());
    }
}
