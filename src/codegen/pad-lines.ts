// Pads every line of generated text, empty and preprocessor lines included: for WGSL, and for C
// where no `#` line can occur. C bodies that may hold `#pragma` lines use cuda/indent.ts's
// `indent`, which keeps those in column 0.
export const padLines = (lines: readonly string[], pad: string): string[] => lines.map((l) => pad + l);
