//! A streaming reader for CloudTrail files: cuts each element of the top-level `"Records"`
//! array out of `{"Records": [ ... ]}` and hands it out as the bytes CloudTrail wrote, one at a
//! time, with memory bounded whatever the file's size.
//!
//! The scanner follows strings, escapes and nesting depth only; it never builds a document. It
//! checks the file's outer shape (an object with a `Records` array); the JSON inside each event
//! is checked later, when the event is parsed for its fields. Other top-level keys are skipped
//! without being stored. Memory is one input chunk plus one event of at most `max_event` bytes.

use std::io::{self, Read};

/// Events longer than this are not kept: CloudTrail caps an event at 256 KB, so four times that
/// only catches a file that is not what it claims. Such an event becomes a [`TrailItem::Bad`]
/// naming the file and the event's position; the events after it are read as usual.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Bytes read from the (decompressed) input at a time.
const CHUNK: usize = 64 * 1024;

/// Top-level keys are compared with `Records`; longer keys are skipped without being stored.
const MAX_KEY_BYTES: usize = 64;

/// The one top-level key whose array holds the events.
const RECORDS: &[u8] = b"Records";

/// One element of the `Records` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailItem<'a> {
    /// An event object, exactly as written (from its `{` to its `}`).
    Event { ordinal: u64, bytes: &'a [u8] },
    /// An element that cannot be forwarded as an event: over the size limit, or not an
    /// object. `head` is what was kept of it (at most the limit); `reason` names the file and
    /// the element's position; `whole` is set when `head` is only the start of the element.
    Bad {
        ordinal: u64,
        reason: String,
        head: &'a [u8],
        whole: Option<WholeElement>,
    },
}

/// The length and XXH3-128 hash of an element over the event limit, of which only the start
/// was kept: the `raw_bytes` and `raw_xxh3` of its `parse_error` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeElement {
    pub bytes: u64,
    pub xxh3: u128,
}

impl TrailItem<'_> {
    /// 0-based position of the element in the `Records` array.
    pub fn ordinal(&self) -> u64 {
        match self {
            TrailItem::Event { ordinal, .. } | TrailItem::Bad { ordinal, .. } => *ordinal,
        }
    }
}

/// Where the scanner is in the file's outer structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `{`.
    Start,
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` between members: a key.
    Key,
    /// Inside a top-level key's string.
    InKey { escape: bool },
    /// After a key: `:`.
    Colon,
    /// After `:`: the member's value.
    MemberValue,
    /// Skipping a member value that is not the `Records` array.
    SkipMember,
    /// After a member: `,` or `}`.
    AfterMember,
    /// After `[` of `Records`: an element or `]`.
    ElementOrEnd,
    /// After `,` between elements: an element.
    Element,
    /// Inside an element.
    InElement,
    /// After an element: `,` or `]`.
    AfterElement,
    /// After the closing `}`: only whitespace may follow.
    Done,
    /// An error was returned; nothing more is read.
    Failed,
}

/// Progress through one JSON value (a skipped member or an element).
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    depth: u64,
    in_string: bool,
    escape: bool,
    /// A number, `true`, `false` or `null`: ends before the next delimiter.
    scalar: bool,
}

impl Scan {
    fn begin(first: u8) -> Scan {
        match first {
            b'"' => Scan {
                in_string: true,
                ..Scan::default()
            },
            b'{' | b'[' => Scan {
                depth: 1,
                ..Scan::default()
            },
            _ => Scan {
                scalar: true,
                ..Scan::default()
            },
        }
    }

    /// Consumes bytes of the value from `data` (whose first byte is not its first byte);
    /// returns how many, and whether the value ended there.
    fn advance(&mut self, data: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < data.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                let Some(k) = memchr::memchr2(b'"', b'\\', &data[i..]) else {
                    return (data.len(), false);
                };
                i += k;
                if data[i] == b'\\' {
                    self.escape = true;
                } else {
                    self.in_string = false;
                    if self.depth == 0 {
                        return (i + 1, true);
                    }
                }
                i += 1;
                continue;
            }
            let b = data[i];
            if self.scalar {
                if matches!(b, b',' | b'}' | b']') || is_ws(b) {
                    return (i, true);
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return (i + 1, true);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        (i, false)
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Streams the events of one CloudTrail file.
pub struct TrailReader<R> {
    input: R,
    /// Names the file in every error (the object key, or a path).
    name: String,
    chunk: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Bytes of input before `chunk[0]`.
    offset: u64,
    state: State,
    scan: Scan,
    key: Vec<u8>,
    key_too_long: bool,
    /// The element being cut (at most `limit` bytes of it).
    event: Vec<u8>,
    /// Its whole size so far, kept or not.
    event_size: u64,
    /// Hashes the element once it is over the limit (from its first byte), so its record can
    /// name what was not kept; `None` for the elements under the limit (nearly all).
    hasher: Option<Box<xxhash_rust::xxh3::Xxh3Default>>,
    /// 0-based ordinal of the next element.
    ordinal: u64,
    limit: usize,
    seen_records: bool,
    /// Largest size the event buffer ever reached.
    high_water: usize,
    /// Any non-whitespace byte seen (an empty or blank input holds no events).
    seen_any: bool,
    /// The event buffer holds the item `next_item` returned last.
    has_item: bool,
}

impl<R: Read> TrailReader<R> {
    /// `name` is how errors refer to the file (its key, or a path).
    pub fn new(input: R, name: impl Into<String>) -> Self {
        Self::with_limit(input, name, MAX_EVENT_BYTES)
    }

    /// A reader that refuses events over `max_event` bytes (tests use small limits).
    pub fn with_limit(input: R, name: impl Into<String>, max_event: usize) -> Self {
        TrailReader {
            input,
            name: name.into(),
            chunk: vec![0; CHUNK].into_boxed_slice(),
            pos: 0,
            end: 0,
            offset: 0,
            state: State::Start,
            scan: Scan::default(),
            key: Vec::with_capacity(MAX_KEY_BYTES),
            key_too_long: false,
            event: Vec::new(),
            event_size: 0,
            hasher: None,
            ordinal: 0,
            limit: max_event,
            seen_records: false,
            high_water: 0,
            seen_any: false,
            has_item: false,
        }
    }

    /// The file's name as errors give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Elements of `Records` met so far (events and bad elements).
    pub fn elements_read(&self) -> u64 {
        self.ordinal
    }

    /// Whether the input, read to its end, held nothing but whitespace: an empty file or an
    /// empty gzip. No trail file CloudTrail writes is empty, so callers warn.
    pub fn held_nothing(&self) -> bool {
        !self.seen_any
    }

    /// Bytes of (decompressed) input consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.offset + self.pos as u64
    }

    /// The largest capacity the event buffer ever had: never more than the event limit.
    pub fn buffer_high_water(&self) -> usize {
        self.high_water
    }

    /// The next element, or `None` at the end of the file. Only a read error, a cut-off file
    /// or a file that is not `{"Records": [...]}` is an `Err`; it names the file, the byte
    /// offset and how many events came before. After an `Err` the reader yields `None`.
    pub fn next_item(&mut self) -> io::Result<Option<TrailItem<'_>>> {
        self.has_item = false;
        match self.scan_to_next() {
            Ok(true) => {
                self.has_item = true;
                Ok(Some(self.item()))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// The item the last `next_item` handed out, again (`None` if it returned none).
    pub fn current(&self) -> Option<TrailItem<'_>> {
        self.has_item.then(|| self.item())
    }

    fn item(&self) -> TrailItem<'_> {
        let ordinal = self.ordinal - 1;
        let head = &self.event[..];
        if self.event_size > self.limit as u64 {
            TrailItem::Bad {
                ordinal,
                reason: format!(
                    "{}: event {} is {} bytes or more, over the {}-byte event limit",
                    self.name,
                    ordinal + 1,
                    self.event_size,
                    self.limit
                ),
                head,
                whole: Some(WholeElement {
                    bytes: self.event_size,
                    xxh3: self.hasher.as_ref().map_or(0, |h| h.digest128()),
                }),
            }
        } else if head.first() != Some(&b'{') {
            TrailItem::Bad {
                ordinal,
                reason: format!("{}: event {} is not a JSON object", self.name, ordinal + 1),
                head,
                whole: None,
            }
        } else {
            TrailItem::Event {
                ordinal,
                bytes: head,
            }
        }
    }

    fn malformed(&self, at: usize, what: &str) -> io::Error {
        let found = match self.chunk.get(at) {
            Some(b) if b.is_ascii_graphic() => format!("{:?}", char::from(*b)),
            Some(b) => format!("byte 0x{b:02x}"),
            None => "the end".to_string(),
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: not a CloudTrail file ({{\"Records\": [...]}}): expected {what} at byte {}, found {found}",
                self.name,
                self.offset + at as u64
            ),
        )
    }

    /// Reads more input; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        self.offset += self.end as u64;
        self.pos = 0;
        self.end = 0;
        loop {
            match self.input.read(&mut self.chunk) {
                Ok(n) => {
                    self.end = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "{}: read failed at byte {} after {} events: {e}",
                            self.name, self.offset, self.ordinal
                        ),
                    ))
                }
            }
        }
    }

    fn at_end(&self) -> io::Result<bool> {
        let cut = |inside: String| {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: file ends at byte {} {inside}: it was cut short ({} events before the cut)",
                    self.name, self.offset, self.ordinal.saturating_sub(u64::from(self.state == State::InElement))
                ),
            ))
        };
        match self.state {
            State::Done | State::Failed => Ok(false),
            State::Start if !self.seen_any => Ok(false),
            State::InElement => cut(format!("inside event {}", self.ordinal)),
            State::ElementOrEnd | State::Element | State::AfterElement => {
                cut("inside the Records array".to_string())
            }
            _ => cut("before the closing '}'".to_string()),
        }
    }

    /// Advances to the end of the next element (true) or of the file (false).
    fn scan_to_next(&mut self) -> io::Result<bool> {
        if self.state == State::Failed {
            return Ok(false);
        }
        loop {
            if self.pos == self.end && !self.refill()? {
                if self.state == State::Done && !self.seen_records && self.seen_any {
                    self.state = State::Failed;
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: not a CloudTrail event file: the object has no \"Records\" array",
                            self.name
                        ),
                    ));
                }
                return self.at_end();
            }
            let at = self.pos;
            let b = self.chunk[at];
            match self.state {
                State::Failed => return Ok(false),
                State::InKey { escape } => {
                    self.pos += 1;
                    if escape {
                        self.state = State::InKey { escape: false };
                        self.push_key(b);
                    } else if b == b'\\' {
                        self.state = State::InKey { escape: true };
                        self.push_key(b);
                    } else if b == b'"' {
                        self.state = State::Colon;
                    } else {
                        self.push_key(b);
                    }
                }
                State::SkipMember => {
                    let (n, done) = self.scan.advance(&self.chunk[at..self.end]);
                    self.pos += n;
                    if done {
                        self.state = State::AfterMember;
                    }
                }
                State::InElement => {
                    let (n, done) = self.scan.advance(&self.chunk[at..self.end]);
                    self.keep(at, at + n);
                    self.pos += n;
                    if done {
                        self.state = State::AfterElement;
                        return Ok(true);
                    }
                }
                _ if is_ws(b) => self.pos += 1,
                State::Start => {
                    self.seen_any = true;
                    if b != b'{' {
                        return Err(self.malformed(at, "'{'"));
                    }
                    self.pos += 1;
                    self.state = State::KeyOrEnd;
                }
                State::KeyOrEnd | State::Key => {
                    self.pos += 1;
                    if b == b'"' {
                        self.key.clear();
                        self.key_too_long = false;
                        self.state = State::InKey { escape: false };
                    } else if b == b'}' && self.state == State::KeyOrEnd {
                        self.state = State::Done;
                    } else {
                        return Err(self.malformed(at, "a key"));
                    }
                }
                State::Colon => {
                    if b != b':' {
                        return Err(self.malformed(at, "':'"));
                    }
                    self.pos += 1;
                    self.state = State::MemberValue;
                }
                State::MemberValue => {
                    if matches!(b, b',' | b'}' | b']' | b':') {
                        return Err(self.malformed(at, "a value"));
                    }
                    let is_records = !self.key_too_long && self.key == RECORDS;
                    self.pos += 1;
                    if is_records {
                        if b != b'[' {
                            return Err(self.malformed(at, "'[' (Records is an array)"));
                        }
                        self.seen_records = true;
                        self.state = State::ElementOrEnd;
                    } else {
                        self.scan = Scan::begin(b);
                        // A one-byte scalar or a string/container continues in `SkipMember`.
                        self.state = State::SkipMember;
                        if self.scan.scalar {
                            self.pos -= 1;
                            let (n, done) = self.scan.advance(&self.chunk[at..self.end]);
                            self.pos += n;
                            if done {
                                self.state = State::AfterMember;
                            }
                        }
                    }
                }
                State::AfterMember => {
                    self.pos += 1;
                    match b {
                        b',' => self.state = State::Key,
                        b'}' => self.state = State::Done,
                        _ => return Err(self.malformed(at, "',' or '}' after a member")),
                    }
                }
                State::ElementOrEnd | State::Element => {
                    if b == b']' && self.state == State::ElementOrEnd {
                        self.pos += 1;
                        self.state = State::AfterMember;
                        continue;
                    }
                    if matches!(b, b']' | b',' | b'}' | b':') {
                        return Err(self.malformed(at, "an event"));
                    }
                    self.event.clear();
                    self.event_size = 0;
                    self.hasher = None;
                    self.ordinal += 1;
                    self.scan = Scan::begin(b);
                    self.state = State::InElement;
                    if !self.scan.scalar {
                        self.keep(at, at + 1);
                        self.pos += 1;
                    }
                }
                State::AfterElement => {
                    self.pos += 1;
                    match b {
                        b',' => self.state = State::Element,
                        b']' => self.state = State::AfterMember,
                        _ => return Err(self.malformed(at, "',' or ']' after an event")),
                    }
                }
                State::Done => return Err(self.malformed(at, "nothing after the closing '}'")),
            }
        }
    }

    fn push_key(&mut self, b: u8) {
        if self.key.len() < MAX_KEY_BYTES {
            self.key.push(b);
        } else {
            self.key_too_long = true;
        }
    }

    /// Keeps `chunk[from..to]` of the element, up to the limit; counts all of it.
    fn keep(&mut self, from: usize, to: usize) {
        let n = to - from;
        if self.hasher.is_none() && self.event_size + n as u64 > self.limit as u64 {
            // Over the limit from here on: hash what was kept, then every byte that follows.
            let mut hasher = Box::new(xxhash_rust::xxh3::Xxh3Default::new());
            hasher.update(&self.event);
            self.hasher = Some(hasher);
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&self.chunk[from..to]);
        }
        self.event_size += n as u64;
        let len = self.event.len();
        let take = n.min(self.limit.saturating_sub(len));
        if len + take > self.event.capacity() {
            // Grow by doubling, but never past the limit: capacity is the bound, not length.
            let want = (self.event.capacity() * 2).clamp(len + take, self.limit.max(len + take));
            self.event.reserve_exact(want - len);
        }
        self.event.extend_from_slice(&self.chunk[from..from + take]);
        self.high_water = self.high_water.max(self.event.capacity());
    }
}
