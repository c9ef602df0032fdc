// Indents lines of generated C by `pad`. Preprocessor lines (#pragma unroll, #if) stay in column
// 0, where the rest of the generated code keeps them, and empty lines stay empty.
export const indent = (lines: readonly string[], pad: string): string[] =>
  lines.map((l) => (l && !l.startsWith('#') ? pad + l : l));
