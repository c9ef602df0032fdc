// The one text, in the emitted runtime's «TypeScript-only» notation, that uploads a host array
// into a GPUBuffer: dispatch's inputs (emit-ts-kernel.ts) and backward's (emit-ts-backward.ts).
// It is spliced at both sites rather than called, so that a kernel module's text stays as it was.

/**
 * Writes host array `data` into `buf`, a GPUBuffer of `size` bytes, each line at `indent`. An
 * empty array writes nothing; one whose byte length is not a multiple of 4 (odd-length f16) or
 * that lives in shared memory goes through a padded copy of `size` bytes.
 */
export function hostUpload(data: string, buf: string, size: string, indent: string): string {
  return [
    '// writeBuffer wants a multiple of 4 bytes, and Dawn no SharedArrayBuffer: odd-length f16',
    '// data and shared memory go through a padded copy.',
    `if (${data}.byteLength % 4 === 0 && ${data}.buffer instanceof ArrayBuffer) {`,
    `  if (${data}.byteLength > 0) device.queue.writeBuffer(${buf}, 0, ${data}.buffer «as ArrayBuffer», ${data}.byteOffset, ${data}.byteLength);`,
    '} else {',
    `  const padded = new Uint8Array(${size});`,
    `  padded.set(new Uint8Array(${data}.buffer, ${data}.byteOffset, ${data}.byteLength));`,
    `  device.queue.writeBuffer(${buf}, 0, padded);`,
    '}',
  ]
    .map((line) => indent + line)
    .join('\n');
}
