//! Redis's glob patterns (`KEYS`, `SCAN MATCH`): `*`, `?`, `[abc]`, `[^abc]`, `[a-z]` (either
//! order), `\x` escapes, inside and outside classes, with Redis's treatment of an unterminated
//! class (it ends at the pattern's end).
//!
//! Iterative: one pass with a single backtrack point (the last `*`), so the time is at most
//! pattern length times string length, whatever the pattern (no recursion, no exponential
//! blowup on `*a*a*a*...`). Must never: recurse or allocate.

/// Whether `text` matches `pattern`.
#[must_use]
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `*`: where the pattern resumes and the text position it last tried.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
            star = Some((p, t));
            continue;
        }
        if let Some(next) = step(pattern, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Matches the one-character token at `pattern[p..]` (not `*`) against `byte`; returns the
/// position after the token when it matches.
fn step(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
        &literal => (literal == byte).then_some(p + 1),
    }
}

/// Matches a class starting after its `[`; returns the position after its `]` (or the
/// pattern's end, for an unterminated class) when `byte` matches.
fn class(pattern: &[u8], mut p: usize, byte: u8) -> Option<usize> {
    let negated = pattern.get(p) == Some(&b'^');
    if negated {
        p += 1;
    }
    let mut matched = false;
    while let Some(&current) = pattern.get(p) {
        if current == b'\\' && p + 1 < pattern.len() {
            p += 1;
            matched |= pattern[p] == byte;
        } else if current == b']' {
            p += 1;
            break;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
            let (low, high) = (current.min(pattern[p + 2]), current.max(pattern[p + 2]));
            matched |= (low..=high).contains(&byte);
            p += 2;
        } else {
            matched |= current == byte;
        }
        p += 1;
    }
    (matched != negated).then_some(p)
}
