/**
 * Removes a conninfo's password from driver errors. The driver never hands
 * pg the raw conninfo, so a password can only reach an error through text
 * the driver did not write; scrubbing is the second line of defence.
 *
 * @module
 */
import type { Conninfo } from "./_conninfo.ts";

/**
 * A function that replaces every occurrence of the password (as given, and
 * percent-encoded) in an error's message and stack with `***`, except where the
 * text is the user, database or host name that happens to contain it: with
 * user and password both `postgres`, `for user "postgres"` stays readable.
 *
 * @param info The parsed conninfo.
 * @returns `scrub(error)`: the same error (or a new one for a non-Error), scrubbed in place.
 * @example
 * ```ts
 * import { parseConninfo } from "./_conninfo.ts";
 * const scrub = scrubber(parseConninfo("postgres://app:s3cret@db/app"));
 * scrub(new Error("s3cret")).message; // "***"
 * ```
 */
export function scrubber(info: Conninfo): (error: unknown) => Error {
  return scrubberOf([info.password], [info.user, info.database, ...info.hosts.flatMap((h) => [h.host, h.hostaddr])]);
}

/**
 * {@linkcode scrubber} for a driver that does not parse its conninfo through
 * `_conninfo.ts` (deno-postgres): the passwords (each also percent-encoded)
 * and the names to keep readable, given directly.
 *
 * @param passwords Every form of the password the conninfo holds (empty and non-strings are skipped).
 * @param shown User, database and host names (non-strings are skipped).
 * @returns `scrub(error)`, as {@linkcode scrubber}'s.
 * @example
 * ```ts
 * const scrub = scrubberOf(["s3cret"], ["app", "db"]);
 * scrub(new Error("s3cret")).message; // "***"
 * ```
 */
export function scrubberOf(passwords: readonly unknown[], shown: readonly unknown[]): (error: unknown) => Error {
  const given = passwords.filter((p): p is string => typeof p === "string" && p !== "");
  const secrets = [...new Set(given.flatMap((p) => [p, encodeURIComponent(p)]))].sort((a, b) => b.length - a.length);
  const names = shown.filter((s): s is string => typeof s === "string" && s !== "");
  return (error: unknown): Error => {
    const err = error instanceof Error ? error : new Error(String(error));
    if (secrets.length === 0) return err;
    err.message = scrubText(err.message, secrets, names);
    if (typeof err.stack === "string") err.stack = scrubText(err.stack, secrets, names);
    return err;
  };
}

/** `text` with each secret replaced, but not inside an occurrence of a `shown` name. */
function scrubText(text: string, secrets: string[], shown: string[]): string {
  for (const secret of secrets) {
    if (!text.includes(secret)) continue;
    const keep = ranges(text, shown.filter((name) => name.includes(secret)));
    let out = "";
    let from = 0;
    for (let i = text.indexOf(secret); i >= 0; i = text.indexOf(secret, i + secret.length)) {
      if (keep.some(([a, b]) => a <= i && i + secret.length <= b)) continue;
      out += text.slice(from, i) + "***";
      from = i + secret.length;
    }
    text = out + text.slice(from);
  }
  return text;
}

/** Every [start, end) where one of `names` occurs, as a whole quoted or delimited word. */
function ranges(text: string, names: string[]): [number, number][] {
  const out: [number, number][] = [];
  for (const name of names) {
    for (let i = text.indexOf(name); i >= 0; i = text.indexOf(name, i + 1)) {
      // Only where the name stands alone (`"postgres"`, `@postgres:`), not inside a longer word.
      const before = text[i - 1];
      const after = text[i + name.length];
      if (isWordChar(before) || isWordChar(after)) continue;
      out.push([i, i + name.length]);
    }
  }
  return out;
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{N}_]/u.test(c);
}
