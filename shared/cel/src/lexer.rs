//! The tokenizer: CEL source text to a list of tokens with their byte offsets.

use super::error::CompileError;

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An integer literal without sign; the parser range-checks it (so that
    /// `-9223372036854775808` can be written).
    Int(u64),
    Uint(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Ident(String),
    /// A field name in backticks (`` a.`content-type` ``).
    QuotedIdent(String),
    True,
    False,
    Null,
    In,
    /// Punctuation and operators, spelled as in the source.
    Punct(&'static str),
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Int(n) => format!("'{n}'"),
            Self::Uint(n) => format!("'{n}u'"),
            Self::Double(d) => format!("'{d}'"),
            Self::String(_) => "string literal".into(),
            Self::Bytes(_) => "bytes literal".into(),
            Self::Ident(name) => format!("'{name}'"),
            Self::QuotedIdent(name) => format!("'`{name}`'"),
            Self::True => "'true'".into(),
            Self::False => "'false'".into(),
            Self::Null => "'null'".into(),
            Self::In => "'in'".into(),
            Self::Punct(p) => format!("'{p}'"),
            Self::Eof => "end of input".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub offset: usize,
}

/// Words CEL reserves: they cannot name a variable or function (but may name a field
/// after `.`, so that `body.package` works).
pub(crate) const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Punctuation, longest first so that `<=` wins over `<`.
const PUNCTS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "?", ":", ".", ",",
    "(", ")", "[", "]", "{", "}",
];

/// Splits `source` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, CompileError> {
    let mut lexer = Lexer {
        src: source,
        bytes: source.as_bytes(),
        pos: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_trivia();
        let offset = lexer.pos;
        let Some(&c) = lexer.bytes.get(offset) else {
            tokens.push(Token {
                tok: Tok::Eof,
                offset,
            });
            return Ok(tokens);
        };
        let tok = if c.is_ascii_digit()
            || (c == b'.' && lexer.bytes.get(offset + 1).is_some_and(u8::is_ascii_digit))
        {
            lexer.number()?
        } else if c == b'_' || c.is_ascii_alphabetic() {
            lexer.word()?
        } else if c == b'`' {
            lexer.quoted_ident()?
        } else if c == b'"' || c == b'\'' {
            Tok::String(lexer.string_body(false, false)?.into_string())
        } else if let Some(p) = PUNCTS.iter().find(|p| lexer.src[offset..].starts_with(**p)) {
            lexer.pos += p.len();
            Tok::Punct(p)
        } else {
            let ch = lexer.src[offset..].chars().next().unwrap_or('?');
            return Err(CompileError::at(
                source,
                offset,
                format!("unexpected character '{ch}'"),
            ));
        };
        tokens.push(Token { tok, offset });
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> CompileError {
        CompileError::at(self.src, offset, message)
    }

    /// Skips whitespace and `//` comments.
    fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// A backtick-quoted identifier: letters, digits, `_`, `.`, `-`, `/` and spaces.
    fn quoted_ident(&mut self) -> Result<Tok, CompileError> {
        let start = self.pos;
        self.pos += 1;
        let body_start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_.-/ ".contains(&c))
        {
            self.pos += 1;
        }
        if self.peek() != Some(b'`') || self.pos == body_start {
            return Err(self.error(start, "invalid quoted identifier"));
        }
        let name = self.src[body_start..self.pos].to_owned();
        self.pos += 1;
        Ok(Tok::QuotedIdent(name))
    }

    /// An identifier, keyword, or a string/bytes literal with an `r`/`b` prefix.
    fn word(&mut self) -> Result<Tok, CompileError> {
        let start = self.pos;
        // String prefixes: r, b, rb, br in either case, directly followed by a quote.
        let mut raw = false;
        let mut bytes = false;
        let mut probe = self.pos;
        for _ in 0..2 {
            match self.bytes.get(probe) {
                Some(b'r' | b'R') if !raw => raw = true,
                Some(b'b' | b'B') if !bytes => bytes = true,
                _ => break,
            }
            probe += 1;
        }
        if (raw || bytes) && matches!(self.bytes.get(probe), Some(b'"' | b'\'')) {
            self.pos = probe;
            let text = self.string_body(raw, bytes)?;
            return Ok(if bytes {
                Tok::Bytes(text.into_bytes_lossless())
            } else {
                Tok::String(text.into_string())
            });
        }
        while self
            .peek()
            .is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric())
        {
            self.pos += 1;
        }
        let word = &self.src[start..self.pos];
        Ok(match word {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            "in" => Tok::In,
            w => Tok::Ident(w.to_owned()),
        })
    }

    fn number(&mut self) -> Result<Tok, CompileError> {
        let start = self.pos;
        if self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X')) {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            let digits = &self.src[digits_start..self.pos];
            let value = u64::from_str_radix(digits, 16)
                .map_err(|_| self.error(start, "invalid hexadecimal literal"))?;
            return self.int_suffix(start, value);
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let mut is_double = false;
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            is_double = true;
            self.pos += 1;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let mut probe = self.pos + 1;
            if matches!(self.bytes.get(probe), Some(b'+' | b'-')) {
                probe += 1;
            }
            if self.bytes.get(probe).is_some_and(u8::is_ascii_digit) {
                is_double = true;
                self.pos = probe;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
        }
        let text = &self.src[start..self.pos];
        if is_double {
            let value: f64 = text
                .parse()
                .map_err(|_| self.error(start, format!("invalid number '{text}'")))?;
            return Ok(Tok::Double(value));
        }
        let value: u64 = text
            .parse()
            .map_err(|_| self.error(start, format!("integer literal '{text}' is out of range")))?;
        self.int_suffix(start, value)
    }

    fn int_suffix(&mut self, start: usize, value: u64) -> Result<Tok, CompileError> {
        if matches!(self.peek(), Some(b'u' | b'U')) {
            self.pos += 1;
            Ok(Tok::Uint(value))
        } else if self
            .peek()
            .is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric())
        {
            Err(self.error(start, "invalid number literal"))
        } else {
            Ok(Tok::Int(value))
        }
    }

    /// A quoted literal starting at the opening quote; handles triple quotes and escapes.
    fn string_body(&mut self, raw: bool, bytes: bool) -> Result<Literal, CompileError> {
        let start = self.pos;
        let quote = self.peek().unwrap_or(b'"');
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.pos += if triple { 3 } else { 1 };
        let mut out = Literal::default();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, "unterminated string literal"));
            };
            if c == quote {
                if !triple {
                    self.pos += 1;
                    return Ok(out);
                }
                if self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote) {
                    self.pos += 3;
                    return Ok(out);
                }
            }
            if !triple && (c == b'\n' || c == b'\r') {
                return Err(self.error(start, "unterminated string literal"));
            }
            if c == b'\\' && !raw {
                self.escape(bytes, &mut out)?;
                continue;
            }
            if c == b'\\' && raw {
                // A raw string keeps the backslash, but `\'` still does not end it.
                out.push_char('\\');
                self.pos += 1;
                if self.peek() == Some(quote) {
                    out.push_char(char::from(quote));
                    self.pos += 1;
                }
                continue;
            }
            let ch = self.src[self.pos..].chars().next().unwrap_or('\u{fffd}');
            out.push_char(ch);
            self.pos += ch.len_utf8();
        }
    }

    fn escape(&mut self, bytes: bool, out: &mut Literal) -> Result<(), CompileError> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.error(start, "unterminated string literal"));
        };
        self.pos += 1;
        let simple = match c {
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\x0b'),
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'`' => Some('`'),
            b'?' => Some('?'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push_char(ch);
            return Ok(());
        }
        let (radix, len) = match c {
            b'x' | b'X' => (16, 2),
            b'u' => (16, 4),
            b'U' => (16, 8),
            b'0'..=b'3' => {
                self.pos -= 1;
                (8, 3)
            }
            _ => return Err(self.error(start, "invalid escape sequence")),
        };
        let digits = self
            .src
            .get(self.pos..self.pos + len)
            .filter(|d| d.chars().all(|ch| ch.is_digit(radix)))
            .ok_or_else(|| self.error(start, "invalid escape sequence"))?;
        let value = u32::from_str_radix(digits, radix)
            .map_err(|_| self.error(start, "invalid escape sequence"))?;
        self.pos += len;
        let is_byte_escape = matches!(c, b'x' | b'X' | b'0'..=b'3');
        if bytes && is_byte_escape {
            let byte =
                u8::try_from(value).map_err(|_| self.error(start, "invalid escape sequence"))?;
            out.push_byte(byte);
        } else {
            let ch = char::from_u32(value)
                .ok_or_else(|| self.error(start, "invalid unicode code point in escape"))?;
            out.push_char(ch);
        }
        Ok(())
    }
}

/// The content of a string or bytes literal as it is built: raw bytes, which a string
/// literal only ever fills with whole UTF-8 characters.
#[derive(Default)]
struct Literal(Vec<u8>);

impl Literal {
    fn push_char(&mut self, ch: char) {
        let mut buf = [0u8; 4];
        self.0
            .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }

    fn push_byte(&mut self, byte: u8) {
        self.0.push(byte);
    }

    fn into_bytes_lossless(self) -> Vec<u8> {
        self.0
    }

    fn into_string(self) -> String {
        // Only `push_char` is used for string literals, so this is always valid UTF-8.
        String::from_utf8(self.0)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}
