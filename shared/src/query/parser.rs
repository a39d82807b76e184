//! Recursive-descent parser: tokens → a tree that remembers columns (for errors) → the
//! normalised [`Expr`].
//!
//! ```text
//! query   := or EOF
//! or      := and ( "OR" and )*
//! and     := unary ( "AND"? unary )*        -- implicit AND between adjacent terms
//! unary   := ( "NOT" | "-" ) unary | primary
//! primary := atom | "(" or ")"
//! ```

use super::lexer::{Token, TokenKind, lex};
use super::{Expr, MAX_NESTING, MAX_QUERY_CHARS, QueryError};

/// The parse tree, with the columns needed to point errors at their cause.
#[derive(Debug)]
enum Node {
    Atom { expr: Expr, column: usize },
    Not { column: usize, inner: Box<Node> },
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// Parses and normalises a whole query.
pub(super) fn parse(text: &str) -> Result<Expr, QueryError> {
    let chars: Vec<char> = text.chars().take(MAX_QUERY_CHARS + 1).collect();
    if chars.len() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong {
            chars: text.chars().count(),
            max: MAX_QUERY_CHARS,
        });
    }
    let tokens = lex(&chars)?;
    if tokens.is_empty() {
        return Err(QueryError::Empty);
    }
    let mut parser = Parser { tokens, pos: 0 };
    let root = parser.or(0)?;
    if let Some(token) = parser.peek() {
        // `or` consumes every token that can continue an expression; only `)` is left over.
        return Err(QueryError::UnexpectedParenthesis {
            column: token.column,
        });
    }
    if let Some(column) = nothing_to_look_for(&root) {
        return Err(QueryError::NothingToLookFor { column });
    }
    Ok(lower(root))
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// Whether a token can start an operand.
fn starts_operand(token: Option<&Token>) -> bool {
    token.is_some_and(|t| {
        matches!(
            t.kind,
            TokenKind::Atom(_) | TokenKind::LParen | TokenKind::Not | TokenKind::Minus
        )
    })
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    /// After an operator at `column`: the next token must start an operand.
    fn expect_operand(&self, column: usize, after: &'static str) -> Result<(), QueryError> {
        if starts_operand(self.peek()) {
            Ok(())
        } else {
            Err(QueryError::ExpectedTerm { column, after })
        }
    }

    fn or(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut items = vec![self.and(depth)?];
        while let Some(Token {
            kind: TokenKind::Or,
            column,
        }) = self.peek()
        {
            let column = *column;
            self.pos += 1;
            self.expect_operand(column, "OR")?;
            items.push(self.and(depth)?);
        }
        Ok(collapse(items, Node::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut items = vec![self.unary(depth)?];
        loop {
            match self.peek() {
                Some(Token {
                    kind: TokenKind::And,
                    column,
                }) => {
                    let column = *column;
                    self.pos += 1;
                    self.expect_operand(column, "AND")?;
                }
                token if starts_operand(token) => {}
                _ => break,
            }
            items.push(self.unary(depth)?);
        }
        Ok(collapse(items, Node::And))
    }

    fn unary(&mut self, depth: usize) -> Result<Node, QueryError> {
        let (column, after) = match self.peek() {
            Some(Token {
                kind: TokenKind::Not,
                column,
            }) => (*column, "NOT"),
            Some(Token {
                kind: TokenKind::Minus,
                column,
            }) => (*column, "-"),
            _ => return self.primary(depth),
        };
        self.pos += 1;
        if depth + 1 > MAX_NESTING {
            return Err(QueryError::TooDeep {
                column,
                max: MAX_NESTING,
            });
        }
        self.expect_operand(column, after)?;
        let inner = self.unary(depth + 1)?;
        Ok(Node::Not {
            column,
            inner: Box::new(inner),
        })
    }

    fn primary(&mut self, depth: usize) -> Result<Node, QueryError> {
        let Some(token) = self.next() else {
            // Callers check `starts_operand` first and `parse` rejects an empty token list.
            return Err(QueryError::Empty);
        };
        let column = token.column;
        match token.kind {
            TokenKind::Atom(expr) => Ok(Node::Atom { expr, column }),
            TokenKind::LParen => {
                if depth + 1 > MAX_NESTING {
                    return Err(QueryError::TooDeep {
                        column,
                        max: MAX_NESTING,
                    });
                }
                match self.peek() {
                    None => return Err(QueryError::UnclosedParenthesis { column }),
                    Some(Token {
                        kind: TokenKind::RParen,
                        ..
                    }) => return Err(QueryError::ExpectedTerm { column, after: "(" }),
                    Some(_) => {}
                }
                let inner = self.or(depth + 1)?;
                match self.next() {
                    Some(Token {
                        kind: TokenKind::RParen,
                        ..
                    }) => Ok(inner),
                    _ => Err(QueryError::UnclosedParenthesis { column }),
                }
            }
            TokenKind::RParen => Err(QueryError::UnexpectedParenthesis { column }),
            TokenKind::And => Err(QueryError::MissingLeftOperand {
                column,
                keyword: "AND",
            }),
            TokenKind::Or => Err(QueryError::MissingLeftOperand {
                column,
                keyword: "OR",
            }),
            // `unary` handles these before calling `primary`.
            TokenKind::Not | TokenKind::Minus => Err(QueryError::ExpectedTerm {
                column,
                after: "NOT",
            }),
        }
    }
}

/// One item stays itself; several become `make(items)`.
fn collapse(mut items: Vec<Node>, make: fn(Vec<Node>) -> Node) -> Node {
    if items.len() == 1 {
        items.remove(0)
    } else {
        make(items)
    }
}

/// Where the query (or an `OR` alternative of it) has nothing positive to look for, if
/// anywhere: every way of matching must need a word, phrase, hashtag or account.
fn nothing_to_look_for(node: &Node) -> Option<usize> {
    match node {
        Node::Atom {
            expr: Expr::Lang(_),
            column,
        } => Some(*column),
        Node::Atom { .. } => None,
        Node::Not { column, inner } => match &**inner {
            // A double negation is its operand.
            Node::Not { inner, .. } => nothing_to_look_for(inner),
            _ => Some(*column),
        },
        Node::And(items) => {
            let mut first = None;
            for item in items {
                match nothing_to_look_for(item) {
                    None => return None,
                    Some(column) => {
                        first.get_or_insert(column);
                    }
                }
            }
            first
        }
        Node::Or(items) => items.iter().find_map(nothing_to_look_for),
    }
}

/// The normalised [`Expr`]: `AND`/`OR` flattened, double negations removed.
fn lower(node: Node) -> Expr {
    match node {
        Node::Atom { expr, .. } => expr,
        Node::Not { inner, .. } => match lower(*inner) {
            Expr::Not(expr) => *expr,
            expr => Expr::Not(Box::new(expr)),
        },
        Node::And(items) => flatten(items, Expr::And, |e| match e {
            Expr::And(items) => Ok(items),
            other => Err(other),
        }),
        Node::Or(items) => flatten(items, Expr::Or, |e| match e {
            Expr::Or(items) => Ok(items),
            other => Err(other),
        }),
    }
}

/// Lowers `items` and splices in children of the same kind (`split` returns them as `Ok`).
fn flatten(
    items: Vec<Node>,
    make: fn(Vec<Expr>) -> Expr,
    split: fn(Expr) -> Result<Vec<Expr>, Expr>,
) -> Expr {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match split(lower(item)) {
            Ok(children) => out.extend(children),
            Err(single) => out.push(single),
        }
    }
    if out.len() == 1 {
        out.remove(0)
    } else {
        make(out)
    }
}
