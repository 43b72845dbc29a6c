//! A Server-Sent Events parser (the WHATWG `text/event-stream` format), fed chunk by chunk.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `event:` (empty means the default type, `message`).
    pub(crate) event: String,
    /// The last `id:` seen, if any.
    pub(crate) id: Option<String>,
    /// `data:` lines joined with `\n`.
    pub(crate) data: String,
}

/// Incremental parser: bytes in, events out. Lines end with `\n`, `\r\n` or `\r`, possibly
/// split across chunks; comment lines (`: ping`) are counted and ignored.
#[derive(Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    pub(crate) comments: u64,
}

impl SseParser {
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out);
                }
                _ => self.line.push(b),
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    id: self.last_id.clone(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> (Vec<SseEvent>, u64) {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out);
        }
        (out, p.comments)
    }

    #[test]
    fn events_are_parsed_across_chunk_boundaries_and_line_endings() {
        let whole = b"event: ruleset\nid: 42\ndata: {\"version\":42}\n\n: ping\n\nevent: ruleset\r\nid: 43\r\ndata: a\r\ndata: b\r\n\r\n";
        for split in 0..whole.len() {
            let (events, comments) = parse(&[&whole[..split], &whole[split..]]);
            assert_eq!(comments, 1, "split at {split}");
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        event: "ruleset".into(),
                        id: Some("42".into()),
                        data: "{\"version\":42}".into()
                    },
                    SseEvent {
                        event: "ruleset".into(),
                        id: Some("43".into()),
                        data: "a\nb".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line_and_blocks_without_data_are_not_dispatched() {
        let (events, _) = parse(&[b"id: 7\r\r", b"data:x\r\r"]);
        assert_eq!(
            events,
            vec![SseEvent {
                event: String::new(),
                id: Some("7".into()),
                data: "x".into()
            }]
        );
    }
}
