//! Policy text to tokens, each with the line and column it starts at.

use crate::error::{ParseErrorKind, PolicyParseError};

/// Longest string literal or identifier. Claim types and values in SGX policies are at most a
/// few hundred characters (a 64-byte REPORTDATA is 128 hex digits); the cap bounds the memory a
/// hostile policy makes the parser copy.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A place in the policy text: 1-based line, 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A name: section and function names, claim variables, `true`/`false`, `type`/`value`.
    /// Names may hold `-`, `_` and `$` (the deprecated aliases start with `$`).
    Ident(String),
    /// A double-quoted string, escapes (`\"`, `\\`) resolved.
    Str(String),
    /// Digits, maybe with a leading `-` and one `.` (a version number): kept as text.
    Number(String),
    /// `=`
    Assign,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=>`
    Arrow,
    /// `&&`
    And,
    Semi,
    Comma,
    Colon,
    Dot,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    LParen,
    RParen,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("name `{s}`"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Number(s) => format!("number {s}"),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Assign => "=",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Arrow => "=>",
            Tok::And => "&&",
            Tok::Semi => ";",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Dot => ".",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Ident(_) | Tok::Str(_) | Tok::Number(_) => "",
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$'
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Position,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.column = 1;
        } else {
            self.pos.column = self.pos.column.saturating_add(1);
        }
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.bump();
            true
        } else {
            false
        }
    }
}

fn err(at: Position, kind: ParseErrorKind) -> PolicyParseError {
    PolicyParseError { at, kind }
}

/// Splits `text` into tokens. The caller has already capped the text's size.
pub fn tokenize(text: &str, max_tokens: usize) -> Result<Vec<(Position, Tok)>, PolicyParseError> {
    let mut cur = Cursor {
        chars: text.chars().peekable(),
        pos: Position { line: 1, column: 1 },
    };
    let mut out = Vec::new();
    while let Some(c) = cur.peek() {
        let at = cur.pos;
        if c.is_whitespace() {
            cur.bump();
            continue;
        }
        if out.len() >= max_tokens {
            return Err(err(at, ParseErrorKind::TooManyTokens { limit: max_tokens }));
        }
        let tok = if is_name_start(c) {
            let mut s = String::new();
            while let Some(c) = cur.peek().filter(|c| is_name_char(*c)) {
                if s.len() >= MAX_TOKEN_LEN {
                    return Err(err(
                        at,
                        ParseErrorKind::TokenTooLong {
                            limit: MAX_TOKEN_LEN,
                        },
                    ));
                }
                s.push(c);
                cur.bump();
            }
            Tok::Ident(s)
        } else if c.is_ascii_digit() || c == '-' {
            let mut s = String::new();
            if cur.eat('-') {
                s.push('-');
            }
            let mut dots = 0;
            while let Some(c) = cur.peek().filter(|c| c.is_ascii_digit() || *c == '.') {
                if c == '.' {
                    dots += 1;
                }
                if s.len() >= MAX_TOKEN_LEN {
                    return Err(err(
                        at,
                        ParseErrorKind::TokenTooLong {
                            limit: MAX_TOKEN_LEN,
                        },
                    ));
                }
                s.push(c);
                cur.bump();
            }
            if s == "-" || s.ends_with('.') || dots > 1 || s.starts_with("-.") {
                return Err(err(at, ParseErrorKind::BadNumber(s)));
            }
            Tok::Number(s)
        } else if c == '"' {
            cur.bump();
            let mut s = String::new();
            loop {
                let Some(c) = cur.bump() else {
                    return Err(err(at, ParseErrorKind::UnterminatedString));
                };
                match c {
                    '"' => break,
                    '\\' => match cur.bump() {
                        Some(e @ ('"' | '\\')) => s.push(e),
                        _ => return Err(err(at, ParseErrorKind::BadEscape)),
                    },
                    '\n' => return Err(err(at, ParseErrorKind::UnterminatedString)),
                    c => s.push(c),
                }
                if s.len() > MAX_TOKEN_LEN {
                    return Err(err(
                        at,
                        ParseErrorKind::TokenTooLong {
                            limit: MAX_TOKEN_LEN,
                        },
                    ));
                }
            }
            Tok::Str(s)
        } else {
            cur.bump();
            match c {
                '=' if cur.eat('=') => Tok::Eq,
                '=' if cur.eat('>') => Tok::Arrow,
                '=' => Tok::Assign,
                '!' if cur.eat('=') => Tok::Ne,
                '<' if cur.eat('=') => Tok::Le,
                '<' => Tok::Lt,
                '>' if cur.eat('=') => Tok::Ge,
                '>' => Tok::Gt,
                '&' if cur.eat('&') => Tok::And,
                ';' => Tok::Semi,
                ',' => Tok::Comma,
                ':' => Tok::Colon,
                '.' => Tok::Dot,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '{' => Tok::LBrace,
                '}' => Tok::RBrace,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                other => return Err(err(at, ParseErrorKind::UnexpectedChar(other))),
            }
        };
        out.push((at, tok));
    }
    Ok(out)
}
