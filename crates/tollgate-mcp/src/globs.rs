//! Glob patterns for tool allow and deny lists.
//!
//! `*` matches any run of characters (also none), `?` exactly one character; every other
//! character matches itself, case-sensitively. There is no escaping: tool names do not contain
//! `*` or `?`.

/// Whether `text` matches `pattern` as a whole.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it is currently made to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry from there.
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether any of `patterns` matches `text`.
pub fn any_match(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_match_exactly() {
        assert!(glob_match("read_file", "read_file"));
        assert!(!glob_match("read_file", "read_files"));
        assert!(!glob_match("read_file", "Read_file"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("read_*", "read_"));
        assert!(glob_match("read_*", "read_file"));
        assert!(!glob_match("read_*", "write_file"));
        assert!(glob_match("*_file", "read_file"));
        assert!(glob_match("*delete*", "repo_delete_all"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*b*c", "abbbc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("get_?", "get_x"));
        assert!(!glob_match("get_?", "get_"));
        assert!(!glob_match("get_?", "get_xy"));
        assert!(glob_match("??", "ü1"));
        assert!(glob_match("**x", "x"));
        assert!(glob_match("*a*a*a*", "aaa"));
        assert!(!glob_match("*a*a*a*", "aa"));
    }

    #[test]
    fn any_of_a_list() {
        let list = vec!["get_*".to_owned(), "list_*".to_owned()];
        assert!(any_match(&list, "list_repos"));
        assert!(!any_match(&list, "delete_repo"));
        assert!(!any_match(&[], "x"));
    }
}
