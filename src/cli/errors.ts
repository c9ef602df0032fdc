/** A user-facing CLI error: printed as one line without a stack trace, exit code 1. */
export class UsageError extends Error {}
