// The adapter's ceiling for the WGSL benchmark: a register-tiled f32 matmul C = A·B (row-major,
// square, size a multiple of 128). A workgroup of 16×16 invocations owns a 128×128 tile of C,
// each invocation an 8×8 block in registers; A and B stream through workgroup memory 8 deep.
const shader = `
const TS: u32 = 128u;
const TK: u32 = 8u;
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> bm: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> size: vec4<u32>;
var<workgroup> a_s: array<vec4<f32>, 256>; // [k][m/4]: A tile transposed
var<workgroup> b_s: array<vec4<f32>, 256>; // [k][n/4]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let n = size.x;
  let n4 = n / 4u;
  let m0 = wg.y * TS;
  let n0 = wg.x * TS;
  var acc: array<array<vec4<f32>, 2>, 8>;
  for (var r = 0u; r < 8u; r++) { acc[r][0] = vec4<f32>(0.0); acc[r][1] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < n; k0 += TK) {
    // A: 128 rows x 8 k = 256 vec4 along k, one per invocation, stored transposed.
    let ar = li / 2u;
    let aq = li % 2u;
    let av = a[(m0 + ar) * n4 + k0 / 4u + aq];
    for (var e = 0u; e < 4u; e++) { a_s[(4u * aq + e) * 32u + ar / 4u][ar % 4u] = av[e]; }
    // B: 8 k x 128 columns = 256 vec4 along n.
    let bk = li / 32u;
    let bq = li % 32u;
    b_s[bk * 32u + bq] = bm[(k0 + bk) * n4 + n0 / 4u + bq];
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a0 = a_s[kk * 32u + lid.y * 2u];
      let a1 = a_s[kk * 32u + lid.y * 2u + 1u];
      let b0 = b_s[kk * 32u + lid.x * 2u];
      let b1 = b_s[kk * 32u + lid.x * 2u + 1u];
      for (var r = 0u; r < 4u; r++) {
        acc[r][0] += a0[r] * b0;
        acc[r][1] += a0[r] * b1;
        acc[r + 4u][0] += a1[r] * b0;
        acc[r + 4u][1] += a1[r] * b1;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 8u; r++) {
    let base = (m0 + lid.y * 8u + r) * n4 + n0 / 4u + lid.x * 2u;
    c[base] = acc[r][0];
    c[base + 1u] = acc[r][1];
  }
}`;

const STORAGE = 0x80;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const MAP_READ = 0x1;
const UNIFORM = 0x40;
const QUERY_RESOLVE = 0x200;

function random(n, seed) {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2147483648 - 1;
  }
  return x;
}

async function readBack(device, src, bytes) {
  const dst = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, dst, 0, bytes);
  device.queue.submit([enc.finish()]);
  await dst.mapAsync(1);
  const data = new Float32Array(dst.getMappedRange().slice(0));
  dst.destroy();
  return data;
}

/** Runs an n×n×n matmul `reps` times; checks it against a float64 CPU product when n ≤ 256. */
export async function runMatmul(device, n, reps) {
  if (n % 128 !== 0) throw new Error(`matmul: size ${n} is not a multiple of 128`);
  const module = device.createShaderModule({ code: shader });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const A = random(n * n, 1);
  const Bm = random(n * n, 2);
  const buf = (data) => {
    const b = device.createBuffer({ size: data.byteLength, usage: STORAGE | COPY_DST | COPY_SRC });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const a = buf(A);
  const b = buf(Bm);
  const c = buf(new Float32Array(n * n));
  const u = device.createBuffer({ size: 16, usage: UNIFORM | COPY_DST });
  device.queue.writeBuffer(u, 0, new Uint32Array([n, n, n, 0]));
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [a, b, c, u].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const timestamps = device.features.has('timestamp-query');
  const querySet = timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const resolve = timestamps ? device.createBuffer({ size: 16, usage: QUERY_RESOLVE | COPY_SRC }) : undefined;
  const stamps = timestamps ? device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST }) : undefined;
  let ms = Infinity;
  for (let i = 0; i < reps + 1; i++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(
      timestamps
        ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } }
        : {},
    );
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(n / 128, n / 128);
    pass.end();
    if (timestamps) {
      enc.resolveQuerySet(querySet, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, stamps, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    let t = performance.now() - t0;
    if (timestamps) {
      await stamps.mapAsync(1);
      const [begin, end] = new BigUint64Array(stamps.getMappedRange().slice(0));
      stamps.unmap();
      if (end > begin) t = Number(end - begin) / 1e6;
    }
    if (i > 0) ms = Math.min(ms, t); // the first run warms up
  }
  let relError;
  if (n <= 256) {
    const C = await readBack(device, c, n * n * 4);
    let maxErr = 0;
    let maxRef = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += A[i * n + k] * Bm[k * n + j];
        maxErr = Math.max(maxErr, Math.abs(s - C[i * n + j]));
        maxRef = Math.max(maxRef, Math.abs(s));
      }
    }
    relError = maxErr / maxRef;
    if (!(relError < 1e-4)) throw new Error(`matmul: rel. error ${relError} vs the CPU product`);
  }
  for (const x of [a, b, c, u, resolve, stamps]) x?.destroy();
  querySet?.destroy();
  return { ms, tflops: (2 * n ** 3) / ms / 1e9, relError };
}
