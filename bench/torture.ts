/**
 * The tree's torture harness: stage, promote, retire --apply and verify
 * --repair are killed with SIGKILL at instants drawn uniformly inside each
 * command's run time, measured first on this machine, and after every kill
 * the tree is checked with this file's own reads (never sifkit's): no file
 * under a final name that differs from its source, no dangling link; then
 * the next command (verify --repair) must not be wedged, and the tree must
 * verify clean. At the end, no image ever staged may be lost. Seeded: the
 * same seed draws the same commands and the same instants.
 *
 * `npm run bench` runs the full count (SIFKIT_BENCH_ONLY=torture for it
 * alone); test/integration/torture.test.ts runs a seeded slice.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeSif } from '../test/support/sifs';
import { RefusedError } from '../src/errors';
import { parsePolicy } from '../src/tree/policy';
import { promote } from '../src/tree/promote';
import { retire } from '../src/tree/retire';
import { openTree, type Tree } from '../src/tree/root';
import { stage } from '../src/tree/stage';
import { verifyTree } from '../src/tree/verify';
import { TEMP_MARKER } from '../src/util/files';
import type { Figure } from './table';

export type OpKind = 'stage' | 'promote' | 'retire' | 'repair';
const KINDS: OpKind[] = ['stage', 'promote', 'retire', 'repair'];

export interface TortureOptions {
  seed: number;
  /** Kills that landed (the command was still running), at least. */
  kills: number;
  /** The built CLI (dist/src/cli/main.js). */
  cli: string;
  /** Extra bytes per SIF, so a command has real work to be killed in. */
  padBytes?: number;
  log?: (line: string) => void;
}

export interface TortureResult {
  seed: number;
  kills: number;
  killsBy: Record<OpKind, number>;
  /** Runs that ended before their drawn instant (no kill; drawn again). */
  finishedFirst: number;
  torn: number;
  dangling: number;
  wedged: number;
  unclean: number;
  lost: number;
  /** What went wrong, one line each (empty on a good run). */
  failures: string[];
  measuredMs: Record<OpKind, number>;
  totalMs: number;
}

/** mulberry32: a small seeded generator, enough to draw commands and instants. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STEMS = ['lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6', 'lumi-mpi4py-rocm-6.2.4-python-3.12-mpi4py-4.0.1'];
const IMAGES_PER_STEM = 3;
const DIRS = [
  'tested-containers',
  'easybuild-sif-images',
  '.sifkit/quarantine/tested-containers',
  '.sifkit/quarantine/easybuild-sif-images',
];

interface Source {
  file: string;
  name: string;
  sha256: string;
  size: number;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

/** Runs the CLI; with `killAfterMs`, SIGKILLs it then unless it has ended. */
function runCli(
  cli: string,
  args: string[],
  killAfterMs?: number,
  env: NodeJS.ProcessEnv = {},
): Promise<Run & { killed: boolean }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [cli, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, CI: '1', ...env },
    });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            if (child.exitCode === null && child.signalCode === null) killed = child.kill('SIGKILL');
          }, killAfterMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, killed, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
  });
}

async function policyFile(dir: string): Promise<string> {
  const f = path.join(dir, 'policy.yaml');
  // Keep little, so that retire always has something to move once a few images are in.
  await fs.writeFile(
    f,
    `directories:
  tested-containers: { keep_newest: 1, series: [stem], keep_younger_than_days: 0 }
  easybuild-sif-images: { keep_newest: 1, series: [stem], keep_younger_than_days: 0 }
quarantine_days: 30
`,
  );
  return f;
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** The harness's own look at the tree: torn files, dangling links, what images are where. */
async function inspect(
  root: string,
  sources: Map<string, Source>,
  cache: Map<string, string>,
): Promise<{ torn: string[]; dangling: string[]; present: Set<string> }> {
  const torn: string[] = [];
  const dangling: string[] = [];
  const present = new Set<string>();
  for (const d of DIRS) {
    for (const name of await fs.readdir(path.join(root, d)).catch(() => [] as string[])) {
      if (name.includes(TEMP_MARKER) || !name.endsWith('.sif')) continue;
      const abs = path.join(root, d, name);
      const st = await fs.lstat(abs);
      const src = sources.get(name);
      if (!st.isFile() || !src) {
        torn.push(`${d}/${name}: ${src ? 'not a regular file' : 'no such source'}`);
        continue;
      }
      // Hashed once per inode state: a rename or a new link moves ctime, and is read again.
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      const sha = cache.get(key) ?? (st.size === src.size ? await sha256Of(abs) : 'size differs');
      cache.set(key, sha);
      if (st.size !== src.size || sha !== src.sha256)
        torn.push(
          `${d}/${name}: ${st.size} bytes, sha256 ${sha.slice(0, 12)}, source ${src.size} bytes ${src.sha256.slice(0, 12)}`,
        );
      else present.add(name);
    }
  }
  for (const name of await fs.readdir(path.join(root, '.sifkit', 'ledger')).catch(() => [] as string[])) {
    if (name.includes(TEMP_MARKER)) continue;
    try {
      JSON.parse(await fs.readFile(path.join(root, '.sifkit', 'ledger', name), 'utf8'));
    } catch {
      torn.push(`.sifkit/ledger/${name}: not whole JSON`);
    }
  }
  for (const name of await fs.readdir(path.join(root, 'sif-images')).catch(() => [] as string[])) {
    if (name.includes(TEMP_MARKER)) continue;
    const abs = path.join(root, 'sif-images', name);
    if (!(await fs.lstat(abs)).isSymbolicLink()) continue;
    if (
      !(await fs.stat(abs).then(
        () => true,
        () => false,
      ))
    )
      dangling.push(`sif-images/${name} -> ${await fs.readlink(abs)}`);
  }
  return { torn, dangling, present };
}

async function stagedNames(root: string): Promise<string[]> {
  return (await fs.readdir(path.join(root, 'tested-containers')).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.sif') && !n.includes(TEMP_MARKER))
    .sort();
}

export async function runTorture(opts: TortureOptions): Promise<TortureResult> {
  const t0 = Date.now();
  const rnd = seeded(opts.seed);
  const log = opts.log ?? (() => undefined);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-torture-'));
  const result: TortureResult = {
    seed: opts.seed,
    kills: 0,
    killsBy: { stage: 0, promote: 0, retire: 0, repair: 0 },
    finishedFirst: 0,
    torn: 0,
    dangling: 0,
    wedged: 0,
    unclean: 0,
    lost: 0,
    failures: [],
    measuredMs: { stage: 0, promote: 0, retire: 0, repair: 0 },
    totalMs: 0,
  };
  try {
    const sources = new Map<string, Source>();
    const list: Source[] = [];
    for (const [s, stem] of STEMS.entries()) {
      for (let i = 0; i < IMAGES_PER_STEM; i++) {
        const file = path.join(work, `src-${s}-${i}.sif`);
        const dockerhash = `${s}${i}`.padEnd(12, 'a');
        const { name } = await makeSif(file, {
          stem,
          dockerhash,
          created: `2026-0${i + 1}-01T00:00:00Z`,
          padBytes: opts.padBytes ?? 8 << 20,
        });
        const src = { file, name, sha256: await sha256Of(file), size: (await fs.stat(file)).size };
        sources.set(name, src);
        list.push(src);
      }
    }
    const policyPath = await policyFile(work);
    const policy = parsePolicy(await fs.readFile(policyPath, 'utf8'), policyPath);
    const argsFor = (kind: OpKind, root: string, src: Source): string[] => {
      if (kind === 'stage') return ['stage', src.file, '--untested', '--root', root];
      if (kind === 'promote') return ['promote', src.name, '--to', 'all', '--root', root];
      if (kind === 'retire') return ['retire', '--apply', '--policy', policyPath, '--root', root];
      return ['verify', '--repair', '--root', root];
    };
    // Brings the tree on by one step, in this process (no start-up cost): a killed command's work is done after all.
    const complete = async (tree: Tree, kind: OpKind, src: Source): Promise<void> => {
      if (kind === 'stage') await stage(tree, src.file);
      else if (kind === 'promote')
        await promote(tree, src.name, { to: 'all' }).catch((e) => {
          if (!(e instanceof RefusedError && e.code === 'not-forward')) throw e;
        });
      else if (kind === 'retire') await retire(tree, { policy, apply: true });
    };

    // Measure each command's run time on a tree like the one tortured (one unkilled run each).
    const scratch = path.join(work, 'measure');
    await fs.mkdir(scratch);
    const mTree = await openTree(scratch, true);
    for (const src of list.slice(0, 2)) await complete(mTree, 'stage', src);
    for (const kind of KINDS) {
      const r = await runCli(opts.cli, argsFor(kind, scratch, list[2]));
      if (r.code !== 0) throw new Error(`measuring ${kind} failed (exit ${r.code}): ${r.stderr.trim()}`);
      result.measuredMs[kind] = r.ms;
    }
    log(`measured (ms): ${KINDS.map((k) => `${k} ${result.measuredMs[k].toFixed(0)}`).join(', ')}`);

    const root = path.join(work, 'root');
    await fs.mkdir(root);
    const tree = await openTree(root, true);
    const cache = new Map<string, string>();
    const everStaged = new Set<string>();
    // Kinds in shuffled rounds of four, so every command is killed about as often.
    let round: OpKind[] = [];
    while (result.kills < opts.kills) {
      if (!round.length) round = [...KINDS].sort(() => rnd() - 0.5);
      let kind = round[0];
      const staged = await stagedNames(root);
      let src = list[Math.floor(rnd() * list.length)];
      if (kind === 'promote') {
        if (!staged.length) kind = 'stage';
        else src = sources.get(staged[Math.floor(rnd() * staged.length)]) as Source;
      }
      const at = rnd() * result.measuredMs[kind];
      const r = await runCli(opts.cli, argsFor(kind, root, src), at);
      if (!r.killed) {
        // Ended before the drawn instant: nothing was killed; draw again.
        result.finishedFirst++;
        continue;
      }
      round.shift();
      result.kills++;
      result.killsBy[kind]++;
      const where = `seed ${opts.seed} kill ${result.kills} (${kind} at ${at.toFixed(0)} ms)`;
      const seen = await inspect(root, sources, cache);
      for (const n of seen.present) everStaged.add(n);
      result.torn += seen.torn.length;
      result.dangling += seen.dangling.length;
      for (const t of seen.torn) result.failures.push(`${where}: torn ${t}`);
      for (const d of seen.dangling) result.failures.push(`${where}: dangling ${d}`);
      // The next command must get the lock at once (the killed holder is dead on this host).
      const next = await runCli(opts.cli, ['verify', '--repair', '--root', root], undefined, {
        SIFKIT_LOCK_WAIT_MS: '30000',
      });
      if (next.code === 3 && /locked/.test(next.stderr)) {
        result.wedged++;
        result.failures.push(`${where}: verify --repair wedged: ${next.stderr.trim()}`);
        break;
      }
      if (next.code !== 0) {
        result.unclean++;
        result.failures.push(`${where}: verify --repair exit ${next.code}: ${next.stderr.trim()}`);
      }
      const problems = await verifyTree(tree);
      if (problems.length) {
        result.unclean++;
        result.failures.push(`${where}: verify after repair: ${problems.map((p) => `${p.kind} ${p.path}`).join(', ')}`);
      }
      try {
        await complete(tree, kind, src);
      } catch (e) {
        result.wedged++;
        result.failures.push(`${where}: the command again failed: ${(e as Error).message}`);
      }
      for (const n of (await inspect(root, sources, cache)).present) everStaged.add(n);
      if (result.kills % 25 === 0) log(`${result.kills} kills, ${result.failures.length} failures`);
    }
    const end = await inspect(root, sources, cache);
    for (const n of everStaged) {
      if (end.present.has(n)) continue;
      result.lost++;
      result.failures.push(`seed ${opts.seed}: lost ${n}`);
    }
  } finally {
    result.totalMs = Date.now() - t0;
    await fs.rm(work, { recursive: true, force: true });
  }
  return result;
}

/** The full run for `npm run bench`: SIFKIT_BENCH_TORTURE_KILLS (200) kills, SIFKIT_BENCH_SEED. */
export async function tortureBench(): Promise<Figure[]> {
  const seed = Number(process.env.SIFKIT_BENCH_SEED ?? '20261201');
  const kills = Number(process.env.SIFKIT_BENCH_TORTURE_KILLS ?? '200');
  const r = await runTorture({
    seed,
    kills,
    cli: path.join(__dirname, '..', 'src', 'cli', 'main.js'),
    log: (l) => console.error(`torture: ${l}`),
  });
  console.log(
    `torture (seed ${r.seed}): ${r.kills} kills (${KINDS.map((k) => `${k} ${r.killsBy[k]}`).join(', ')}; ${r.finishedFirst} runs ended before their instant), torn ${r.torn}, dangling ${r.dangling}, wedged ${r.wedged}, unclean ${r.unclean}, lost ${r.lost}, ${(r.totalMs / 1000).toFixed(1)} s`,
  );
  for (const f of r.failures.slice(0, 20)) console.log(`  ${f}`);
  const bad = r.torn + r.dangling + r.wedged + r.unclean + r.lost;
  return [
    {
      figure: `torture: kills landed (seed ${r.seed})`,
      sifkit: r.kills,
      unit: 'kills',
      target: `>= ${kills}`,
      met: r.kills >= kills,
    },
    {
      figure: 'torture: torn + dangling + wedged + unclean + lost',
      sifkit: bad,
      unit: 'cases',
      target: '0',
      met: bad === 0,
    },
    { figure: 'torture: whole run (s)', sifkit: r.totalMs / 1000, unit: 's', target: '-', met: true },
  ];
}
