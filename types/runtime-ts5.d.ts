// attnc/runtime's declarations for TypeScript before 6 (package.json "exports" picks this file with
// the `types@<6` condition): dist/src/runtime/index.d.ts plus the WebGPU types, which TypeScript 5's
// DOM lib lacks. TypeScript 6 and later declare WebGPU in their own DOM lib, and @webgpu/types
// conflicts with that one (duplicate identifiers, TS2300 / TS6200), so the declarations under dist/
// reference neither: there they use the consumer's DOM lib. test/package/tarball.test.ts
// type-checks a consumer with TypeScript 5, 6 and 7.
/// <reference types="@webgpu/types" />
export * from '../dist/src/runtime/index.js';
