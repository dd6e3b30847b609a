//! A bounded bencode scanner (BEP 3): checks that input is one well-formed
//! value and finds the exact bytes of a top-level dictionary's value, so the
//! info-hash is taken over the `info` dictionary as it appears in the file,
//! never a re-encoding. Typed decoding is serde_bencode's; this scanner runs
//! first so that decoder never sees unbounded nesting.

/// Deepest nesting of lists and dictionaries accepted (real torrents use 4).
pub const MAX_DEPTH: usize = 64;

/// Why bytes are not bencode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bencode: {what} at byte {at}")]
pub struct BencodeError {
    /// What was wrong.
    pub what: &'static str,
    /// Byte offset.
    pub at: usize,
}

fn err<T>(what: &'static str, at: usize) -> Result<T, BencodeError> {
    Err(BencodeError { what, at })
}

/// The end offset of the value starting at `at`.
fn value_end(input: &[u8], at: usize, depth: usize) -> Result<usize, BencodeError> {
    if depth > MAX_DEPTH {
        return err("nested too deeply", at);
    }
    match input.get(at) {
        None => err("truncated", at),
        Some(b'i') => {
            let mut i = at + 1;
            if input.get(i) == Some(&b'-') {
                i += 1;
            }
            let digits = i;
            while input.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == digits || i - digits > 20 {
                return err("bad integer", at);
            }
            match input.get(i) {
                Some(b'e') => Ok(i + 1),
                None => err("truncated", i),
                _ => err("bad integer", i),
            }
        }
        Some(b'l') => {
            let mut i = at + 1;
            loop {
                match input.get(i) {
                    None => return err("truncated", i),
                    Some(b'e') => return Ok(i + 1),
                    _ => i = value_end(input, i, depth + 1)?,
                }
            }
        }
        Some(b'd') => {
            let mut i = at + 1;
            loop {
                match input.get(i) {
                    None => return err("truncated", i),
                    Some(b'e') => return Ok(i + 1),
                    Some(c) if c.is_ascii_digit() => {
                        i = string_end(input, i)?;
                        i = value_end(input, i, depth + 1)?;
                    }
                    _ => return err("dictionary key is not a string", i),
                }
            }
        }
        Some(c) if c.is_ascii_digit() => string_end(input, at),
        _ => err("not a bencode value", at),
    }
}

/// The end offset of the byte string starting at `at` (`<len>:<bytes>`).
fn string_end(input: &[u8], at: usize) -> Result<usize, BencodeError> {
    let (len, body) = string_header(input, at)?;
    let end = body.checked_add(len).filter(|e| *e <= input.len());
    end.map_or_else(|| err("string runs past the end", at), Ok)
}

/// The length and start of the byte string at `at`.
fn string_header(input: &[u8], at: usize) -> Result<(usize, usize), BencodeError> {
    let mut i = at;
    let mut len: usize = 0;
    while let Some(c) = input.get(i).filter(|c| c.is_ascii_digit()) {
        len = len
            .checked_mul(10)
            .and_then(|l| l.checked_add(usize::from(c - b'0')))
            .filter(|l| *l <= input.len())
            .map_or_else(|| err("string length too large", at), Ok)?;
        i += 1;
    }
    if i == at || input.get(i) != Some(&b':') {
        return err("bad string length", at);
    }
    Ok((len, i + 1))
}

/// Checks that `input` is exactly one well-formed bencode value.
///
/// # Errors
/// A [`BencodeError`] naming the first problem and its offset.
pub fn validate(input: &[u8]) -> Result<(), BencodeError> {
    let end = value_end(input, 0, 0)?;
    if end != input.len() {
        return err("bytes after the value", end);
    }
    Ok(())
}

/// The length in bytes of the one value `input` starts with (what follows
/// it is not looked at): BEP 9 `data` messages put raw bytes after a
/// dictionary.
///
/// # Errors
/// A [`BencodeError`] when `input` does not start with a well-formed value.
pub fn value_len(input: &[u8]) -> Result<usize, BencodeError> {
    value_end(input, 0, 0)
}

/// The raw bytes of `key`'s value in the top-level dictionary of `input`.
///
/// # Errors
/// A [`BencodeError`] when `input` is not a well-formed dictionary.
pub fn dict_value<'a>(input: &'a [u8], key: &[u8]) -> Result<Option<&'a [u8]>, BencodeError> {
    validate(input)?;
    if input.first() != Some(&b'd') {
        return err("not a dictionary", 0);
    }
    let mut i = 1;
    while input.get(i) != Some(&b'e') {
        let (len, body) = string_header(input, i)?;
        let k = &input[body..body + len];
        let v_start = body + len;
        let v_end = value_end(input, v_start, 1)?;
        if k == key {
            return Ok(Some(&input[v_start..v_end]));
        }
        i = v_end;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn finds_exact_value_bytes() {
        let t = b"d8:announce3:abc4:infod4:name1:x6:lengthi5ee3:zzzi1ee";
        assert_eq!(
            dict_value(t, b"info").unwrap(),
            Some(&b"d4:name1:x6:lengthi5ee"[..])
        );
        assert_eq!(dict_value(t, b"nope").unwrap(), None);
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            &b""[..],
            b"d",
            b"i12",
            b"ie",
            b"5:abc",
            b"99999999999999999999999:x",
            b"di1e1:xe",
            b"d1:ai1ee trailing",
            b"x",
        ] {
            assert!(validate(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = [b"l".repeat(100), b"e".repeat(100)].concat();
        assert_eq!(validate(&deep).unwrap_err().what, "nested too deeply");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = validate(&bytes);
            let _ = dict_value(&bytes, b"info");
        }

        #[test]
        fn never_panics_on_mutated_torrents(pos in 0usize..60, byte in any::<u8>()) {
            let mut t = b"d8:announce3:abc4:infod4:name1:x6:lengthi5ee3:zzzi1ee".to_vec();
            let p = pos % t.len();
            t[p] = byte;
            let _ = dict_value(&t, b"info");
        }
    }
}
