//! Redis glob patterns.

use crate::state_machine::glob::matches;

#[test]
fn glob_follows_redis_stringmatch() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "", true),
        ("*", "anything", true),
        ("h?llo", "hello", true),
        ("h?llo", "hllo", false),
        ("h*llo", "hllo", true),
        ("h*llo", "heeeello", true),
        ("h[ae]llo", "hallo", true),
        ("h[ae]llo", "hillo", false),
        ("h[^e]llo", "hallo", true),
        ("h[^e]llo", "hello", false),
        ("h[a-b]llo", "hbllo", true),
        ("h[b-a]llo", "hbllo", true),
        ("h[a-b]llo", "hcllo", false),
        ("h\\*llo", "h*llo", true),
        ("h\\*llo", "hello", false),
        ("[\\]]", "]", true),
        ("a[", "a", false),
        ("a[b", "ab", true),
        ("[", "a", false),
        ("[^", "a", true),
        ("a\\", "a\\", true),
        ("*a*b*c", "xxaxxbxxc", true),
        ("*a*b*c", "xxaxxbxx", false),
        ("a*", "b", false),
        ("", "", true),
        ("", "a", false),
        ("abc", "ab", false),
    ];
    for &(pattern, text, expected) in cases {
        assert_eq!(matches(pattern.as_bytes(), text.as_bytes()), expected, "{pattern} {text}");
    }
}

#[test]
fn glob_has_no_exponential_backtracking() {
    let pattern = "*a".repeat(40) + "b";
    let text = "a".repeat(10_000);
    assert!(!matches(pattern.as_bytes(), text.as_bytes()));
}
