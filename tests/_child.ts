/**
 * Runs a script of `tests/_children/` in a child `deno run -A`, for scenarios
 * where a crash (an uncaught exception, an unhandled rejection) must show as
 * the child's exit code instead of taking the test runner down.
 *
 * @module
 */

/** What the child left behind. */
export interface ChildOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `tests/_children/<script>` with `args` and collects its output.
 *
 * @param script File name under `tests/_children/`.
 * @param args Arguments after the script.
 * @returns Exit code, stdout and stderr as text.
 * @example
 * ```ts
 * const { code, stdout } = await runChild("bad_conninfo.ts");
 * ```
 */
export async function runChild(script: string, args: string[] = []): Promise<ChildOutput> {
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`./_children/${script}`, import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: child.code, stdout: text.decode(child.stdout), stderr: text.decode(child.stderr) };
}
