// The REPL session without a terminal: input splitting, statements added to the current kernel,
// every command's output and errors (which never throw), completion and the history file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dispatch } from '../../src/cli/repl/commands.js';
import { complete } from '../../src/cli/repl/complete.js';
import { HISTORY_SIZE, HistoryFile, historyPath, loadHistory } from '../../src/cli/repl/history.js';
import { appendStatement, needsMore } from '../../src/cli/repl/input.js';
import { Session } from '../../src/cli/repl/session.js';

const dir = mkdtempSync(join(tmpdir(), 'attnc-session-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function session(): { s: Session; out: () => string; type: (...lines: string[]) => Promise<string> } {
  let text = '';
  const s = new Session({ write: (t) => void (text += t), columns: 100, rows: 40, color: false }, dispatch);
  const type = async (...lines: string[]): Promise<string> => {
    const start = text.length;
    for (const l of lines) expect(await s.input(l)).toBe(false);
    return text.slice(start);
  };
  return { s, out: () => text, type };
}

describe('input', () => {
  it('keeps reading while braces or parens are open, or an attention header lacks its {', () => {
    expect(needsMore('attention a() {', 'attention a() {')).toBe(true);
    expect(needsMore('attention a() {\n  mask causal\n}', '}')).toBe(false);
    expect(needsMore('attention a() { // }', 'attention a() { // }')).toBe(true);
    expect(needsMore('attention a(\n  w: int = 3', '  w: int = 3')).toBe(true);
    expect(needsMore('attention a()', 'attention a()')).toBe(true);
    expect(needsMore('attention a()\n', '')).toBe(false); // an empty line gives up: diagnostics follow
    expect(needsMore('}', '}')).toBe(false);
    expect(needsMore('mask causal', 'mask causal')).toBe(false);
  });

  it('appends a statement as the last line of the body', () => {
    expect(appendStatement('attention a() {\n  mask causal\n}', 'mask k > 2')).toBe(
      'attention a() {\n  mask causal\n  mask k > 2\n}',
    );
    expect(appendStatement('attention a() { }', 'mask k > 2')).toBe('attention a() {\n  mask k > 2\n}');
  });
});

describe('Session', () => {
  it('defines, redefines, and adds bare statements to the current kernel', async () => {
    const { s, type } = session();
    expect(await type('attention a() {', '  mask causal', '}')).toBe('defined a (current)\n');
    expect(await type('attention b() { }')).toBe('defined b (current)\n');
    expect(await type('mask k < 2')).toBe('redefined b (current)\n');
    expect(s.current?.source).toBe('attention b() {\n  mask k < 2\n}');
    expect(await type('mask k <')).toMatch(/^error: .*\n --> <repl>:3:11/);
    expect(s.current?.source).toBe('attention b() {\n  mask k < 2\n}');
    expect(await type(':use a', ':list')).toBe('current: a\n  b\n* a\n');
  });

  it('a command ends an unfinished block instead of being read into it', async () => {
    // `mask doc[q` left a `[` open: every later line, :quit included, went into the block.
    const { s, type } = session();
    await type('attention a() { }');
    expect(await type('mask k < [2', '  && q > 1')).toBe('');
    expect(await type(':list')).toBe('dropped the unfinished input above (2 lines)\n* a\n');
    expect(s.prompt()).toBe('attnc> ');
    expect(await s.input('attention b(')).toBe(false);
    expect(await s.input(':quit')).toBe(true);
  });

  it(':set refuses a size :run would refuse, at :set (it waited for :mask or :run)', async () => {
    const { type } = session();
    await type('attention a() { mask causal }');
    const sizes = '[1, 2147483647] (sizes are int32)';
    expect(await type(':set nq=2147483648')).toBe(
      `error: nq expects an integer in ${sizes}, got \`2147483648\`\n`,
    );
    expect(await type(':set kv-heads=9999999999')).toBe(
      `error: kv-heads expects an integer in ${sizes}, got \`9999999999\`\n`,
    );
    expect(await type(':set repeat=101')).toBe('error: repeat expects an integer in [1, 100], got `101`\n');
    expect(await type(':set nq=0x10')).toBe(`error: nq expects an integer in ${sizes}, got \`0x10\`\n`);
    expect(await type(':set head=-1')).toBe(
      'error: head expects an integer in [0, 2147483647] (sizes are int32), got `-1`\n',
    );
    expect(await type(':set nq=2147483647 repeat=100')).toBe('nq=2147483647 repeat=100\n');
  });

  it(':set dim names dim and the head dims the current kernel fits (it waited for :run)', async () => {
    const { type } = session();
    await type('attention a() { mask causal }');
    // 512 × 32 bytes of K/V tile rows outgrow the 16 KiB of portable workgroup memory.
    expect(await type(':set dim=100000')).toBe(
      'error: dim expects an integer in [1, 511] for `a` (no wgsl schedule fits a larger head dim), got `100000`\n',
    );
    expect(await type(':set dim=0')).toBe(
      'error: dim expects an integer in [1, 2147483647] (sizes are int32), got `0`\n',
    );
    expect(await type(':set')).toContain(' dim=64 '); // refused: unchanged
    expect(await type(':set dim=511')).toBe('dim=511\n');
    // Without a kernel to check it against, a definition that does not fit blames the setting.
    const bare = session();
    expect(await bare.type(':set dim=4096')).toBe('dim=4096\n');
    const out = await bare.type('attention b() { mask causal }');
    expect(out).toMatch(/^error: dim 4096: b: no wgsl schedule fits: head dim 4096\/4096 needs \d+ bytes/);
    expect(out).toContain(': :set a smaller dim\n');
    expect(await bare.type(':list')).not.toContain('b');
  });

  it(':run flags: a negative number, a missing value and an unknown flag are one line each', async () => {
    const { type } = session();
    await type('attention a() { mask causal }');
    expect(await type(':run --nq -5')).toBe('error: --nq expects a positive integer, got `-5`\n');
    expect(await type(':run --nq --nk 4')).toBe(
      'error: --nq expects a value, got the flag `--nk` (write --nq=VALUE for a value that starts with -)\n',
    );
    expect(await type(':run --bogus')).toBe('error: unknown option `--bogus` (see :help)\n');
    expect(await type(':run --nqq 4')).toBe(
      'error: unknown option `--nqq` (did you mean `--nq`? see :help)\n',
    );
    expect(await type(':run --nq 4 --nq=8')).toBe('error: --nq is given twice (`4` and `8`)\n');
    const seeds = 'expects an integer in [0, 4294967295], got `4294967297`';
    expect(await type(':run --seed 4294967297')).toBe(`error: --seed ${seeds}\n`);
    expect(await type(':set seed=4294967297')).toBe(`error: seed ${seeds}\n`);
  });

  it('prints :stats with the bytes formula', async () => {
    const { type } = session();
    await type('attention c() { mask causal }');
    const out = await type(':stats');
    expect(out).toContain('c: nq=1024 nk=1024 B=1 H=1 D=64 Dv=64 f32, WGSL tiles 64×24');
    expect(out).toContain('density 50.0%');
    expect(out).toContain('tiles 64×24: 315 full, 53 partial, 320 empty of 688 (head 0)');
    expect(out).toContain(
      'K/V = non-empty tiles × blockK × (D + Dv) × bytes/elem = 368 × 24 × 128 × 4 = 4.3 MiB',
    );
    expect(out).toContain(
      'Q/O = B·H·Nq × (D + Dv) × bytes/elem + lse B·H·Nq × 4 = 1024 × 128 × 4 + 1024 × 4',
    );
    await type(':set heads=2 dtype=f16');
    expect(await type(':stats')).toContain('= 736 × 24 × 128 × 2 = 4.3 MiB');
  });

  it(':mask and :stats of a routing kernel say the mask is an upper bound', async () => {
    // A routed kernel's tiles and bytes are the static mask's: without the note, :stats of
    // `route … topk(2)` read as a dense kernel (density 100%, 0% saved).
    const { type } = session();
    await type('attention r() { route blocks(64) topk(2) by mean(q) . mean(k) }');
    const note =
      'note: r attends only the blocks its selection picks from q and k; the picture is the static mask';
    expect(await type(':mask 8 8')).toContain(note);
    expect(await type(':stats')).toContain(note);
    await type('attention c() { mask causal }');
    expect(await type(':stats')).not.toContain('note:');
  });

  it(':emit, :ir, :set, :unset, :show and their errors', async () => {
    const { type } = session();
    expect(await type(':mask')).toBe('error: no attention defined yet: type one, or :load FILE\n');
    await type('attention w(window: int = 4, on: bool = true) { mask on && q - k < window }');
    expect(await type(':emit wgsl')).toContain('@compute');
    expect(await type(':emit cuda')).toContain('extern "C"');
    expect(await type(':emit ptx')).toBe('error: :emit expects wgsl or cuda\n');
    expect(await type(':ir simplify')).toMatch(/^; w after simplify\n/);
    expect(await type(':ir')).toMatch(/^; w after legalize-wgsl\n/);
    expect(await type(':ir nope')).toMatch(/^error: unknown pass `nope`/);
    expect(await type(':set window=2.5')).toBe(
      'error: param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 2.5\n',
    );
    expect(await type(':set on=1')).toMatch(/is a bool: use true or false/);
    expect(await type(':set dtype=f64')).toMatch(/dtype expects f32, f16 or bf16/);
    expect(await type(':set window = 9 on=false nq=64')).toBe('window=9 on=false nq=64\n');
    expect(await type(':set')).toContain('params of w: window=9 on=false');
    await type(':unset window nq');
    expect(await type(':set')).toMatch(/shape: nq=1024 .*\nparams of w: window=4 \(default\) on=false/);
    await type(':unset on');
    // It showed the stored word, `on=1 (default)`, which :set refuses ("is a bool: use true or false").
    expect(await type(':set')).toMatch(/params of w: window=4 \(default\) on=true \(default\)/);
    expect(await type(':show')).toBe(
      'attention w(window: int = 4, on: bool = true) { mask on && q - k < window }\n',
    );
    expect(await type(':frobnicate')).toBe('error: unknown command `:frobnicate` (:help lists them)\n');
    expect(await type(':help')).toContain(':mask [nq [nk]]');
  });

  it(':unset refuses a name it does not know, and no name, as :set does', async () => {
    // Both did nothing and said nothing: `:unset widnow` looked like it had worked.
    const { type } = session();
    await type('attention w(window: int = 4) { mask q - k < window }', ':set window=9 nq=64');
    expect(await type(':unset widnow nq')).toBe(
      'error: no setting or param `widnow` (settings: nq, nk, heads, kv-heads, kv_heads, batch, dim, dtype, head, seed, repeat; params: window)\n',
    );
    expect(await type(':set')).toMatch(/^shape: nq=64 .*\nparams of w: window=9\n$/);
    expect(await type(':unset')).toBe('error: :unset expects NAME …: a setting or a param\n');
    expect(await type(':unset window nq', ':set')).toMatch(
      /^shape: nq=1024 .*\nparams of w: window=4 \(default\)\n$/,
    );
  });

  it(':emit wgsl at dtype=bf16 says what to :set, not a CLI flag', async () => {
    // It gave the compiler's "use --dtype f16 or f32", a flag the REPL has no use for.
    const { type } = session();
    await type('attention a() { mask causal }', ':set dtype=bf16');
    expect(await type(':emit wgsl')).toBe(
      'error: WebGPU has no bf16 storage: :set dtype=f32 or f16 (or :emit cuda)\n',
    );
    expect(await type(':emit cuda')).toContain('extern "C"');
  });

  it(':emit prints compile warnings after the code (kivi binds 11 storage buffers, WebGPU allows 8)', async () => {
    const { type } = session();
    await type(`:load stdlib/kivi.attn`);
    const out = await type(':emit wgsl');
    expect(out).toContain('@compute');
    expect(out.slice(out.lastIndexOf('@compute'))).toMatch(/warning: kernel `kivi` binds 11 storage buffers/);
    expect(await type(':emit cuda')).not.toContain('warning');
  });

  it(':use and :show name what is missing as errors', async () => {
    // `:use` alone said "no attention `` (defined: a)"; `:show nope` printed its complaint as
    // if it were a definition, without `error:`.
    const { type } = session();
    await type('attention a() { mask causal }');
    expect(await type(':use')).toBe('error: :use expects a NAME (defined: a)\n');
    expect(await type(':show nope')).toBe('error: no attention `nope` (defined: a)\n');
    expect(await type(':show a')).toBe('attention a() { mask causal }\n');
  });

  it(':set takes no name an object inherits (toString, constructor) for a setting', async () => {
    // `settingNames[name]` found Object.prototype's members: `:set toString=3` answered
    // `toString=3` and stored the value under a function's source text.
    const { type } = session();
    await type('attention w(window: int = 4) { mask q - k < window }');
    for (const name of ['toString', 'constructor', '__proto__'])
      expect(await type(`:set ${name}=3`)).toMatch(new RegExp(`^error: no setting or param \`${name}\``));
    expect(await type(':unset hasOwnProperty')).toMatch(/^error: no setting or param `hasOwnProperty`/);
  });

  it(':set of a tensor says it is one, drawn at random by :run, as attnc run --param does', async () => {
    // It said "no setting or param `doc` (… params: none)" for a name the kernel declares.
    const { type } = session();
    await type('attention d(doc: i32[kv]) { mask doc[q] == doc[k] }');
    expect(await type(':set doc=1')).toBe(
      'error: `doc` is a tensor of d, drawn at random by :run (:set sets scalar params)\n',
    );
  });

  it(':mask and :stats take the heads :run takes: head below heads, heads a multiple of kv-heads', async () => {
    // :mask drew heads=3 over kv-heads=2 (which :run refuses), and head=5 of heads=1 silently
    // made :stats count B·H = 6 heads.
    const { type } = session();
    await type('attention w(window: int = 4) { mask q - k < window }');
    await type(':set heads=3 kv-heads=2');
    for (const cmd of [':mask 4', ':stats'])
      expect(await type(cmd)).toBe('error: heads (3) must be a multiple of kv-heads (2)\n');
    await type(':unset heads kv-heads', ':set head=5');
    for (const cmd of [':mask 4', ':stats'])
      expect(await type(cmd)).toBe(
        'error: head (5) must be below heads (1): :set heads=6, or a smaller head\n',
      );
    await type(':set heads=6');
    expect(await type(':stats')).toMatch(/^w: nq=1024 nk=1024 B=1 H=6 /);
    expect(await type(':mask 4')).toMatch(/^w {2}nq=4 nk=4 {2}b=0 h=5/);
  });

  it('reports a param without a value instead of throwing', async () => {
    const { type } = session();
    await type('attention w(window: int) { mask q - k < window }');
    expect(await type(':mask 8 8')).toBe(
      'error: param `window` has no default: give it a value (window=VALUE)\n',
    );
    await type(':set window=3');
    expect(await type(':mask 8 8')).toContain('density');
  });

  it(':save and :load keep every definition, the current one last', async () => {
    const { s, type } = session();
    const file = join(dir, 'two.attn');
    await type('attention a() { mask causal }', 'attention b() { }', ':use a', `:save ${file}`);
    expect(readFileSync(file, 'utf8')).toBe('attention b() { }\n\nattention a() { mask causal }\n');
    const other = session();
    expect(await other.type(`:load ${file}`)).toBe(`loaded b, a from ${file}; current: a\n`);
    expect([...other.s.defs.keys()]).toEqual([...s.defs.keys()]);
    expect(await other.type(':load /nonexistent.attn')).toBe(
      'error: cannot read /nonexistent.attn: no such file (ENOENT)\n',
    );
  });

  it(':save and :load name an odd path escaped (they printed it raw)', async () => {
    const { type } = session();
    const file = join(dir, 'e\x1b[2J\u202e.attn');
    const shown = join(dir, 'e\\x1B[2J\\u202E.attn');
    expect(await type('attention a() { mask causal }', `:save ${file}`)).toContain(`saved a to ${shown}\n`);
    expect(await session().type(`:load ${file}`)).toBe(`loaded a from ${shown}; current: a\n`);
  });
});

describe('completion', () => {
  it('completes commands, their arguments, params and builtins', async () => {
    const { s, type } = session();
    await type('attention w(window: int = 4) { let far = q - k > window\n mask !far }');
    expect(complete(s, ':ma')).toEqual([[':mask'], ':ma']);
    expect(complete(s, ':ir s')).toEqual([['schedule', 'simplify', 'stages'], 's']);
    expect(complete(s, ':set wi')).toEqual([['window='], 'wi']);
    expect(complete(s, ':emit ')).toEqual([['cuda', 'wgsl'], '']);
    expect(complete(s, 'mask cau')).toEqual([['causal'], 'cau']);
    expect(complete(s, 'mask q - k < win')).toEqual([['window'], 'win']);
    expect(complete(s, 'mask fa')[0]).toEqual(['false', 'far']);
    expect(complete(s, 'mask ex')[0]).toEqual(['exp', 'exp2']);
    expect(complete(s, 'atten')[0]).toEqual(['attention']);
    expect(complete(s, ':load stdlib/sli')).toEqual([['stdlib/sliding_window.attn'], 'stdlib/sli']);
    expect(complete(s, ':run --kv')).toEqual([['--kv-heads'], '--kv']);
  });
});

describe('history', () => {
  it('lives under $ATTNC_HOME, appends lines without repeats, and keeps the last HISTORY_SIZE', () => {
    expect(historyPath({ ATTNC_HOME: '/x/y' })).toBe('/x/y/history');
    expect(historyPath({ HOME: '/h' }).endsWith('/.attnc/history')).toBe(true);
    const path = join(dir, 'sub', 'history');
    const h = new HistoryFile(path, () => undefined);
    for (const l of [':mask', ':mask', '', 'attention a() {', ':quit']) h.append(l);
    expect(readFileSync(path, 'utf8')).toBe(':mask\nattention a() {\n:quit\n');
    expect(loadHistory(path)).toEqual([':quit', 'attention a() {', ':mask']);
    writeFileSync(path, Array.from({ length: HISTORY_SIZE + 5 }, (_, i) => `l${i}`).join('\n') + '\n');
    const lines = loadHistory(path);
    expect(lines.length).toBe(HISTORY_SIZE);
    expect(lines[0]).toBe(`l${HISTORY_SIZE + 4}`);
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean).length).toBe(HISTORY_SIZE);
  });
});
