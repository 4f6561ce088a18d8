//! URI references resolved against a base URI (RFC 3986, section 5.2), as `$id` and `$ref` are:
//! enough for the registry's resolution of names and fragments, with no I/O and no
//! normalisation beyond the removal of dot segments.

/// The parts of a URI reference: `scheme:` `//authority` `path` `?query` `#fragment`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split(reference: &str) -> Parts<'_> {
    let (rest, fragment) = match reference.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (reference, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    // A scheme is letters, digits, '+', '-', '.' after a letter, before the first ':' that comes
    // before any '/'.
    let (scheme, rest) = match rest.split_once(':') {
        Some((scheme, after))
            if !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (Some(scheme), after)
        }
        _ => (None, rest),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(slash) => (after.get(..slash), after.get(slash..).unwrap_or_default()),
            None => (Some(after), ""),
        },
        None => (None, rest),
    };
    Parts {
        scheme,
        authority,
        path,
        query,
        fragment,
    }
}

/// RFC 3986 5.2.4: removes `.` and `..` segments.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (index, segment) in segments.iter().enumerate() {
        if index == 0 && absolute {
            continue;
        }
        match *segment {
            "." => trailing_slash = index == last,
            ".." => {
                output.pop();
                trailing_slash = index == last;
            }
            other => {
                output.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    if absolute {
        result.push('/');
    }
    result.push_str(&output.join("/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

/// RFC 3986 5.2.3: the base's path with its last segment replaced by `reference`.
fn merge(base: &Parts<'_>, reference: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{reference}");
    }
    match base.path.rfind('/') {
        Some(slash) => format!("{}{reference}", base.path.get(..=slash).unwrap_or_default()),
        None => reference.to_owned(),
    }
}

fn join(parts: &Parts<'_>, path: &str) -> String {
    let mut out = String::new();
    if let Some(scheme) = parts.scheme {
        out.push_str(scheme);
        out.push(':');
    }
    if let Some(authority) = parts.authority {
        out.push_str("//");
        out.push_str(authority);
    }
    out.push_str(path);
    if let Some(query) = parts.query {
        out.push('?');
        out.push_str(query);
    }
    if let Some(fragment) = parts.fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `reference` resolved against the absolute URI `base` (RFC 3986, section 5.2.2).
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    let r = split(reference);
    let b = split(base);
    if r.scheme.is_some() {
        let path = remove_dot_segments(r.path);
        return join(&r, &path);
    }
    let mut target = Parts {
        scheme: b.scheme,
        authority: r.authority,
        path: "",
        query: r.query,
        fragment: r.fragment,
    };
    let path = if r.authority.is_some() {
        remove_dot_segments(r.path)
    } else if r.path.is_empty() {
        target.authority = b.authority;
        if r.query.is_none() {
            target.query = b.query;
        }
        b.path.to_owned()
    } else {
        target.authority = b.authority;
        if r.path.starts_with('/') {
            remove_dot_segments(r.path)
        } else {
            remove_dot_segments(&merge(&b, r.path))
        }
    };
    join(&target, &path)
}

/// The URI without its fragment, and the fragment (empty when there is none).
pub(crate) fn split_fragment(uri: &str) -> (&str, &str) {
    match uri.split_once('#') {
        Some((base, fragment)) => (base, fragment),
        None => (uri, ""),
    }
}

/// The scheme of an absolute URI, lower-cased, if it has one.
pub(crate) fn scheme(uri: &str) -> Option<String> {
    split(uri).scheme.map(str::to_ascii_lowercase)
}

/// Percent-decodes a URI fragment (JSON pointers in `$ref` may escape characters).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut index = 0usize;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(index.saturating_add(1)).and_then(|b| hex(*b)),
                bytes.get(index.saturating_add(2)).and_then(|b| hex(*b)),
            )
        {
            out.push(high.wrapping_mul(16).wrapping_add(low));
            index = index.saturating_add(3);
            continue;
        }
        out.push(byte);
        index = index.saturating_add(1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(byte.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(byte.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_as_rfc_3986_says() {
        let base = "http://a/b/c/d;p?q";
        for (reference, expected) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("", "http://a/b/c/d;p?q"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("g:h", "g:h"),
        ] {
            assert_eq!(resolve(base, reference), expected, "{reference}");
        }
        assert_eq!(
            resolve("json-schema:///", "other.json"),
            "json-schema:///other.json"
        );
        assert_eq!(
            resolve("json-schema:///other.json", "#/definitions/a"),
            "json-schema:///other.json#/definitions/a"
        );
        assert_eq!(resolve("urn:example:root", "#foo"), "urn:example:root#foo");
        assert_eq!(percent_decode("/a%25b%7E"), "/a%b~");
        assert_eq!(scheme("HTTP://x").as_deref(), Some("http"));
        assert_eq!(scheme("other.json"), None);
    }
}
