//! Find parameters, Backendless-style: `where` (a small SQL-like clause), `sortBy`, `pageSize` and
//! `offset`, parsed into a [`hooks::Query`] whose fields are checked against the table's columns.
//!
//! ```text
//! where    = condition ( AND condition )*
//! condition = field op value | field IS [NOT] NULL
//! op       = = | != | <> | < | <= | > | >= | LIKE
//! value    = 'text' ('' for a quote) | number | true | false | null
//! sortBy   = field [asc|desc] ( , field [asc|desc] )*
//! ```
//!
//! A bulk update or delete takes `where` only ([`parse_bulk`]), and needs one: no call changes
//! every record of a table by accident.
//!
//! A query has at most [`MAX_CONDITIONS`] conditions (all its `where` parameters together), at
//! most [`MAX_SORT`] sort keys, and text values of at most [`MAX_TEXT`] characters: past those,
//! SQLite itself fails ("Expression tree is too large", "too many terms in ORDER BY clause",
//! "LIKE or GLOB pattern too complex"), so they are a 400 here first.

use hooks::{HookError, Op, Query};
use serde_json::Value;

use crate::db::{self, Stored, echo};

/// The largest page; also the page size when none is asked for.
pub const MAX_PAGE: u32 = 100;
/// The most conditions a query may have, all its `where` parameters together.
pub const MAX_CONDITIONS: usize = 32;
/// The most sort keys a query may have, all its `sortBy` parameters together.
pub const MAX_SORT: usize = 10;
/// The longest text value (a `LIKE` pattern included), in characters.
pub const MAX_TEXT: usize = 1000;

fn bad(message: impl Into<String>) -> HookError {
    HookError::new(400, "bad_query", message.into())
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Op(&'static str),
    Text(String),
    Number(Value),
}

fn tokenize(s: &str) -> Result<Vec<Token>, HookError> {
    let mut tokens = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\'')) if chars.peek().map(|p| p.1) == Some('\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, c)) => text.push(c),
                        None => return Err(bad(format!("unterminated string at {i}"))),
                    }
                }
                if text.chars().count() > MAX_TEXT {
                    return Err(bad(format!(
                        "a text value has at most {MAX_TEXT} characters (the one at {i} is longer)"
                    )));
                }
                tokens.push(Token::Text(text));
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let next = chars.peek().map(|p| p.1);
                let op = match (c, next) {
                    ('=', _) => "=",
                    ('!', Some('=')) | ('<', Some('>')) => "!=",
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err(bad(format!("unexpected `{c}` at {i}"))),
                };
                if op.len() == 2 {
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut number = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() || d == '-' || d == '.' || d == 'e' || d == 'E' {
                        number.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let value = serde_json::from_str::<serde_json::Number>(&number)
                    .map_err(|_| bad(format!("`{}` is not a number", echo(&number))))?;
                tokens.push(Token::Number(Value::Number(value)));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(bad(format!("unexpected `{other}` at {i}"))),
        }
    }
    Ok(tokens)
}

fn keyword(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// Parse a `where` clause into `query`'s filter.
pub fn parse_where<E: Stored>(clause: &str, query: &mut Query<E>) -> Result<(), HookError> {
    let tokens = tokenize(clause)?;
    let mut it = tokens.iter().peekable();
    loop {
        let field = match it.next() {
            Some(Token::Word(w)) => w.clone(),
            _ => return Err(bad("a condition starts with a field name")),
        };
        if db::column::<E>(&field).is_none() {
            return Err(db::unknown_field::<E>(&field));
        }
        if query.filter.len() >= MAX_CONDITIONS {
            return Err(bad(format!(
                "a query has at most {MAX_CONDITIONS} conditions"
            )));
        }
        let (op, value) = if keyword(it.peek().copied(), "is") {
            it.next();
            let op = if keyword(it.peek().copied(), "not") {
                it.next();
                Op::Ne
            } else {
                Op::Eq
            };
            if !keyword(it.next(), "null") {
                return Err(bad(format!(
                    "`{} IS` is followed by NULL or NOT NULL",
                    echo(&field)
                )));
            }
            (op, Value::Null)
        } else {
            let op = match it.next() {
                Some(Token::Op("=")) => Op::Eq,
                Some(Token::Op("!=")) => Op::Ne,
                Some(Token::Op("<")) => Op::Lt,
                Some(Token::Op("<=")) => Op::Le,
                Some(Token::Op(">")) => Op::Gt,
                Some(Token::Op(">=")) => Op::Ge,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
                _ => {
                    return Err(bad(format!(
                        "`{}` is followed by a comparison",
                        echo(&field)
                    )));
                }
            };
            let value = match it.next() {
                Some(Token::Text(t)) => Value::String(t.clone()),
                Some(Token::Number(n)) => n.clone(),
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
                _ => return Err(bad(format!("`{}` is compared with a value", echo(&field)))),
            };
            (op, value)
        };
        *query = std::mem::take(query).filter(field, op, value);
        match it.next() {
            None => return Ok(()),
            Some(t) if keyword(Some(t), "and") => continue,
            Some(_) => return Err(bad("conditions are joined with AND")),
        }
    }
}

/// Parse the find parameters of a request into a query on `E`.
pub fn parse<E: Stored>(params: &[(String, String)]) -> Result<Query<E>, HookError> {
    let mut query = Query::<E>::all();
    let mut limit = MAX_PAGE;
    for (key, value) in params {
        match key.as_str() {
            "where" => parse_where(value, &mut query)?,
            "sortBy" => {
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    if query.sort.len() >= MAX_SORT {
                        return Err(bad(format!("a query has at most {MAX_SORT} sort keys")));
                    }
                    let mut words = part.split_whitespace();
                    let field = words.next().unwrap_or_default();
                    if db::column::<E>(field).is_none() {
                        return Err(db::unknown_field::<E>(field));
                    }
                    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
                        None | Some("asc") => false,
                        Some("desc") => true,
                        Some(other) => {
                            return Err(bad(format!(
                                "sort `{field}` asc or desc, not `{}`",
                                echo(other)
                            )));
                        }
                    };
                    if let Some(extra) = words.next() {
                        return Err(bad(format!(
                            "sort `{field}` asc or desc, then nothing: `{}` is one word too many \
                             (sort keys are separated by commas)",
                            echo(extra)
                        )));
                    }
                    query = query.sort(field, descending);
                }
            }
            "pageSize" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "pageSize is 1 to {MAX_PAGE}, not `{}`",
                            echo(value)
                        ))
                    })?;
            }
            "offset" => {
                query.offset = value
                    .parse()
                    .map_err(|_| bad(format!("offset is a count, not `{}`", echo(value))))?;
            }
            other => {
                return Err(bad(format!(
                    "unknown parameter `{}`; use where, sortBy, pageSize, offset",
                    echo(other)
                )));
            }
        }
    }
    query.limit = Some(limit);
    Ok(query)
}

/// Parse the parameters of a bulk update or delete into a query on `E`: `where` only (several
/// are joined with AND), and at least one, so that a forgotten clause is a 400 rather than a
/// change of every record. A client that means every record of its own says so (`id > 0`). No
/// sort and no paging: the call acts on every record the clause selects.
pub fn parse_bulk<E: Stored>(params: &[(String, String)]) -> Result<Query<E>, HookError> {
    let mut query = Query::<E>::all();
    let mut clauses = 0;
    for (key, value) in params {
        match key.as_str() {
            "where" => {
                parse_where(value, &mut query)?;
                clauses += 1;
            }
            other => {
                return Err(bad(format!(
                    "a bulk update or delete takes only `where`, not `{}`",
                    echo(other)
                )));
            }
        }
    }
    if clauses == 0 {
        return Err(bad(
            "a bulk update or delete needs a `where` clause that selects its records \
             (`where=id > 0` for every record you own)",
        ));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Contact;

    fn parse_pairs(pairs: &[(&str, &str)]) -> Result<Query<Contact>, HookError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&pairs)
    }

    #[test]
    fn a_where_clause_becomes_bound_conditions() {
        let q = parse_pairs(&[(
            "where",
            "name LIKE 'O''Brien%' and vip = true AND created >= -5 AND phone is not null",
        )])
        .unwrap();
        let conds: Vec<(&str, Op, Value)> = q
            .filter
            .iter()
            .map(|c| (c.field.as_str(), c.op, c.value.clone()))
            .collect();
        assert_eq!(
            conds,
            [
                ("name", Op::Like, Value::from("O'Brien%")),
                ("vip", Op::Eq, Value::from(true)),
                ("created", Op::Ge, Value::from(-5)),
                ("phone", Op::Ne, Value::Null),
            ]
        );
    }

    #[test]
    fn sorting_and_paging_are_parsed_and_capped() {
        let q = parse_pairs(&[
            ("sortBy", "name desc, id"),
            ("pageSize", "5"),
            ("offset", "10"),
        ])
        .unwrap();
        assert_eq!(q.sort.len(), 2);
        assert!(q.sort[0].descending && !q.sort[1].descending);
        assert_eq!((q.limit, q.offset), (Some(5), 10));
        assert_eq!(parse_pairs(&[]).unwrap().limit, Some(MAX_PAGE));
        assert!(parse_pairs(&[("pageSize", "1000")]).is_err());
    }

    #[test]
    fn anything_but_a_known_field_or_a_value_is_a_400() {
        for bad in [
            "password = 'x'",
            "name = 'x' OR 1 = 1",
            "name = 'unterminated",
            "name; DROP TABLE contacts",
            "= 'x'",
            "name =",
        ] {
            let err = parse_pairs(&[("where", bad)]).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
        }
        assert_eq!(parse_pairs(&[("limit", "5")]).unwrap_err().status(), 400);
        assert_eq!(
            parse_pairs(&[("sortBy", "secret")]).unwrap_err().code(),
            "unknown_field"
        );
    }

    fn parse_bulk_pairs(pairs: &[(&str, &str)]) -> Result<Query<Contact>, HookError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_bulk(&pairs)
    }

    #[test]
    fn a_bulk_query_needs_a_where_and_takes_nothing_else() {
        let q = parse_bulk_pairs(&[("where", "vip = true"), ("where", "name LIKE 'A%'")]).unwrap();
        assert_eq!(q.filter.len(), 2);
        assert_eq!((q.limit, q.offset, q.sort.len()), (None, 0, 0));
        let err = parse_bulk_pairs(&[]).unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "bad_query"));
        assert!(err.message().contains("`where`"), "{err}");
        for (key, value) in [
            ("where", ""),
            ("where", "vip = true OR 1 = 1"),
            ("pageSize", "5"),
        ] {
            let err = parse_bulk_pairs(&[("where", "vip = true"), (key, value)]).unwrap_err();
            assert_eq!(err.status(), 400, "{key}={value}");
        }
    }
}
