//! The instance file format: pure parsing, no I/O.

use std::path::Path;

use crate::{Error, Instance, InvalidInstance, Result};

/// Parses the text of an instance file into instances, in file order.
///
/// The format is described in the [module docs](crate::file#format): one `host:port` per
/// line, checked by [`Instance::parse`], then optional `weight=N`, `zone=Z` and `tag=T` fields (`tag` repeatable); `#`
/// starts a comment anywhere on a line; blank lines are ignored, and so is a byte-order
/// mark (`U+FEFF`) at the very start. Duplicate addresses are kept here; the instancer's
/// published set keeps the first of them.
///
/// `path` only labels errors. The first bad line fails the whole text with an
/// [`Error::InvalidInstance`] naming the path and the 1-based line number: a caller gets
/// every instance or none, never a partial list.
///
/// ```
/// use waypost::file::parse;
/// let text = "10.0.0.1:80 weight=2 zone=eu-1 tag=v2 tag=canary  # primary\n\n[::1]:8080\n";
/// let instances = parse(text, None)?;
/// assert_eq!(instances.len(), 2);
/// let meta = instances[0].metadata().unwrap();
/// assert_eq!((meta.weight(), meta.zone()), (Some(2), Some("eu-1")));
/// assert_eq!(meta.tags().collect::<Vec<_>>(), ["v2", "canary"]);
/// assert_eq!(instances[1].host(), Some("::1"));
///
/// let err = parse("10.0.0.1:80\n10.0.0.2:80 color=blue\n", None).unwrap_err();
/// assert!(err.to_string().contains("line 2"));
/// # Ok::<(), waypost::Error>(())
/// ```
pub fn parse(text: &str, path: Option<&Path>) -> Result<Vec<Instance>> {
    // Some editors start a UTF-8 file with a byte-order mark; it is not part of a host.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut instances = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let content = line.split_once('#').map_or(line, |(before, _)| before);
        let mut fields = content.split_whitespace();
        if let Some(addr) = fields.next() {
            let at = Position {
                path,
                line: index + 1,
            };
            instances.push(parse_line(addr, fields, &at)?);
        }
    }
    Ok(instances)
}

/// Where a line came from, to label its errors.
struct Position<'a> {
    path: Option<&'a Path>,
    line: usize,
}

impl Position<'_> {
    fn error(&self, input: &str, reason: impl Into<Box<str>>) -> Error {
        let details = InvalidInstance::new(input, reason).with_line(self.line);
        match self.path {
            Some(path) => details.with_path(path).into(),
            None => details.into(),
        }
    }
}

fn parse_line<'a>(
    addr: &str,
    fields: impl Iterator<Item = &'a str>,
    at: &Position<'_>,
) -> Result<Instance> {
    let plain = match Instance::parse(addr) {
        Ok(instance) => instance,
        Err(Error::InvalidInstance(details)) => return Err(at.error(addr, details.reason)),
        Err(other) => return Err(other),
    };
    let mut fields = fields.peekable();
    if fields.peek().is_none() {
        return Ok(plain);
    }
    let mut builder = Instance::builder(plain.addr_arc().clone());
    let (mut has_weight, mut has_zone) = (false, false);
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            return Err(at.error(field, "expected a `key=value` field after the address"));
        };
        if value.is_empty() {
            return Err(at.error(field, format!("empty value for `{key}`")));
        }
        let once = match key {
            "weight" => Some(&mut has_weight),
            "zone" => Some(&mut has_zone),
            _ => None,
        };
        if once.is_some_and(|seen| std::mem::replace(seen, true)) {
            return Err(at.error(field, format!("`{key}` given twice")));
        }
        builder = match key {
            "weight" => builder.weight(
                value
                    .parse()
                    .map_err(|_| at.error(field, "weight must be an integer in 0..=4294967295"))?,
            ),
            "zone" => builder.zone(value),
            "tag" => builder.tag(value),
            _ => {
                return Err(at.error(
                    field,
                    format!("unknown field `{key}` (expected weight, zone or tag)"),
                ));
            }
        };
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(instances: &[Instance]) -> Vec<&str> {
        instances.iter().map(Instance::addr).collect()
    }

    /// The error's line number, input and reason; panics if `text` parses.
    fn failure(text: &str) -> (usize, String, String) {
        match parse(text, Some(Path::new("/etc/svc.txt"))) {
            Err(Error::InvalidInstance(d)) => {
                assert_eq!(d.path.as_deref(), Some(Path::new("/etc/svc.txt")));
                (d.line.unwrap(), d.input.into(), d.reason.into())
            }
            other => panic!("expected InvalidInstance for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let text = "# header\n\n   \n10.0.0.1:80 # trailing\n\t10.0.0.2:80\t\n#10.0.0.3:80\n";
        let instances = parse(text, None).unwrap();
        assert_eq!(addrs(&instances), ["10.0.0.1:80", "10.0.0.2:80"]);
        assert!(instances.iter().all(|i| i.metadata().is_none()));
        assert!(parse("", None).unwrap().is_empty());
        assert!(parse("# nothing\n", None).unwrap().is_empty());
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored() {
        let instances = parse("\u{feff}10.0.0.1:80 zone=a\r\n10.0.0.2:80\r\n", None).unwrap();
        assert_eq!(addrs(&instances), ["10.0.0.1:80", "10.0.0.2:80"]);
        assert_eq!(instances[0].host(), Some("10.0.0.1"));
        assert!(parse("\u{feff}", None).unwrap().is_empty());
        assert!(
            parse("\u{feff}# only a comment\n", None)
                .unwrap()
                .is_empty()
        );
        // Only at the very start: elsewhere it is a character of the line, refused.
        let (line, _, _) = failure("10.0.0.1:80\n\u{feff}10.0.0.2:80\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn fields_become_metadata() {
        let instances = parse("a:1 tag=x weight=7 tag=y zone=z1\nb:2 weight=0\n", None).unwrap();
        let a = instances[0].metadata().unwrap();
        assert_eq!(a.weight(), Some(7));
        assert_eq!(a.zone(), Some("z1"));
        assert_eq!(a.tags().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(instances[1].metadata().unwrap().weight(), Some(0));
    }

    #[test]
    fn ipv6_names_and_crlf() {
        let text = "[::1]:443\r\n[fe80::1]:80 zone=lan\r\nsvc.example.test:8080\r\n";
        let instances = parse(text, None).unwrap();
        assert_eq!(
            addrs(&instances),
            ["[::1]:443", "[fe80::1]:80", "svc.example.test:8080"]
        );
        assert_eq!(instances[0].host(), Some("::1"));
    }

    #[test]
    fn file_order_and_duplicates_are_kept() {
        let instances = parse("b:1\na:1 weight=1\na:1 weight=2\n", None).unwrap();
        assert_eq!(addrs(&instances), ["b:1", "a:1", "a:1"]);
    }

    #[test]
    fn every_error_names_its_line() {
        let cases: &[(&str, usize, &str, &str)] = &[
            ("a:1\n\n# c\nnoport\n", 4, "noport", "host:port"),
            ("a:1\n::1:80\n", 2, "::1:80", "brackets"),
            ("a:0\n", 1, "a:0", "port"),
            ("a:1\na:0080\n", 2, "a:0080", "leading zeros"),
            ("a:+1\n", 1, "a:+1", "ASCII digits"),
            ("[10.0.0.1]:80\n", 1, "[10.0.0.1]:80", "only IPv6"),
            ("[FE80::1]:80\n", 1, "[FE80::1]:80", "[fe80::1]"),
            ("a\0b:80\n", 1, "a\0b:80", "'\\0'"),
            ("a\u{1b}b:80\n", 1, "a\u{1b}b:80", "'\\u{1b}'"),
            ("010.0.0.1:80\n", 1, "010.0.0.1:80", "dotted-quad"),
            (
                "a:1 colour=blue\n",
                1,
                "colour=blue",
                "unknown field `colour`",
            ),
            ("a:1\nb:1 weight\n", 2, "weight", "key=value"),
            ("a:1 weight=heavy\n", 1, "weight=heavy", "integer"),
            ("a:1 weight=-1\n", 1, "weight=-1", "integer"),
            ("a:1 weight=4294967296\n", 1, "weight=4294967296", "integer"),
            ("a:1\na:2\na:3 weight=1 weight=2\n", 3, "weight=2", "twice"),
            ("a:1 zone=x zone=y\n", 1, "zone=y", "twice"),
            ("a:1 zone=\n", 1, "zone=", "empty"),
            ("a:1 tag=\n", 1, "tag=", "empty"),
        ];
        for &(text, line, input, reason) in cases {
            let (got_line, got_input, got_reason) = failure(text);
            assert_eq!(got_line, line, "{text:?}");
            assert_eq!(got_input, input, "{text:?}");
            assert!(got_reason.contains(reason), "{text:?}: {got_reason}");
        }
    }

    #[test]
    fn the_message_names_path_and_line() {
        let err = parse("a:1\nb\n", Some(Path::new("/etc/svc.txt"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/etc/svc.txt") && text.contains("line 2"),
            "{text}"
        );
        assert!(err.is_invalid_input());
    }
}
