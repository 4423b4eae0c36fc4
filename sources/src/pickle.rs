//! A reader for pickles of plain data: strings, numbers, booleans, `None`, lists, tuples,
//! dicts and sets, in every protocol's binary opcodes. It exists for LiveCodeBench's private
//! tests, which ship as pickles: Python's `pickle.loads` runs whatever callable a pickle names
//! (`GLOBAL` then `REDUCE` is `os.system(...)`), so a public dataset file could run code on the
//! machine importing it. This reader has no opcode that reaches a callable or a class; a pickle
//! that uses one is refused with the opcode and its byte offset.
//!
//! Objects live in an arena and containers hold indices, as in Python, so a list memoised while
//! empty and filled afterwards (what `pickle.dumps` writes for every list) reads back full.

use serde_json::{Map, Number, Value};

/// Why a pickle was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("pickle byte {offset}: {message}")]
pub struct PickleError {
    /// Offset of the opcode at fault.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Lists, tuples and sets: all become JSON arrays.
    Seq(Vec<usize>),
    Dict(Vec<(usize, usize)>),
}

#[derive(Clone, Copy, Debug)]
enum Item {
    Mark,
    Node(usize),
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    nodes: Vec<Node>,
    stack: Vec<Item>,
    memo: std::collections::HashMap<u64, usize>,
}

/// Deepest nesting converted: deeper (or self-referencing) structures are refused.
const MAX_DEPTH: usize = 512;

impl<'a> Reader<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.op_at,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        match self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
        {
            Some(end) => {
                let out = &self.data[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => self.fail("truncated: the data ends inside this opcode"),
        }
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let bytes = self.take(n)?;
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(bytes);
        Ok(u64::from_le_bytes(buf))
    }

    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let len = self.uint(n)?;
        match usize::try_from(len) {
            Ok(len) if len <= self.data.len() => Ok(len),
            _ => self.fail(format!("length {len} is longer than the pickle")),
        }
    }

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.stack.push(Item::Node(self.nodes.len() - 1));
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(Item::Node(i)) => Ok(i),
            Some(Item::Mark) => self.fail("found a mark where a value was expected"),
            None => self.fail("the stack is empty"),
        }
    }

    fn top(&self) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(Item::Node(i)) => Ok(*i),
            _ => self.fail("no value on the stack"),
        }
    }

    /// Pops everything down to the last mark.
    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let Some(mark) = self.stack.iter().rposition(|i| matches!(i, Item::Mark)) else {
            return self.fail("no mark on the stack");
        };
        let items = self
            .stack
            .drain(mark..)
            .skip(1)
            .map(|i| match i {
                Item::Node(n) => n,
                Item::Mark => unreachable!("the last mark was found above"),
            })
            .collect();
        Ok(items)
    }

    fn string(&mut self, n: usize) -> Result<(), PickleError> {
        let len = self.len(n)?;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                let s = s.to_string();
                self.push(Node::Str(s));
                Ok(())
            }
            Err(e) => self.fail(format!("a string is not UTF-8: {e}")),
        }
    }

    fn extend(&mut self, target: usize, items: Vec<usize>) -> Result<(), PickleError> {
        match &mut self.nodes[target] {
            Node::Seq(v) => {
                v.extend(items);
                Ok(())
            }
            _ => self.fail("appending to something that is not a list or set"),
        }
    }

    fn set_items(&mut self, target: usize, items: Vec<usize>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.fail("a dict's items come in key, value pairs");
        }
        match &mut self.nodes[target] {
            Node::Dict(d) => {
                d.extend(items.chunks(2).map(|kv| (kv[0], kv[1])));
                Ok(())
            }
            _ => self.fail("setting an item of something that is not a dict"),
        }
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(&i) => {
                self.stack.push(Item::Node(i));
                Ok(())
            }
            None => self.fail(format!("memo key {key} was never stored")),
        }
    }

    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            self.op_at = self.pos;
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    let proto = self.uint(1)?;
                    if proto > 5 {
                        return self.fail(format!("unknown protocol {proto}"));
                    }
                }
                0x95 => {
                    self.uint(8)?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.push(Node::Int(v.into()))
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.push(Node::Int(v as i64))
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.push(Node::Int(v as i64))
                }
                0x8a | 0x8b => {
                    let n = self.len(if op == 0x8a { 1 } else { 4 })?;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return self.fail("an integer wider than 64 bits");
                    }
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.push(Node::Int(i64::from_le_bytes(buf)))
                }
                b'G' => {
                    let bytes = self.take(8)?;
                    let v = f64::from_be_bytes(bytes.try_into().expect("8 bytes"));
                    self.push(Node::Float(v))
                }
                b'X' => self.string(4)?,
                0x8c => self.string(1)?,
                0x8d => self.string(8)?,
                b']' | b')' | 0x8f => self.push(Node::Seq(Vec::new())),
                b'}' => self.push(Node::Dict(Vec::new())),
                b'(' => self.stack.push(Item::Mark),
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend(list, vec![item])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend(list, items)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, items)?;
                }
                b'l' | b't' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Seq(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Dict(Vec::new()));
                    let dict = self.top()?;
                    self.set_items(dict, items)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Seq(items));
                }
                b'q' => {
                    let k = self.uint(1)?;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.uint(4)?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.uint(1)?;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.uint(4)?;
                    self.memo_get(k)?
                }
                b'0' => {
                    self.pop()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(Item::Node(top));
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'c'
                | 0x93
                | b'R'
                | b'b'
                | b'i'
                | b'o'
                | 0x81
                | 0x92
                | 0x82..=0x84
                | b'P'
                | b'Q' => {
                    return self.fail(format!(
                        "opcode {} reaches a Python callable or class; only plain data is read",
                        name(op)
                    ));
                }
                other => {
                    return self.fail(format!(
                        "opcode {} is not plain data start reads (bytes, protocol-0 text and buffers are not)",
                        name(other)
                    ));
                }
            }
        }
    }

    fn to_json(&self, i: usize, depth: usize) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH {
            return Err(PickleError {
                offset: 0,
                message: format!("nested deeper than {MAX_DEPTH} (or refers to itself)"),
            });
        }
        Ok(match &self.nodes[i] {
            Node::None => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(n) => Value::Number((*n).into()),
            Node::Float(f) => Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|&c| self.to_json(c, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Dict(pairs) => {
                let mut map = Map::new();
                for &(k, v) in pairs {
                    let key = match &self.nodes[k] {
                        Node::Str(s) => s.clone(),
                        Node::Int(n) => n.to_string(),
                        _ => {
                            return Err(PickleError {
                                offset: 0,
                                message: "a dict key that is neither a string nor an integer"
                                    .into(),
                            })
                        }
                    };
                    map.insert(key, self.to_json(v, depth + 1)?);
                }
                Value::Object(map)
            }
        })
    }
}

/// The opcode's name in pickletools' terms, for messages.
fn name(op: u8) -> String {
    let known = match op {
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'b' => "BUILD",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        0x82..=0x84 => "EXT",
        b'P' | b'Q' => "PERSID",
        b'B' | b'C' | 0x8e => "BINBYTES",
        b'V' => "UNICODE",
        b'S' | b'T' | b'U' => "STRING",
        0x96..=0x98 => "BUFFER",
        _ => "",
    };
    if known.is_empty() {
        format!("0x{op:02x}")
    } else {
        format!("{known} (0x{op:02x})")
    }
}

/// Reads a pickle of plain data as JSON: tuples and sets become arrays, integer dict keys
/// become strings. Anything else is a [`PickleError`] naming the opcode and its offset.
pub fn loads(data: &[u8]) -> Result<Value, PickleError> {
    let mut reader = Reader {
        data,
        pos: 0,
        op_at: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        memo: Default::default(),
    };
    let root = reader.run()?;
    reader.to_json(root, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `pickle.dumps(expr, protocol)` by the real Python, as bytes.
    fn dumps(expr: &str, protocol: u8) -> Vec<u8> {
        crate::testing::python(&format!(
            "import os, pickle, sys\nsys.stdout.buffer.write(pickle.dumps({expr}, protocol={protocol}))"
        ))
    }

    #[test]
    fn plain_data_reads_back_as_python_wrote_it_in_every_binary_protocol() {
        let expr = "{'a': [1, -2, 300, 70000, -(2**40), 1.5, None, True, False], 'é': ('x', 'y' * 300), 'n': {3: ()}, 's': [[]] * 2}";
        let want = json!({"a": [1, -2, 300, 70000, -(1i64 << 40), 1.5, null, true, false],
                          "é": ["x", "y".repeat(300)], "n": {"3": []}, "s": [[], []]});
        for protocol in 2..=5 {
            assert_eq!(
                loads(&dumps(expr, protocol)).unwrap(),
                want,
                "protocol {protocol}"
            );
        }
        // Sets have opcodes of their own from protocol 4 (before, they are a call of `set`).
        assert_eq!(
            loads(&dumps("[{7}, frozenset()]", 4)).unwrap(),
            json!([[7], []])
        );
    }

    #[test]
    fn a_list_memoised_empty_and_filled_later_reads_full() {
        // pickle memoises [] before its APPENDS; the second reference is a memo GET.
        let data = dumps("(lambda l: [l, l])([1, 2])", 4);
        assert_eq!(loads(&data).unwrap(), json!([[1, 2], [1, 2]]));
    }

    #[test]
    fn callables_and_classes_are_refused_with_their_opcode_and_place() {
        for expr in [
            "os.system",
            "(os.system, ('true',))",
            "range(3)",
            "b'bytes'",
        ] {
            let err = loads(&dumps(expr, 4)).unwrap_err();
            assert!(err.offset > 0, "{expr}: {err}");
            assert!(err.message.contains("opcode"), "{expr}: {err}");
        }
        // The classic exploit, written by hand: GLOBAL os.system, 'true', TUPLE1, REDUCE.
        let exploit = b"cos\nsystem\n\x8c\x04true\x85R.";
        let err = loads(exploit).unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.message.contains("GLOBAL"), "{err}");
    }

    #[test]
    fn truncated_and_self_referencing_pickles_are_errors() {
        let data = dumps("['abc']", 4);
        assert!(loads(&data[..data.len() - 3]).is_err());
        let cyclic = dumps("(lambda l: (l.append(l), l)[1])([])", 4);
        assert!(loads(&cyclic)
            .unwrap_err()
            .message
            .contains("refers to itself"));
    }
}
