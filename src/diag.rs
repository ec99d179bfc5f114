//! A problem in one of the user's files and where it is: what an input error carries, so
//! every reporter (console, JSON, JUnit, GitHub) gets the position as data, never by reading
//! it back out of a message.

use std::fmt;

/// One problem at one place. The position is data: reporters print it their own way (the
/// console as `file:line:col:`, GitHub as `file=…,line=…,col=…`, JSON as fields).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostic {
    /// The file as the user would name it: relative to the project, or as given on the
    /// command line. `None`: the problem is not in one file (a flag, the machine).
    pub file: Option<String>,
    /// 1-based; `None` when the problem is the whole file.
    pub line: Option<usize>,
    /// 1-based, in characters; `None` when only the line is known.
    pub column: Option<usize>,
    /// A lowercase fragment that reads after "failed to" or stands alone.
    pub message: String,
    /// Further lines: what else is involved, what to do.
    pub notes: Vec<String>,
    /// The source text the position points into, for reporters that can draw it.
    pub snippet: Option<Snippet>,
}

/// The text of the file a diagnostic points into, and the span it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub source: String,
    /// Byte offset of the span in `source`.
    pub offset: usize,
    /// Byte length of the span (at least one character, unless `source` is empty).
    pub len: usize,
}

impl Diagnostic {
    /// A problem with no position (a flag, a project-wide rule).
    pub fn message(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            ..Diagnostic::default()
        }
    }

    /// A problem in `file` as a whole.
    pub fn in_file(file: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: Some(file.into()),
            ..Diagnostic::message(message)
        }
    }

    /// A problem at `line` (and `column`, when known) of `file`.
    pub fn at(
        file: impl Into<String>,
        line: usize,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            line: Some(line),
            column,
            ..Diagnostic::in_file(file, message)
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Keeps `source` (the file's text) to draw the position in; the span is the word that
    /// starts at the position (one character at least).
    pub fn with_source(mut self, source: &str) -> Diagnostic {
        let Some(line) = self.line else {
            return self;
        };
        let start: usize = source
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        let text = source[start.min(source.len())..]
            .split('\n')
            .next()
            .unwrap_or_default();
        let skip = self.column.unwrap_or(1).saturating_sub(1);
        let at = text.char_indices().nth(skip).map_or(text.len(), |(i, _)| i);
        let word = text[at..]
            .find(|c: char| c.is_whitespace() || c == ':' || c == ',')
            .unwrap_or(text.len() - at);
        let len = if word > 0 {
            word
        } else {
            text[at..].chars().next().map_or(0, char::len_utf8)
        };
        self.snippet = Some(Snippet {
            source: source.to_owned(),
            offset: start + at,
            len,
        });
        self
    }

    /// `file:line:col`, `file:line` or `file`: the position as the console writes it.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            _ => file.to_owned(),
        })
    }

    /// The first line as the console prints it: the position, then the message.
    pub fn headline(&self) -> String {
        match self.location() {
            // A message that is about the whole file names it itself (`read x.sql: …`).
            Some(location) if self.line.is_some() => format!("{location}: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

impl Snippet {
    /// The line the span starts on, numbered, with the span underlined: what a reporter
    /// without box art (the job summary) shows.
    pub fn plain(&self) -> String {
        let offset = self.offset.min(self.source.len());
        let start = self.source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.source[offset..]
            .find('\n')
            .map_or(self.source.len(), |i| offset + i);
        let number = self.source[..start].matches('\n').count() + 1;
        let gutter = number.to_string().len();
        let text = &self.source[start..end];
        let before = self.source[start..offset].chars().count();
        let under = self.source[offset..(offset + self.len).min(end)]
            .chars()
            .count()
            .max(1);
        format!(
            "{number} │ {text}\n{} │ {}{}",
            " ".repeat(gutter),
            " ".repeat(before),
            "^".repeat(under)
        )
    }
}

impl fmt::Display for Diagnostic {
    /// The headline and the notes, one a line: the diagnostic as plain text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        for note in &self.notes {
            write!(f, "\n{note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Diagnostic;

    #[test]
    fn the_headline_puts_the_position_first() {
        let d = Diagnostic::at("db-ci.yaml", 3, Some(5), "unknown field `x`");
        assert_eq!(d.headline(), "db-ci.yaml:3:5: unknown field `x`");
        assert_eq!(
            Diagnostic::at("a.sql", 2, None, "m").headline(),
            "a.sql:2: m"
        );
        assert_eq!(
            Diagnostic::in_file("a.sql", "read a.sql: gone").headline(),
            "read a.sql: gone"
        );
        assert_eq!(Diagnostic::message("m").with_note("n").to_string(), "m\nn");
    }

    #[test]
    fn a_snippet_underlines_the_word_at_the_position() {
        let d = Diagnostic::at("t.yaml", 2, Some(3), "unknown field `selct`")
            .with_source("a: 1\n  selct: {}\nb: 2\n");
        let snippet = d.snippet.unwrap();
        assert_eq!(&snippet.source[snippet.offset..][..snippet.len], "selct");
        assert_eq!(snippet.plain(), "2 │   selct: {}\n  │   ^^^^^");
        // Past the end of the text: an empty span at the end, no panic.
        let d = Diagnostic::at("t.yaml", 9, Some(40), "m").with_source("a\n");
        assert_eq!(d.snippet.unwrap().len, 0);
    }
}
