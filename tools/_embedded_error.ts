/**
 * The error of the embedded test server (tools/_embedded.ts), in its own
 * module so the binary locator can throw it too.
 *
 * @module
 */

/** Why an embedded server could not start. */
export type EmbeddedStartFailure =
  | "port_in_use"
  | "binary_missing"
  | "no_space"
  | "timeout"
  | "other";

/** The embedded server could not be created or started. */
export class EmbeddedStartError extends Error {
  /** Machine-readable cause, e.g. `"port_in_use"`. */
  readonly reason: EmbeddedStartFailure;

  /**
   * Create the error.
   *
   * @param reason Machine-readable cause.
   * @param message One-line human-readable explanation.
   */
  constructor(reason: EmbeddedStartFailure, message: string) {
    super(message);
    this.name = "EmbeddedStartError";
    this.reason = reason;
  }
}
