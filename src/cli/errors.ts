/**
 * A user-facing CLI error: printed as one line without a stack trace, exit code 1; `usage`, the
 * command's usage text, follows that line (with --json it is a field of its own, not the message).
 */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}
