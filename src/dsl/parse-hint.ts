// How a parse message carries its hint: chevrotain takes one message string, so parser-messages.ts
// puts the hint after a separator and the front end takes it apart. A module of its own so that
// the front end needs none of the wording (loaded only when there is an error, front-features.ts).

/** Separates a parse message from its hint inside chevrotain's single message string. */
export const HINT = '\u0001';

export function splitParseMessage(m: string): { message: string; hint?: string } {
  const i = m.indexOf(HINT);
  return i < 0 ? { message: m } : { message: m.slice(0, i), hint: m.slice(i + 1) };
}
