//! The path inside a `$(…)` expression, such as `body.commits[0].message`: a root and a list
//! of segments. It is a small AST so that it can grow toward client-go's JSONPath dialect.

use std::fmt;

use super::Problem;

/// Characters a field name cannot hold unescaped: `.` and `[` start the next segment, the
/// rest are kept for later JSONPath syntax (filters, wildcards, quoted names).
const RESERVED: &[char] = &[
    '.', '[', ']', '(', ')', '{', '}', '*', '?', '@', '\'', '"', '\\',
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: Root,
    pub segments: Vec<Segment>,
}

/// What an expression starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Body,
    Header,
    Extensions,
    Context,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `.name`; `\` makes the next character literal, as in `app\.kubernetes\.io/name`.
    Key(String),
    /// `[n]`.
    Index(usize),
}

impl Root {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::Header => "header",
            Self::Extensions => "extensions",
            Self::Context => "context",
        }
    }
}

impl Path {
    /// Parses the text between `$(` and `)`.
    pub fn parse(text: &str) -> Result<Self, Problem> {
        let root_end = text.find(['.', '[']).unwrap_or(text.len());
        let root = match &text[..root_end] {
            "" => {
                return Err(syntax(
                    "expected `body`, `header`, `extensions` or `context`",
                    0,
                ));
            }
            "body" => Root::Body,
            "header" => Root::Header,
            "extensions" => Root::Extensions,
            "context" => Root::Context,
            other => return Err(Problem::UnknownRoot(other.to_owned())),
        };
        let mut parser = Parser {
            text,
            pos: root_end,
        };
        let mut segments = Vec::new();
        while let Some(c) = parser.next() {
            segments.push(match c {
                '.' => Segment::Key(parser.key()?),
                '[' => Segment::Index(parser.index()?),
                _ => return Err(syntax("expected `.` or `[`", parser.pos - c.len_utf8())),
            });
        }
        Ok(Self { root, segments })
    }

    /// The root and the first `n` segments, as text; names the value an error is about.
    pub fn prefix(&self, n: usize) -> String {
        let mut out = self.root.as_str().to_owned();
        for segment in self.segments.iter().take(n) {
            out.push_str(&segment.to_string());
        }
        out
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix(self.segments.len()))
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => {
                f.write_str(".")?;
                for c in key.chars() {
                    if RESERVED.contains(&c) || c.is_whitespace() {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Self::Index(index) => write!(f, "[{index}]"),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// A field name, after its `.`: up to the next unescaped `.` or `[`.
    fn key(&mut self) -> Result<String, Problem> {
        let mut key = String::new();
        while let Some(c) = self.peek() {
            if c == '.' || c == '[' {
                break;
            }
            self.next();
            if c == '\\' {
                key.push(
                    self.next()
                        .ok_or(syntax("`\\` escapes nothing", self.pos - 1))?,
                );
            } else if RESERVED.contains(&c) || c.is_whitespace() {
                let what = "character must be escaped with `\\` in a field name";
                return Err(syntax(what, self.pos - c.len_utf8()));
            } else {
                key.push(c);
            }
        }
        if key.is_empty() {
            return Err(syntax("expected a field name", self.pos));
        }
        Ok(key)
    }

    /// An array index, after its `[`: decimal digits and `]`.
    fn index(&mut self) -> Result<usize, Problem> {
        let start = self.pos;
        let digits = self.text[start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.text.len() - start);
        let index = self.text[start..start + digits]
            .parse()
            .map_err(|_| syntax("expected a non-negative integer index", start))?;
        self.pos += digits;
        match self.next() {
            Some(']') => Ok(index),
            _ => Err(syntax("expected `]`", start + digits)),
        }
    }
}

fn syntax(what: &'static str, offset: usize) -> Problem {
    Problem::Syntax { what, offset }
}
