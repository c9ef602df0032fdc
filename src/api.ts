// What both public entries share (src/index.ts, src/wgsl.ts): everything but `compile`, which
// each entry binds to its own backends. Imports nothing Node-only, so it bundles for browsers.
export { checkSource } from './check-source.js';
export type { CompileOptions, Compiled } from './compile-core.js';
export {
  CompileError,
  renderDiagnostic,
  renderDiagnostics,
  type Diagnostic,
  type Span,
} from './diagnostics.js';
export { frontend, parseProgram } from './dsl/index.js';
export { printDecl, printProgram } from './dsl/print.js';
export type { Program, AttentionDecl, Expr } from './dsl/ast.js';
export type { Artifact, Binding, EntryPoint, UniformField, ShapeExpr } from './codegen/artifact.js';
export type { AttentionKernel, Schedule, StorageDType, TileClass } from './ir/kernel.js';
export { dumpIR } from './ir/dump.js';
export { passNames } from './ir/pipeline.js';
export { tileCounts, classifyTile } from './ir/tile-stats.js';
export { maskGrid, type MaskGrid, type MaskGridOptions } from './viz/grid.js';
export { renderSvg } from './viz/svg.js';
export { emitKernelModule } from './codegen/emit-ts.js';
export { MissingDependencyError } from './optional.js';
