/**
 * The one answer to "may this statement leave session state behind?", used
 * by pipelining (a statement that may runs on a connection of its own) and
 * by the `pooler: "transaction"` guard (such a statement is refused). It reads
 * the tokens of ./_sql_lexer.ts, so spelling does not matter: `SET/**\/x`,
 * `SET"x"`, `set_config/**\/(`, a quoted function name, `false::boolean` or a
 * bound `$3` as `is_local`, named arguments, `SELECT ... INTO TEMP`,
 * `CREATE OR REPLACE TEMP VIEW`, `pg_temp.x`, `UPDATE pg_settings`, and `DO`
 * bodies (their statements, and the literal SQL they `EXECUTE`; dynamic SQL
 * there counts as stateful since it cannot be read). Text that only names
 * these (a string literal, a comment, the body of a function being defined)
 * is not a call and does not count.
 *
 * What it cannot see: a function, procedure, trigger or rule that changes
 * session state when called (`select my_fn()`, `CALL p()`); that is why, with
 * `reset` set, the pool does not pipeline unless told to.
 *
 * With `standard_conforming_strings` off, backslashes escape quotes in plain
 * strings; the session's setting is not known here, so text with a backslash
 * is read both ways and the stricter answer wins.
 *
 * @module
 */
import { lex, type Token } from "./_sql_lexer.ts";

/** The kind of session state a statement may leave; keys of the pooler guard's advice. */
export type SessionStateKind =
  | "set"
  | "listen"
  | "prepare"
  | "discard"
  | "create"
  | "declare"
  | "lock"
  | "dynamic"
  | "load";

/** What the classifier sees in one text. */
export interface Classified {
  /** Non-empty statements in the text. */
  readonly statements: number;
  /** The first word of the first statement (lower case), if any. */
  readonly first: string | undefined;
  /** Session state some statement of the text may leave, or undefined. */
  readonly state: SessionStateKind | undefined;
}

/** Session advisory locks and their releases: they change what the session holds. */
const SESSION_LOCKS = new Set([
  "pg_advisory_lock",
  "pg_advisory_lock_shared",
  "pg_try_advisory_lock",
  "pg_try_advisory_lock_shared",
]);
/** Spellings of a constant true `is_local` (a boolean's text input forms). */
const TRUE_TEXT = new Set(["true", "t", "on", "yes", "y", "1", "tr", "tru", "ye"]);
/** Words after which a PL/pgSQL statement starts. */
const BLOCK_STARTS = new Set(["begin", "then", "else", "loop", "exception"]);
/** Words that may stand between `EXPLAIN` and its statement (the old, unparenthesized option syntax). */
const EXPLAIN_OPTIONS = new Set(["analyze", "analyse", "verbose"]);
/** Words after which PL/pgSQL's EXECUTE runs SQL: `OPEN c FOR EXECUTE`, `FOR r IN EXECUTE`, `RETURN QUERY EXECUTE`. */
const EXECUTE_AFTER = new Set(["for", "in", "query"]);

const CACHE_MAX = 1_024;
const CACHE_TEXT_MAX = 4_096;
/** ORMs send the same few texts again and again: their answer is kept (bounded, cleared when full). */
const cache = new Map<string, Classified>();

/**
 * Classifies SQL text: how many statements, the first word, and the session state it may leave.
 *
 * @param text SQL text, one statement or several.
 * @returns What the classifier sees.
 */
export function classify(text: string): Classified {
  const hit = cache.get(text);
  if (hit !== undefined) return hit;
  let result = classifyTokens(lex(text, true), false);
  if (result.state === undefined && text.includes("\\")) {
    const other = classifyTokens(lex(text, false), false);
    if (other.state !== undefined || other.statements > result.statements) result = other;
  }
  if (text.length <= CACHE_TEXT_MAX) {
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(text, result);
  }
  return result;
}

/**
 * The session state a text may leave, or undefined (see {@linkcode classify}).
 *
 * @param text SQL text.
 * @returns The kind, or undefined for a text that leaves nothing behind that the classifier can see.
 */
export function sessionStateOf(text: string): SessionStateKind | undefined {
  return classify(text).state;
}

function classifyTokens(tokens: Token[], procedural: boolean): Classified {
  const match = matchParens(tokens);
  let statements = 0;
  let first: string | undefined;
  let state = callState(tokens, match, procedural);
  let start = 0;
  for (let i = 0; i <= tokens.length; i++) {
    if (i < tokens.length && !(tokens[i].t === "o" && tokens[i].v === ";")) continue;
    if (i > start) {
      statements++;
      const head = firstWord(tokens, start, i);
      first ??= head === undefined ? undefined : tokens[head].v;
      state ??= procedural ? blockState(tokens, start, i) : statementState(tokens, start, i);
    }
    start = i + 1;
  }
  return { statements, first, state };
}

/** Index of the first word of tokens[from, to), past opening parentheses. */
function firstWord(tokens: Token[], from: number, to: number): number | undefined {
  let i = from;
  while (i < to && tokens[i].t === "o" && tokens[i].v === "(") i++;
  return i < to && tokens[i].t === "w" ? i : undefined;
}

const isWord = (tok: Token | undefined, v: string) => tok !== undefined && tok.t === "w" && tok.v === v;
const isOp = (tok: Token | undefined, v: string) => tok !== undefined && tok.t === "o" && tok.v === v;
/** A name: a word or a quoted identifier, compared in lower case (a quoted spelling is never less strict). */
const nameOf = (tok: Token | undefined) =>
  tok !== undefined && (tok.t === "w" || tok.t === "q") ? tok.v.toLowerCase() : undefined;
const isBoolType = (name: string | undefined) => name === "bool" || name === "boolean";
const isTempSchema = (name: string | undefined) => name !== undefined && /^pg_temp(?:_\d+)?$/.test(name);

/** The state one SQL statement tokens[from, to) leaves by what it is (not by the functions it calls). */
function statementState(tokens: Token[], from: number, to: number, dml = true): SessionStateKind | undefined {
  const head = firstWord(tokens, from, to);
  if (head === undefined) return undefined;
  const next = tokens[head + 1];
  switch (tokens[head].v) {
    case "set":
      return isWord(next, "local") || isWord(next, "transaction") || isWord(next, "constraints") ? undefined : "set";
    case "listen":
      return "listen";
    case "prepare":
      return isWord(next, "transaction") ? undefined : "prepare";
    case "discard":
      return "discard";
    case "load":
      return "load";
    case "create":
      return createState(tokens, head + 1, to);
    case "declare":
      for (let i = head + 1; i + 1 < to && !isWord(tokens[i], "for"); i++) {
        if (isWord(tokens[i], "with") && isWord(tokens[i + 1], "hold")) return "declare";
      }
      return undefined;
    case "explain": {
      // EXPLAIN ANALYZE runs its statement: what it would leave, EXPLAIN leaves (read as if ANALYZE were given).
      let i = head + 1;
      if (isOp(tokens[i], "(")) {
        for (let depth = 0; i < to; i++) {
          if (isOp(tokens[i], "(")) depth++;
          else if (isOp(tokens[i], ")") && --depth === 0) break;
        }
        i++;
      }
      while (i < to && tokens[i].t === "w" && EXPLAIN_OPTIONS.has(tokens[i].v)) i++;
      return i < to ? statementState(tokens, i, to, dml) : undefined;
    }
    case "do":
      for (let i = head + 1; i < to; i++) {
        // Only PL/pgSQL is read; another language's body (plv8, plpython) may run anything.
        if (isWord(tokens[i], "language") && nameOf(tokens[i + 1]) !== "plpgsql") return "dynamic";
      }
      for (let i = head + 1; i < to; i++) {
        if (tokens[i].t === "s") return blockText(tokens[i].v);
      }
      return undefined;
  }
  return dml ? dmlState(tokens, head, to) : undefined;
}

/** `CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP ...` or anything created in `pg_temp`, unless `ON COMMIT DROP`. */
function createState(tokens: Token[], from: number, to: number): SessionStateKind | undefined {
  let temp = false;
  for (let i = from; i < to && tokens[i].t === "w"; i++) {
    const v = tokens[i].v;
    if (v === "temp" || v === "temporary") temp = true;
    else if (v !== "or" && v !== "replace" && v !== "global" && v !== "local" && v !== "unlogged") break;
  }
  const marks = marksOf(tokens);
  if (!temp && marks.tempRef[from] < to) temp = true;
  if (!temp || marks.commitDrop[from] < to) return undefined;
  return "create";
}

/** Per token array, for each index the next `pg_temp.` reference and the next `ON COMMIT DROP` (length if none). */
const MARKS = new WeakMap<Token[], { tempRef: Int32Array; commitDrop: Int32Array }>();

/** Computed once per token array, so that a PL/pgSQL body full of CREATE stays linear. */
function marksOf(tokens: Token[]): { tempRef: Int32Array; commitDrop: Int32Array } {
  let marks = MARKS.get(tokens);
  if (marks !== undefined) return marks;
  const n = tokens.length;
  const tempRef = new Int32Array(n + 1).fill(n);
  const commitDrop = new Int32Array(n + 1).fill(n);
  for (let i = n - 1; i >= 0; i--) {
    tempRef[i] = isTempSchema(nameOf(tokens[i])) && isOp(tokens[i + 1], ".") ? i : tempRef[i + 1];
    commitDrop[i] = isWord(tokens[i], "on") && isWord(tokens[i + 1], "commit") && isWord(tokens[i + 2], "drop")
      ? i
      : commitDrop[i + 1];
  }
  MARKS.set(tokens, marks = { tempRef, commitDrop });
  return marks;
}

/** `SELECT ... INTO TEMP` (a temp table made by a query) and `UPDATE pg_settings` (a `SET` by another name). */
function dmlState(tokens: Token[], from: number, to: number): SessionStateKind | undefined {
  // The verb that owns an INTO, per parenthesis depth: INSERT INTO / MERGE INTO name tables, SELECT INTO makes one.
  const verbs: string[] = [];
  let depth = 0;
  for (let i = from; i < to; i++) {
    const tok = tokens[i];
    if (tok.t === "o") {
      if (tok.v === "(") depth++;
      else if (tok.v === ")") depth = Math.max(0, depth - 1);
      continue;
    }
    if (tok.t !== "w") continue;
    if (tok.v === "select" || tok.v === "insert" || tok.v === "merge") verbs[depth] = tok.v;
    else if (tok.v === "into" && verbs[depth] === "select") {
      let j = i + 1;
      if (isWord(tokens[j], "local") || isWord(tokens[j], "global")) j++;
      if (isWord(tokens[j], "temp") || isWord(tokens[j], "temporary")) return "create";
      if (isWord(tokens[j], "unlogged")) j++;
      if (isWord(tokens[j], "table")) j++;
      if (isTempSchema(nameOf(tokens[j])) && isOp(tokens[j + 1], ".")) return "create";
    } else if (tok.v === "update") {
      let j = i + 1;
      if (isWord(tokens[j], "only")) j++;
      if (nameOf(tokens[j]) === "pg_catalog" && isOp(tokens[j + 1], ".")) j += 2;
      if (nameOf(tokens[j]) === "pg_settings") return "set";
    }
  }
  return undefined;
}

/** Calls anywhere in the text (any depth, any statement): session advisory locks, `set_config` not local. */
function callState(tokens: Token[], match: Int32Array, procedural: boolean): SessionStateKind | undefined {
  for (let i = 0; i + 1 < tokens.length; i++) {
    if (!isOp(tokens[i + 1], "(")) continue;
    const name = nameOf(tokens[i]);
    if (name === undefined) continue;
    // `pg_catalog.x(`, `"x"(`: the call is the name before the parenthesis, however qualified or quoted.
    if (SESSION_LOCKS.has(name)) return "lock";
    if (name === "set_config" && !localSetConfig(tokens, match, i + 1)) return "set";
    if (procedural && name === "execute") return "dynamic"; // EXECUTE (...) in PL/pgSQL: built at run time
  }
  return undefined;
}

/** Whether the `set_config(` whose parenthesis is at `open` has a constant true `is_local`. */
function localSetConfig(tokens: Token[], match: Int32Array, open: number): boolean {
  const close = match[open];
  if (close < 0) return false;
  const args: [number, number][] = [];
  let start = open + 1;
  for (let i = open + 1; i <= close; i++) {
    if (isOp(tokens[i], "(") || isOp(tokens[i], "[")) {
      if (match[i] > i) i = match[i];
      continue;
    }
    if (i === close || isOp(tokens[i], ",")) {
      args.push([start, i]);
      start = i + 1;
    }
  }
  let local: [number, number] | undefined;
  const named = args.some(([a]) => isOp(tokens[a + 1], "=>") || isOp(tokens[a + 1], ":="));
  if (named) {
    const arg = args.find(([a]) =>
      nameOf(tokens[a]) === "is_local" && (isOp(tokens[a + 1], "=>") || isOp(tokens[a + 1], ":="))
    );
    if (arg !== undefined) local = [arg[0] + 2, arg[1]];
  } else local = args[2];
  if (local === undefined) return false;
  const from = local[0];
  let to = local[1];
  // A trailing ::boolean / ::bool / ::pg_catalog.bool cast of a constant.
  if (to - from === 3 && isOp(tokens[from + 1], "::") && isBoolType(nameOf(tokens[from + 2]))) to = from + 1;
  if (
    to - from === 5 && isOp(tokens[from + 1], "::") && nameOf(tokens[from + 2]) === "pg_catalog" &&
    isOp(tokens[from + 3], ".") && isBoolType(nameOf(tokens[from + 4]))
  ) to = from + 1;
  if (to - from !== 1) return false;
  const tok = tokens[from];
  if (tok.t === "w") return tok.v === "true";
  if (tok.t === "s") return TRUE_TEXT.has(tok.v.trim().toLowerCase());
  return false;
}

/** A `DO` body (PL/pgSQL): its statements, the calls in it, and the literal SQL it EXECUTEs. */
function blockText(body: string): SessionStateKind | undefined {
  let state = classifyTokens(lex(body, true), true).state;
  if (state === undefined && body.includes("\\")) state = classifyTokens(lex(body, false), true).state;
  return state;
}

/** The state of one PL/pgSQL statement tokens[from, to): each SQL statement in it, and what it EXECUTEs. */
function blockState(tokens: Token[], from: number, to: number): SessionStateKind | undefined {
  for (let i = from; i < to; i++) {
    const prev = tokens[i - 1];
    const starts = i === from || (prev.t === "w" && BLOCK_STARTS.has(prev.v)) || isOp(prev, ">>");
    const executes = isWord(tokens[i], "execute") && (starts || (prev.t === "w" && EXECUTE_AFTER.has(prev.v)));
    if (executes || (starts && tokens[i].t === "w")) {
      if (executes) {
        // EXECUTE 'literal' [INTO ...] [USING ...]: the literal is SQL the classifier can read; anything else is
        // built at run time, so it may do anything.
        const arg = tokens[i + 1];
        const after = tokens[i + 2];
        const literal = arg !== undefined && arg.t === "s" &&
          (i + 2 >= to || isWord(after, "into") || isWord(after, "using") || isWord(after, "strict") ||
            isWord(after, "loop"));
        if (!literal) return "dynamic";
        const inner = classify(arg.v).state;
        if (inner !== undefined) return inner;
      } else if (tokens[i].v !== "declare") { // PL/pgSQL's DECLARE section declares variables, not cursors
        // The INTO / UPDATE scan covers the whole statement once, below: per start it would be quadratic.
        const state = statementState(tokens, i, to, false);
        if (state !== undefined) return state;
      }
    }
  }
  return dmlState(tokens, from, to);
}

/** For each `(` or `[`, the index of its closing partner (-1 when unclosed); one pass with a stack. */
function matchParens(tokens: Token[]): Int32Array {
  const match = new Int32Array(tokens.length).fill(-1);
  const stack: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    if (tok.t !== "o") continue;
    if (tok.v === "(" || tok.v === "[") stack.push(i);
    else if ((tok.v === ")" || tok.v === "]") && stack.length > 0) match[stack.pop()!] = i;
  }
  return match;
}
