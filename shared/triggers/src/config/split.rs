//! Splitting a YAML stream into its documents before parsing, so that a syntax error in one
//! document cannot hide the documents after it (libyaml stops at the first error).
//!
//! A document starts at a `---` line and ends at the next `---` or a `...` line; these
//! markers only count at the start of a line, where YAML also forbids them inside content.
//! Documents are numbered as a YAML parser numbers them: comments and directives before the
//! first `---` belong to the first document, and text after a `...` is a document only if it
//! has content.

/// One document's text, with where it starts in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawDocument<'a> {
    /// Zero-based index of the document in its file.
    pub index: usize,
    /// Zero-based line of the file on which `text` starts.
    pub first_line: usize,
    pub text: &'a str,
}

impl RawDocument<'_> {
    /// The text padded with blank lines so that parser errors give the file's line numbers.
    pub(super) fn text_at_file_lines(&self) -> String {
        let mut padded = String::with_capacity(self.first_line + self.text.len());
        padded.extend(std::iter::repeat_n('\n', self.first_line));
        padded.push_str(self.text);
        padded
    }
}

pub(super) fn split_documents(text: &str) -> Vec<RawDocument<'_>> {
    let mut splitter = Splitter {
        text,
        documents: Vec::new(),
        start: 0,
        start_line: 0,
        explicit: false,
        content: false,
    };
    let mut offset = 0;
    for (line_number, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = marker(bare, "---") {
            // A document so far without content (comments, directives) is the start of
            // this one, not a document of its own.
            if splitter.explicit || splitter.content {
                splitter.close(offset);
                splitter.start = offset;
                splitter.start_line = line_number;
            }
            splitter.explicit = true;
            // `--- |`, `--- {a: 1}`: the marker line itself may carry content.
            splitter.content = has_content(rest);
        } else if marker(bare, "...").is_some() {
            let end = offset + line.len();
            splitter.close(end);
            splitter.start = end;
            splitter.start_line = line_number + 1;
            splitter.explicit = false;
            splitter.content = false;
        } else if !bare.starts_with('%') && has_content(bare) {
            splitter.content = true;
        }
        offset += line.len();
    }
    splitter.close(text.len());
    splitter.documents
}

struct Splitter<'a> {
    text: &'a str,
    documents: Vec<RawDocument<'a>>,
    start: usize,
    start_line: usize,
    /// The current document was opened by `---` (so it exists even when empty).
    explicit: bool,
    content: bool,
}

impl Splitter<'_> {
    fn close(&mut self, end: usize) {
        if self.explicit || self.content {
            self.documents.push(RawDocument {
                index: self.documents.len(),
                first_line: self.start_line,
                text: &self.text[self.start..end],
            });
        }
    }
}

/// The rest of the line when it starts with the document marker `marker`.
fn marker<'l>(line: &'l str, marker: &str) -> Option<&'l str> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

fn has_content(line: &str) -> bool {
    let line = line.trim_start();
    !line.is_empty() && !line.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(usize, usize, &str)> {
        split_documents(text)
            .into_iter()
            .map(|d| (d.index, d.first_line, d.text))
            .collect()
    }

    #[test]
    fn one_document_without_markers() {
        assert_eq!(texts("a: 1\nb: 2\n"), vec![(0, 0, "a: 1\nb: 2\n")]);
    }

    #[test]
    fn leading_comments_and_marker_make_one_document() {
        assert_eq!(
            texts("# header\n---\na: 1\n---\nb: 2"),
            vec![(0, 0, "# header\n---\na: 1\n"), (1, 3, "---\nb: 2")]
        );
    }

    #[test]
    fn empty_documents_between_markers_are_counted() {
        let docs = texts("---\n---\n# only a comment\n---\na: 1\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[2], (2, 3, "---\na: 1\n"));
    }

    #[test]
    fn blank_or_comment_only_text_has_no_documents() {
        assert!(texts("").is_empty());
        assert!(texts("\n  \n# nothing\n").is_empty());
    }

    #[test]
    fn end_marker_ends_a_document() {
        assert_eq!(
            texts("a: 1\n...\n# trailing\n"),
            vec![(0, 0, "a: 1\n...\n")]
        );
        assert_eq!(
            texts("a: 1\n...\nb: 2\n"),
            vec![(0, 0, "a: 1\n...\n"), (1, 2, "b: 2\n")]
        );
    }

    #[test]
    fn markers_need_a_line_start_and_a_separator() {
        assert_eq!(texts("a: ---\n----\n  ---\n").len(), 1);
    }

    #[test]
    fn marker_line_may_carry_content_and_crlf() {
        assert_eq!(
            texts("--- |\r\n  text\r\n---\r\n"),
            vec![(0, 0, "--- |\r\n  text\r\n"), (1, 2, "---\r\n")]
        );
    }

    #[test]
    fn directives_belong_to_the_next_document() {
        assert_eq!(
            texts("%YAML 1.2\n---\na: 1\n"),
            vec![(0, 0, "%YAML 1.2\n---\na: 1\n")]
        );
    }

    #[test]
    fn padding_keeps_file_line_numbers() {
        let docs = split_documents("a: 1\n---\nb: [\n");
        let padded = docs[1].text_at_file_lines();
        assert_eq!(padded, "\n---\nb: [\n");
    }
}
