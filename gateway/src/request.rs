//! Parsing PostgREST's URL grammar (the subset tollgate uses) and its `Prefer` and
//! `Accept` headers. Nothing here touches SQL: names are checked against the schema
//! cache and values are bound as parameters when the statement is built.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    Star,
    Column { name: String, alias: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// eq, neq, gt, gte, lt, lte, like, ilike, isdistinct: the SQL operator and the value.
    Cmp(&'static str, String),
    In(Vec<String>),
    Is(IsValue),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub negate: bool,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub column: String,
    pub desc: bool,
    /// Some(true) = NULLS FIRST, Some(false) = NULLS LAST.
    pub nulls_first: Option<bool>,
}

/// The query string of a request, split into PostgREST's reserved parameters and the
/// rest (filters on tables, arguments on `GET /rpc/...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub select: Option<Vec<SelectItem>>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub on_conflict: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
    pub apikey: Option<String>,
    /// Everything else, decoded, in order.
    pub rest: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Result<Query, ApiError> {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            match k.as_str() {
                "select" => q.select = Some(parse_select(&v)?),
                "order" => q.order = parse_order(&v)?,
                "limit" => q.limit = Some(parse_count(&v, "limit")?),
                "offset" => q.offset = Some(parse_count(&v, "offset")?),
                "on_conflict" => q.on_conflict = Some(parse_names(&v)),
                "columns" => q.columns = Some(parse_names(&v)),
                "apikey" => q.apikey = Some(v),
                "or" | "and" | "not.or" | "not.and" => {
                    return Err(ApiError::unsupported("the `or`/`and` logical filters"))
                }
                _ => q.rest.push((k, v)),
            }
        }
        Ok(q)
    }

    /// The non-reserved parameters read as filters.
    pub fn filters(&self) -> Result<Vec<Filter>, ApiError> {
        self.rest.iter().map(|(k, v)| parse_filter(k, v)).collect()
    }
}

fn parse_count(v: &str, what: &str) -> Result<u64, ApiError> {
    v.trim().parse::<u64>().map_err(|_| {
        ApiError::bad_param(
            format!("\"failed to parse {what} parameter ({v})\""),
            format!("`{v}` is not a non-negative integer"),
        )
    })
}

/// A column name as written in the URL: plain, or double-quoted (`"my col"`).
fn unquote(name: &str) -> String {
    let n = name.trim();
    if n.len() >= 2 && n.starts_with('"') && n.ends_with('"') {
        n[1..n.len() - 1].replace("\"\"", "\"")
    } else {
        n.to_string()
    }
}

fn parse_names(v: &str) -> Vec<String> {
    v.split(',')
        .map(unquote)
        .filter(|s| !s.is_empty())
        .collect()
}

fn check_plain_column(name: &str) -> Result<(), ApiError> {
    if name.contains("->") {
        return Err(ApiError::unsupported("JSON path (`->`, `->>`) access"));
    }
    Ok(())
}

pub fn parse_select(v: &str) -> Result<Vec<SelectItem>, ApiError> {
    if v.contains('(') || v.contains(')') {
        return Err(ApiError::unsupported("resource embedding in `select`"));
    }
    let mut items = Vec::new();
    for raw in v.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            continue;
        }
        if item == "*" {
            items.push(SelectItem::Star);
            continue;
        }
        if item.starts_with("...") {
            return Err(ApiError::unsupported("the spread operator in `select`"));
        }
        if item.contains("::") {
            return Err(ApiError::unsupported("casts in `select`"));
        }
        let (alias, name) = match item.split_once(':') {
            Some((a, n)) => (Some(unquote(a)), unquote(n)),
            None => (None, unquote(item)),
        };
        check_plain_column(&name)?;
        if name.is_empty() || alias.as_ref().is_some_and(String::is_empty) {
            return Err(ApiError::bad_param(
                format!("\"failed to parse select parameter ({v})\""),
                format!("empty name in `{item}`"),
            ));
        }
        items.push(SelectItem::Column { name, alias });
    }
    if items.is_empty() {
        items.push(SelectItem::Star);
    }
    Ok(items)
}

pub fn parse_order(v: &str) -> Result<Vec<OrderTerm>, ApiError> {
    let mut terms = Vec::new();
    for raw in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // The column may be quoted and contain dots; modifiers follow the last quote.
        let (column, mods) = if let Some(rest) = raw.strip_prefix('"') {
            let end = rest.find('"').ok_or_else(|| bad_order(v))?;
            (
                rest[..end].to_string(),
                rest[end + 1..].trim_start_matches('.'),
            )
        } else {
            match raw.split_once('.') {
                Some((c, m)) => (c.to_string(), m),
                None => (raw.to_string(), ""),
            }
        };
        check_plain_column(&column)?;
        let mut term = OrderTerm {
            column,
            desc: false,
            nulls_first: None,
        };
        for m in mods.split('.').filter(|m| !m.is_empty()) {
            match m {
                "asc" => term.desc = false,
                "desc" => term.desc = true,
                "nullsfirst" => term.nulls_first = Some(true),
                "nullslast" => term.nulls_first = Some(false),
                _ => return Err(bad_order(v)),
            }
        }
        terms.push(term);
    }
    Ok(terms)
}

fn bad_order(v: &str) -> ApiError {
    ApiError::bad_param(
        format!("\"failed to parse order ({v})\""),
        "expecting a column, optionally followed by .asc/.desc and .nullsfirst/.nullslast",
    )
}

/// `in.(a,b,"c,d")`, as PostgREST's `pListVal` reads it: elements separated by commas;
/// an element that starts with a double quote and ends with one right before the next
/// `,` or `)` is quoted (backslash escapes inside, commas and parentheses allowed);
/// any other element is taken verbatim, spaces included.
fn parse_in_list(list: &str) -> Option<Vec<String>> {
    let inner = list
        .trim_matches(|c| c == ' ' || c == '\t')
        .strip_prefix('(')?
        .strip_suffix(')')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    let chars: Vec<char> = inner.chars().collect();
    let mut values = Vec::new();
    let mut i = 0;
    loop {
        // A quoted element, if it closes right before a separator or the end.
        let mut quoted = None;
        if chars.get(i) == Some(&'"') {
            let mut j = i + 1;
            let mut v = String::new();
            while j < chars.len() {
                match chars[j] {
                    '\\' if j + 1 < chars.len() => {
                        v.push(chars[j + 1]);
                        j += 2;
                    }
                    '"' => break,
                    c => {
                        v.push(c);
                        j += 1;
                    }
                }
            }
            if j < chars.len() && (j + 1 == chars.len() || chars[j + 1] == ',') {
                quoted = Some((v, j + 1));
            }
        }
        let (value, end) = match quoted {
            Some(q) => q,
            None => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == ',' || c == ')')
                    .map_or(chars.len(), |p| i + p);
                if chars.get(end) == Some(&')') {
                    return None;
                }
                (chars[i..end].iter().collect(), end)
            }
        };
        values.push(value);
        if end >= chars.len() {
            return Some(values);
        }
        i = end + 1; // past the comma
    }
}

pub fn parse_filter(key: &str, value: &str) -> Result<Filter, ApiError> {
    let column = unquote(key);
    check_plain_column(&column)?;
    let bad = || {
        ApiError::bad_param(
            format!("\"failed to parse filter ({value})\" (line 1, column 1)"),
            "expecting an operator such as eq., neq., gt., gte., lt., lte., like., ilike., in., is., isdistinct. (optionally after not.)",
        )
    };
    let (negate, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (op, operand) = rest.split_once('.').ok_or_else(bad)?;
    let op = match op {
        "eq" => Op::Cmp("=", operand.to_string()),
        "neq" => Op::Cmp("<>", operand.to_string()),
        "gt" => Op::Cmp(">", operand.to_string()),
        "gte" => Op::Cmp(">=", operand.to_string()),
        "lt" => Op::Cmp("<", operand.to_string()),
        "lte" => Op::Cmp("<=", operand.to_string()),
        "like" => Op::Cmp("like", operand.replace('*', "%")),
        "ilike" => Op::Cmp("ilike", operand.replace('*', "%")),
        "isdistinct" => Op::Cmp("is distinct from", operand.to_string()),
        "in" => Op::In(parse_in_list(operand).ok_or_else(bad)?),
        "is" => Op::Is(match operand.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => return Err(bad()),
        }),
        "match" | "imatch" | "fts" | "plfts" | "phfts" | "wfts" | "cs" | "cd" | "ov" | "sl"
        | "sr" | "nxr" | "nxl" | "adj" => {
            return Err(ApiError::unsupported(&format!("the `{op}` operator")))
        }
        _ if op.starts_with("fts(")
            || op.starts_with("plfts(")
            || op.starts_with("phfts(")
            || op.starts_with("wfts(") =>
        {
            return Err(ApiError::unsupported("full-text search operators"))
        }
        _ if op.ends_with("(any)") || op.ends_with("(all)") => {
            return Err(ApiError::unsupported("the any/all operator modifiers"))
        }
        _ => return Err(bad()),
    };
    Ok(Filter { column, negate, op })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    HeadersOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// The `Prefer` header(s) (RFC 7240), the preferences PostgREST defines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefer {
    pub ret: Option<Return>,
    pub resolution: Option<Resolution>,
    pub count_exact: bool,
    pub strict: bool,
    /// Preferences this stand-in does not understand or implement.
    pub unknown: Vec<String>,
}

impl Prefer {
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Prefer {
        let mut p = Prefer::default();
        for token in values
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            match token {
                "return=minimal" => p.ret = Some(Return::Minimal),
                "return=representation" => p.ret = Some(Return::Representation),
                "return=headers-only" => p.ret = Some(Return::HeadersOnly),
                "resolution=merge-duplicates" => p.resolution = Some(Resolution::MergeDuplicates),
                "resolution=ignore-duplicates" => p.resolution = Some(Resolution::IgnoreDuplicates),
                "count=exact" => p.count_exact = true,
                "handling=strict" => p.strict = true,
                "handling=lenient" => p.strict = false,
                other => p.unknown.push(other.to_string()),
            }
        }
        p
    }

    /// PGRST122 when `handling=strict` meets preferences that are not honoured.
    pub fn check_strict(&self) -> Result<(), ApiError> {
        if self.strict && !self.unknown.is_empty() {
            return Err(ApiError::new(
                400,
                "PGRST122",
                "Invalid preferences given with handling=strict",
            )
            .details(format!("Invalid preferences: {}", self.unknown.join(", "))));
        }
        Ok(())
    }
}

/// What the client accepts: the JSON array (default) or a single object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    Object,
}

pub fn parse_accept(header: Option<&str>) -> Result<Accept, ApiError> {
    let Some(h) = header else {
        return Ok(Accept::Json);
    };
    let types: Vec<String> = h
        .split(',')
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() {
        return Ok(Accept::Json);
    }
    for t in &types {
        match t.as_str() {
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
                return Ok(Accept::Object)
            }
            "application/json"
            | "application/*"
            | "*/*"
            | "application/vnd.pgrst.array+json"
            | "application/vnd.pgrst.array" => return Ok(Accept::Json),
            _ => {}
        }
    }
    Err(ApiError::new(
        406,
        "PGRST107",
        format!(
            "None of these media types are available: {}",
            types.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter("id", "eq.5").unwrap(),
            Filter {
                column: "id".into(),
                negate: false,
                op: Op::Cmp("=", "5".into())
            }
        );
        assert_eq!(
            parse_filter("x", "not.is.null").unwrap().op,
            Op::Is(IsValue::Null)
        );
        assert!(parse_filter("x", "not.is.null").unwrap().negate);
        assert_eq!(
            parse_filter("s", r#"in.(a,"b,c","d\"e",)"#).unwrap().op,
            Op::In(vec!["a".into(), "b,c".into(), "d\"e".into(), "".into()])
        );
        // As PostgREST: unquoted elements keep their spaces; a quote not closing right
        // before a separator is part of the value.
        assert_eq!(
            parse_filter("s", r#"in.(a, b,"c" ,d)"#).unwrap().op,
            Op::In(vec!["a".into(), " b".into(), "\"c\" ".into(), "d".into()])
        );
        assert_eq!(parse_filter("s", "in.()").unwrap().op, Op::In(vec![]));
        assert_eq!(
            parse_filter("s", "like.ab*").unwrap().op,
            Op::Cmp("like", "ab%".into())
        );
        // A value may contain dots and quotes: everything after the operator is the value.
        assert_eq!(
            parse_filter("s", "eq.a.b'c").unwrap().op,
            Op::Cmp("=", "a.b'c".into())
        );
        assert_eq!(parse_filter("\"my col\"", "eq.1").unwrap().column, "my col");
        assert_eq!(parse_filter("s", "bogus.1").unwrap_err().code, "PGRST100");
        assert_eq!(parse_filter("s", "5").unwrap_err().code, "PGRST100");
        assert_eq!(parse_filter("s", "fts.x").unwrap_err().code, "PGRST127");
        assert_eq!(parse_filter("s", "in.(a").unwrap_err().code, "PGRST100");
        assert_eq!(parse_filter("s", "is.maybe").unwrap_err().code, "PGRST100");
    }

    #[test]
    fn select_and_order() {
        assert_eq!(
            parse_select("id, label:name,*").unwrap(),
            vec![
                SelectItem::Column {
                    name: "id".into(),
                    alias: None
                },
                SelectItem::Column {
                    name: "name".into(),
                    alias: Some("label".into())
                },
                SelectItem::Star
            ]
        );
        assert_eq!(parse_select("").unwrap(), vec![SelectItem::Star]);
        assert_eq!(parse_select("x,rel(*)").unwrap_err().code, "PGRST127");
        assert_eq!(parse_select("x::text").unwrap_err().code, "PGRST127");
        assert_eq!(
            parse_order("a.desc.nullslast,b,\"c.d\".asc").unwrap(),
            vec![
                OrderTerm {
                    column: "a".into(),
                    desc: true,
                    nulls_first: Some(false)
                },
                OrderTerm {
                    column: "b".into(),
                    desc: false,
                    nulls_first: None
                },
                OrderTerm {
                    column: "c.d".into(),
                    desc: false,
                    nulls_first: None
                },
            ]
        );
        assert!(parse_order("a.sideways").is_err());
    }

    #[test]
    fn query_string() {
        let q = Query::parse("select=id&id=in.(1,2)&order=id.desc&limit=2&offset=1&on_conflict=a,%22b%22&name=eq.a%2Bb+c").unwrap();
        assert_eq!(q.limit, Some(2));
        assert_eq!(q.offset, Some(1));
        assert_eq!(q.on_conflict, Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            q.rest,
            vec![
                ("id".into(), "in.(1,2)".into()),
                ("name".into(), "eq.a+b c".into())
            ]
        );
        assert_eq!(q.filters().unwrap().len(), 2);
        assert!(Query::parse("limit=-1").is_err());
        assert!(Query::parse("or=(a.eq.1,b.eq.2)").is_err());
    }

    #[test]
    fn prefer_and_accept() {
        let p = Prefer::parse(
            [
                "return=representation, resolution=merge-duplicates",
                "count=exact",
            ]
            .into_iter(),
        );
        assert_eq!(p.ret, Some(Return::Representation));
        assert_eq!(p.resolution, Some(Resolution::MergeDuplicates));
        assert!(p.count_exact && p.check_strict().is_ok());
        let p = Prefer::parse(["handling=strict, foo"].into_iter());
        assert_eq!(p.check_strict().unwrap_err().code, "PGRST122");
        assert_eq!(parse_accept(None).unwrap(), Accept::Json);
        assert_eq!(
            parse_accept(Some("application/vnd.pgrst.object+json")).unwrap(),
            Accept::Object
        );
        assert_eq!(
            parse_accept(Some("text/html, */*;q=0.8")).unwrap(),
            Accept::Json
        );
        assert_eq!(parse_accept(Some("text/csv")).unwrap_err().status, 406);
    }
}
