/**
 * A PostgreSQL lexer, just enough to classify statements: it turns SQL text
 * into words, strings, parameters and punctuation the way the server's own
 * scanner does, so that the classifier (./_sql_classifier.ts) reads meaning,
 * not spelling. Comments (nested `/* *\/` and `--`) are whitespace; quoted
 * identifiers are unquoted (`"x""y"` is `x"y`, `U&"x\0079"` is `xy`); `E''` strings take backslash
 * escapes; dollar quotes (`$tag$...$tag$`) are strings; with
 * `standard_conforming_strings` off, plain `''` strings take backslash escapes
 * too. Linear in the text: every loop advances.
 *
 * @module
 */

/** A word (keyword or identifier, lower-cased unless quoted), a string's contents, a parameter or punctuation. */
export interface Token {
  /** `w` word, `q` quoted identifier, `s` string, `p` `$n`, `n` number, `o` operator or punctuation. */
  readonly t: "w" | "q" | "s" | "p" | "n" | "o";
  /** Lower-cased word, identifier as written, string contents, or the punctuation itself. */
  readonly v: string;
}

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
const isIdentStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
const isIdentChar = (c: number) => isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
const isDigit = (c: number) => c >= 48 && c <= 57;
/** Characters PostgreSQL's scanner joins into one operator token. */
const OPERATOR_CHARS = "+-*/<>=~!@#%^&|`?:";

/**
 * Splits `text` into tokens.
 *
 * @param text SQL text.
 * @param standardConformingStrings Whether `'...'` strings are standard (no backslash escapes), the default since 9.1.
 * @returns The tokens, comments and whitespace dropped.
 */
export function lex(text: string, standardConformingStrings = true): Token[] {
  const out: Token[] = [];
  const n = text.length;
  let i = 0;
  /** Index in `out` of a `U&'..'` / `U&".."` token still to decode (its `UESCAPE` clause may follow), or -1. */
  let unicode = -1;
  while (i < n) {
    if (unicode >= 0 && out.length > unicode) {
      i = decodeUnicode(text, i, out, unicode);
      unicode = -1;
      if (i >= n) break;
    }
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      i++;
    } else if (c === 45 && text.charCodeAt(i + 1) === 45) { // -- to end of line
      const end = text.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if (c === 47 && text.charCodeAt(i + 1) === 42) { // /* nested */
      i = blockCommentEnd(text, i);
    } else if (c === 39) { // '...'
      i = quoted(text, i, !standardConformingStrings, out);
    } else if (c === 34) { // "identifier"
      const start = i + 1;
      let v = "";
      i = start;
      for (;;) {
        const end = text.indexOf('"', i);
        if (end < 0) {
          v += text.slice(i);
          i = n;
          break;
        }
        v += text.slice(i, end);
        if (text.charCodeAt(end + 1) === 34) {
          v += '"';
          i = end + 2;
        } else {
          i = end + 1;
          break;
        }
      }
      out.push({ t: "q", v });
    } else if (c === 36) { // $1 or $tag$...$tag$
      if (isDigit(text.charCodeAt(i + 1))) {
        let j = i + 1;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
        out.push({ t: "p", v: text.slice(i, j) });
        i = j;
      } else {
        let j = i + 1;
        while (j < n && isIdentChar(text.charCodeAt(j)) && text.charCodeAt(j) !== 36) j++;
        if (text.charCodeAt(j) === 36) {
          const tag = text.slice(i, j + 1);
          const end = text.indexOf(tag, j + 1);
          out.push({ t: "s", v: text.slice(j + 1, end < 0 ? n : end) });
          i = end < 0 ? n : end + tag.length;
        } else {
          out.push({ t: "o", v: "$" });
          i++;
        }
      }
    } else if (isIdentStart(c)) {
      const next = text.charCodeAt(i + 1);
      // String prefixes: E'..' (escapes), U&'..' / U&"..", B'..', X'..', N'..'.
      if (next === 39 && (c === 69 || c === 101)) {
        i = quoted(text, i + 1, true, out);
        continue;
      }
      if (next === 39 && "bBxXnN".includes(text[i])) {
        i = quoted(text, i + 1, !standardConformingStrings, out);
        continue;
      }
      if ((c === 85 || c === 117) && next === 38 && (text.charCodeAt(i + 2) === 39 || text.charCodeAt(i + 2) === 34)) {
        i += 2; // the quoted part follows on the next turn, and is decoded the turn after
        unicode = out.length;
        continue;
      }
      let j = i + 1;
      while (j < n && isIdentChar(text.charCodeAt(j))) j++;
      out.push({ t: "w", v: text.slice(i, j).toLowerCase() });
      i = j;
    } else if (isDigit(c) || (c === 46 && isDigit(text.charCodeAt(i + 1)))) {
      let j = i + 1;
      while (j < n && (isIdentChar(text.charCodeAt(j)) || text.charCodeAt(j) === 46)) j++;
      out.push({ t: "n", v: text.slice(i, j) });
      i = j;
    } else if (OPERATOR_CHARS.includes(text[i])) {
      let j = i + 1;
      // An operator ends where a comment starts.
      while (
        j < n && OPERATOR_CHARS.includes(text[j]) && !text.startsWith("--", j) && !text.startsWith("/*", j)
      ) j++;
      out.push({ t: "o", v: text.slice(i, j) });
      i = j;
    } else {
      out.push({ t: "o", v: text[i] }); // ( ) , ; . [ ] and anything else, one character each
      i++;
    }
  }
  if (unicode >= 0 && out.length > unicode) decodeUnicode(text, n, out, unicode);
  return out;
}

/**
 * Decodes the `U&` token at `out[at]` as the server does: `\XXXX` and `\+XXXXXX` are code points, `\\` is a
 * backslash; an `UESCAPE 'c'` clause right after the token (read from `i`) makes `c` the escape character instead.
 * A quoted identifier such as `U&"set\005fconfig"` is then the name `set_config`.
 *
 * @returns Where lexing goes on: after the `UESCAPE` clause, if there is one.
 */
function decodeUnicode(text: string, i: number, out: Token[], at: number): number {
  let escape = "\\";
  const clause = /^(?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*uescape\s*'(.)'/i.exec(text.slice(i, i + 256));
  if (clause !== null) {
    escape = clause[1];
    i += clause[0].length;
  }
  const { t, v } = out[at];
  let decoded = "";
  for (let k = 0; k < v.length; k++) {
    if (v[k] !== escape) {
      decoded += v[k];
    } else if (v[k + 1] === escape) {
      decoded += escape;
      k++;
    } else {
      const six = v[k + 1] === "+";
      const hex = v.slice(k + (six ? 2 : 1), k + (six ? 8 : 5));
      const code = /^[0-9a-fA-F]+$/.test(hex) && hex.length === (six ? 6 : 4) ? parseInt(hex, 16) : NaN;
      decoded += Number.isNaN(code) || code > 0x10ffff ? "\uFFFD" : String.fromCodePoint(code);
      k += six ? 7 : 4;
    }
  }
  // An unquoted-looking name stays case as written, like any quoted identifier.
  out[at] = { t, v: decoded };
  return i;
}

/** Index after the block comment starting at `i`; comments nest, as in PostgreSQL. */
function blockCommentEnd(text: string, i: number): number {
  let depth = 0;
  const n = text.length;
  while (i < n) {
    if (text.charCodeAt(i) === 47 && text.charCodeAt(i + 1) === 42) {
      depth++;
      i += 2;
    } else if (text.charCodeAt(i) === 42 && text.charCodeAt(i + 1) === 47) {
      i += 2;
      if (--depth === 0) return i;
    } else i++;
  }
  return n;
}

/** Reads the `'...'` string starting at `i` (doubled quotes; backslash escapes if `escapes`) into `out`. */
function quoted(text: string, i: number, escapes: boolean, out: Token[]): number {
  const n = text.length;
  let v = "";
  let j = i + 1;
  let from = j;
  while (j < n) {
    const c = text.charCodeAt(j);
    if (escapes && c === 92) {
      v += text.slice(from, j) + text.charAt(j + 1);
      j += 2;
      from = j;
    } else if (c === 39) {
      if (text.charCodeAt(j + 1) === 39) {
        v += text.slice(from, j) + "'";
        j += 2;
        from = j;
      } else {
        out.push({ t: "s", v: v + text.slice(from, j) });
        return j + 1;
      }
    } else j++;
  }
  out.push({ t: "s", v: v + text.slice(from, n) });
  return n;
}
