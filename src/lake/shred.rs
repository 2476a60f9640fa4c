//! One `ocsf` line shredded into its class's column buffers in one pass: every member the
//! schema has, of the type it has, goes straight into its leaf column with the definition (and,
//! for the list and the map, repetition) levels Parquet needs; anything else (a member the
//! schema does not know, a value of another type, a repeated member, at any depth) goes under
//! `unmapped` with its dotted path as key and its JSON text as value, and every value already
//! under `unmapped` that is not a string keeps its JSON text there. Nothing is decoded into
//! an intermediate form and nothing is allocated per row: strings are unescaped into one byte
//! buffer per column. The schema never changes with the records and nothing of a record is
//! dropped.

use super::scan::{
    bad, copy_string, integer, skip_ws, string_end, token_end, unescape, value_end, walk_members,
    Scan,
};
use super::schema::{ClassSchema, Kind, Leaf, Node};

/// One leaf column of the rows buffered: a definition level per entry (a value only where it
/// is the column's highest), a repetition level per entry where the column repeats, and the
/// values in the vector of the column's type (the others stay empty). Strings are end to end in
/// `data`, each ending at its `ends` entry.
#[derive(Debug)]
pub struct Buffer {
    pub leaf: Leaf,
    pub repeated: bool,
    pub def: Vec<i16>,
    pub rep: Vec<i16>,
    pub data: Vec<u8>,
    pub ends: Vec<usize>,
    pub ints: Vec<i32>,
    pub longs: Vec<i64>,
    pub bools: Vec<bool>,
}

impl Buffer {
    fn new(leaf: Leaf, repeated: bool) -> Buffer {
        Buffer {
            leaf,
            repeated,
            def: Vec::new(),
            rep: Vec::new(),
            data: Vec::new(),
            ends: Vec::new(),
            ints: Vec::new(),
            longs: Vec::new(),
            bools: Vec::new(),
        }
    }

    fn end_text(&mut self) {
        self.ends.push(self.data.len());
    }

    fn clear(&mut self) {
        self.def.clear();
        self.rep.clear();
        self.data.clear();
        self.ends.clear();
        self.ints.clear();
        self.longs.clear();
        self.bools.clear();
    }
}

/// Rows of one class, column by column, until they are encoded as a row group.
#[derive(Debug)]
pub struct Rows {
    /// The class whose schema the buffers follow.
    pub class: super::Class,
    pub columns: Vec<Buffer>,
    pub rows: usize,
    /// Bytes of the lines shredded into these rows: what bounds a row group.
    pub bytes: usize,
    /// The dotted path of the object being walked, for the keys of `unmapped`.
    path: Vec<u8>,
}

impl Rows {
    pub fn new(schema: &ClassSchema) -> Rows {
        let columns = schema
            .columns
            .iter()
            .map(|c| Buffer::new(c.leaf, c.repeated))
            .collect();
        Rows {
            class: schema.class,
            columns,
            rows: 0,
            bytes: 0,
            path: Vec::new(),
        }
    }

    /// Empties the buffers, keeping their memory for the next rows.
    pub fn clear(&mut self) {
        for c in &mut self.columns {
            c.clear();
        }
        self.rows = 0;
        self.bytes = 0;
    }

    /// Appends `line` (one JSON object, valid UTF-8) as one row. On an error the buffers hold
    /// part of the row: the caller drops them (the object fails).
    pub fn push(&mut self, schema: &ClassSchema, line: &[u8]) -> Scan<()> {
        self.path.clear();
        let mut s = Shredder {
            cols: &mut self.columns,
            path: &mut self.path,
            unmapped: schema.unmapped,
            entries: 0,
        };
        let start = skip_ws(line, 0);
        let end = s.object(line, start, &schema.fields, 0)?;
        if skip_ws(line, end) != line.len() {
            return bad(end, "bytes after the object");
        }
        if s.entries == 0 {
            for c in [s.unmapped, s.unmapped + 1] {
                s.cols[c].def.push(0);
                s.cols[c].rep.push(0);
            }
        }
        self.rows += 1;
        self.bytes += line.len();
        Ok(())
    }
}

struct Shredder<'a> {
    cols: &'a mut [Buffer],
    path: &'a mut Vec<u8>,
    /// The key column of `unmapped`; the value column follows.
    unmapped: usize,
    /// Entries of `unmapped` in this row so far.
    entries: usize,
}

/// The index of the field named `key`, looked for from `hint` on (members mostly come in the
/// schema's order).
fn find(fields: &[Node], key: &[u8], hint: usize) -> Option<usize> {
    let (after, before) = fields.split_at(hint.min(fields.len()));
    before
        .iter()
        .position(|f| f.name.as_bytes() == key)
        .map(|k| k + hint)
        .or_else(|| after.iter().position(|f| f.name.as_bytes() == key))
}

/// The end of the array of strings starting at `i`, or `None` if it holds anything else.
fn strings_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = skip_ws(b, i + 1);
    if b.get(j) == Some(&b']') {
        return Some(j + 1);
    }
    loop {
        if b.get(j) != Some(&b'"') {
            return None;
        }
        j = skip_ws(b, string_end(b, j).ok()?);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b']') => return Some(j + 1),
            _ => return None,
        }
    }
}

impl Shredder<'_> {
    /// Walks the object at `b[i..]` whose fields are `fields` and whose own definition level is
    /// `def`; returns its end. Fields it lacks get nulls.
    fn object(&mut self, b: &[u8], i: usize, fields: &[Node], def: i16) -> Scan<usize> {
        let mut seen = 0u64;
        let mut hint = 0;
        let end = walk_members(b, i, |key, key_at, at| {
            let placed = match find(fields, key, hint) {
                Some(k) if seen & (1 << k) == 0 => {
                    hint = k + 1;
                    let end = self.member(b, at, &fields[k], def)?;
                    if end.is_some() {
                        seen |= 1 << k;
                    }
                    end
                }
                _ => None,
            };
            match placed {
                Some(end) => Ok(end),
                None => self.aside(b, key, key_at, at),
            }
        })?;
        for (k, field) in fields.iter().enumerate() {
            if seen & (1 << k) == 0 && !matches!(field.kind, Kind::Map) {
                self.nulls(field, def);
            }
        }
        Ok(end)
    }

    /// Every leaf of `n` null, its parent defined at `def`.
    fn nulls(&mut self, n: &Node, def: i16) {
        for c in &mut self.cols[n.first..n.first + n.leaves] {
            c.def.push(def);
            if c.repeated {
                c.rep.push(0);
            }
        }
    }

    /// Writes the value at `b[at..]` of the member `n` (of an object defined at `def`) if it
    /// fits; returns its end, or `None` (nothing written) if it does not fit.
    fn member(&mut self, b: &[u8], at: usize, n: &Node, def: i16) -> Scan<Option<usize>> {
        let first = b.get(at).copied();
        if first == Some(b'n') {
            let end = token_end(b, at)?;
            if &b[at..end] == b"null" {
                self.nulls(n, def);
                return Ok(Some(end));
            }
        }
        let scalar = !matches!(first, Some(b'"' | b'{' | b'[') | None);
        let col = n.first;
        match &n.kind {
            Kind::Object(children) => {
                if first != Some(b'{') {
                    return Ok(None);
                }
                let len = self.path.len();
                if len > 0 {
                    self.path.push(b'.');
                }
                self.path.extend_from_slice(n.name.as_bytes());
                let end = self.object(b, at, children, n.level);
                self.path.truncate(len);
                end.map(Some)
            }
            Kind::Str => {
                let end = match first {
                    Some(b'"') => copy_string(b, at, &mut self.cols[col].data)?,
                    _ if scalar => {
                        // A number or a flag where text is expected: its JSON text.
                        let end = token_end(b, at)?;
                        self.cols[col].data.extend_from_slice(&b[at..end]);
                        end
                    }
                    _ => return Ok(None),
                };
                let c = &mut self.cols[col];
                c.end_text();
                c.def.push(n.level);
                Ok(Some(end))
            }
            Kind::Int | Kind::Long | Kind::Bool if !scalar => Ok(None),
            Kind::Int | Kind::Long | Kind::Bool => {
                let end = token_end(b, at)?;
                let token = &b[at..end];
                let c = &mut self.cols[col];
                match &n.kind {
                    Kind::Int => match integer(token).and_then(|x| i32::try_from(x).ok()) {
                        Some(x) => c.ints.push(x),
                        None => return Ok(None),
                    },
                    Kind::Long => match integer(token) {
                        Some(x) => c.longs.push(x),
                        None => return Ok(None),
                    },
                    _ => match token {
                        b"true" => c.bools.push(true),
                        b"false" => c.bools.push(false),
                        _ => return Ok(None),
                    },
                }
                c.def.push(n.level);
                Ok(Some(end))
            }
            Kind::Strings => {
                if first != Some(b'[') {
                    return Ok(None);
                }
                let Some(end) = strings_end(b, at) else {
                    return Ok(None);
                };
                let c = &mut self.cols[col];
                let mut j = skip_ws(b, at + 1);
                let mut rep = 0;
                while b.get(j) == Some(&b'"') {
                    let e = copy_string(b, j, &mut c.data)?;
                    c.end_text();
                    c.def.push(n.level + 2);
                    c.rep.push(rep);
                    rep = 1;
                    j = skip_ws(b, e);
                    j = skip_ws(b, j + usize::from(b.get(j) == Some(&b',')));
                }
                if rep == 0 {
                    // An empty list.
                    c.def.push(n.level);
                    c.rep.push(0);
                }
                Ok(Some(end))
            }
            Kind::Map => {
                if first != Some(b'{') {
                    return Ok(None);
                }
                self.map(b, at).map(Some)
            }
        }
    }

    /// Starts an entry of `unmapped`: its levels. The key and the value follow as text.
    fn entry(&mut self) {
        let rep = i16::from(self.entries > 0);
        self.entries += 1;
        let (k, v) = (self.unmapped, self.unmapped + 1);
        self.cols[k].def.push(2);
        self.cols[k].rep.push(rep);
        self.cols[v].def.push(3);
        self.cols[v].rep.push(rep);
    }

    /// The members of the line's own `unmapped`: strings as they are, other values as their
    /// JSON text.
    fn map(&mut self, b: &[u8], i: usize) -> Scan<usize> {
        let (k, v) = (self.unmapped, self.unmapped + 1);
        walk_members(b, i, |key, key_at, at| {
            self.entry();
            unescape(key, key_at, &mut self.cols[k].data)?;
            self.cols[k].end_text();
            let end = if b.get(at) == Some(&b'"') {
                copy_string(b, at, &mut self.cols[v].data)?
            } else {
                let end = value_end(b, at)?;
                self.cols[v].data.extend_from_slice(&b[at..end]);
                end
            };
            self.cols[v].end_text();
            Ok(end)
        })
    }

    /// A member that does not fit: under `unmapped` by its dotted path, its JSON text as value.
    fn aside(&mut self, b: &[u8], key: &[u8], key_at: usize, at: usize) -> Scan<usize> {
        let end = value_end(b, at)?;
        self.entry();
        let (k, v) = (self.unmapped, self.unmapped + 1);
        let name = &mut self.cols[k].data;
        name.extend_from_slice(self.path);
        if !self.path.is_empty() {
            name.push(b'.');
        }
        unescape(key, key_at, name)?;
        self.cols[k].end_text();
        self.cols[v].data.extend_from_slice(&b[at..end]);
        self.cols[v].end_text();
        Ok(end)
    }
}

#[cfg(test)]
mod tests;
