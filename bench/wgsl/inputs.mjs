// Inputs of the WGSL benchmarks: deterministic values and GPU buffers filled once.

/** Deterministic inputs in [-1, 1) (a small LCG: fast for 64M values). */
export function fill(n, seed) {
  const a = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = x / 2147483648 - 1;
  }
  return a;
}

const STORAGE_RW = 0x80 | 0x8 | 0x4; // STORAGE | COPY_DST | COPY_SRC

/** A storage buffer holding `data` (writeBuffer in 64 MiB pieces: a GiB in one call copies it whole on the host). */
export function upload(device, data) {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buf = device.createBuffer({ size, usage: STORAGE_RW });
  const step = 1 << 26;
  for (let off = 0; off < data.byteLength; off += step)
    device.queue.writeBuffer(
      buf,
      off,
      data.buffer,
      data.byteOffset + off,
      Math.min(step, data.byteLength - off),
    );
  return buf;
}
