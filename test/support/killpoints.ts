/**
 * Kill points for the tree's mutating commands: each command (a Scenario:
 * killpoint-scenarios.ts, and the engine's in killpoints-release.test.ts)
 * runs on a small real tree (prepared in this process through the same
 * library calls the commands make) with test/support/kill-hook.js loaded,
 * which stops it just before its N-th file-system write under the tree,
 * with SIGKILL or SIGINT. A point is a step of the command, never an
 * instant. After each stop the harness asks what a user would:
 *   - do `status` and `verify` run, and agree (an image `status` calls
 *     changed is one `verify` names; a ledger record with no file, a temp
 *     file, a stale lock are named by `verify`)?
 *   - does a link in sif-images/ point at a missing SIF (never allowed)?
 *   - after Ctrl-C: exit 130, one error line, no temp file, no lock left behind?
 *   - does running the same command again finish it (exit 0), and does the
 *     tree then equal, file for file (times aside), the tree an
 *     uninterrupted run made, with `verify` clean and nothing `changed`?
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { scanEasyconfigs } from '../../src/tree/retire';
import { initTree, type Tree } from '../../src/tree/root';
import { treeStatus, type TreeStatus } from '../../src/tree/status';
import { lockHolder, type LockState } from '../../src/tree/lock';
import { verifyTree, type Problem } from '../../src/tree/verify';
import { TEMP_MARKER } from '../../src/util/files';
import { seeded } from '../../bench/torture';
import { CLI } from './cli';

const HOOK = path.join(__dirname, 'kill-hook.js');
export const STEM = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
export const hash = (i: number) => `00000000000${i}`;
export const sifName = (i: number) => `${STEM}-dockerhash-${hash(i)}.sif`;

export interface Scenario<I> {
  name: string;
  /**
   * The EasyConfig checkout the command reads (what an active EasyConfig
   * names must stay in easybuild-sif-images), given the case's tree root.
   */
  easyconfigs?: (root: string, inputs: I) => string;
  /** Where the writes that are kill points go (default: the tree): a command that also writes beside it. */
  under?: (root: string) => string;
  /**
   * The command adds a record each time it runs (a test run): the rerun
   * after a stop may hold two alike where the uninterrupted run holds one.
   */
  appends?: boolean;
  /** The tree before the command, made in this process. */
  prepare(tree: Tree, inputs: I): Promise<void>;
  args(root: string, inputs: I): string[];
  /** What else must hold after the rerun (the scenario's own invariants). */
  after?(tree: Tree, inputs: I): Promise<string[]>;
}

export type KillSignal = 'SIGKILL' | 'SIGINT';

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, hook = false): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(hook ? ['--require', HOOK] : []), CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '1', SIFKIT_LOCK_WAIT_MS: '20000', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The command under the hook: with `at`, stopped by `signal` just before its at-th write; the writes it made, in order. */
export async function runHooked(
  args: string[],
  root: string,
  logFile: string,
  at?: number,
  signal: KillSignal = 'SIGKILL',
  under = root,
): Promise<Run & { writes: string[] }> {
  await fs.rm(logFile, { force: true });
  const r = await run(
    args,
    {
      SIFKIT_KILLHOOK_UNDER: under,
      SIFKIT_KILLHOOK_LOG: logFile,
      ...(at ? { SIFKIT_KILLHOOK_AT: String(at), SIFKIT_KILLHOOK_SIGNAL: signal } : {}),
    },
    true,
  );
  const writes = (await fs.readFile(logFile, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) =>
      l
        .replace(root, 'ROOT')
        .replace(under, 'CASE')
        .replace(/\.sifkit-tmp-[^/ ]+/g, '.sifkit-tmp-…'),
    );
  return { ...r, writes };
}

export async function prepareCase<I>(dir: string, sc: Scenario<I>, inputs: I): Promise<Tree> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const { tree } = await initTree(path.join(dir, 'root'));
  await sc.prepare(tree, inputs);
  return tree;
}

/** Times and durations: a kill and a rerun may not keep them (a test run's are its own). */
const TIME_KEYS = new Set(['stagedAt', 'retiredAt', 'since', 'started', 'finished', 'durationMs']);

/**
 * A JSON file with its times and stat keys left out, but every key kept.
 * `alike`: entries of a list that are alike once their times are left out
 * count once (the records a command adds each time it runs).
 */
function timeless(v: unknown, alike = false): unknown {
  if (Array.isArray(v)) {
    const out = v.map((x) => timeless(x, alike));
    return alike ? [...new Map(out.map((x) => [JSON.stringify(x), x])).values()] : out;
  }
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        // Keys in one order: a record read back and written again may hold them in its schema's.
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .filter(([k]) => !TIME_KEYS.has(k))
        .map(([k, x]) => [k, k === 'hashed' || k === 'stat' ? Object.keys(x as object).sort() : timeless(x, alike)]),
    );
  return v;
}

/** The tree, file for file: type, mode, links per inode, content (JSON without times), link text. Not the audit log. */
export async function snapshot(root: string, alike = false): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.sifkit/audit.log') continue;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[r] = `dir ${mode}`;
        await walk(r);
      } else if (st.isSymbolicLink()) out[r] = `link ${await fs.readlink(abs)}`;
      else {
        const body = await fs.readFile(abs);
        out[r] = `file ${mode} x${st.nlink} ${
          name.endsWith('.json')
            ? JSON.stringify(timeless(JSON.parse(body.toString('utf8')), alike))
            : createHash('sha256').update(body).digest('hex')
        }`;
      }
    }
  };
  await walk('');
  return out;
}

/** Paths under the tree that carry our temp marker (what a user sees with ls -a). */
export async function temps(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.name.includes(TEMP_MARKER)) out.push(r);
      else if (e.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

/**
 * What is wrong with the tree after a stop, as a user would find it; empty
 * when status and verify run, agree, and nothing points at a missing SIF.
 */
export async function disagreements(
  tree: Tree,
  sig: KillSignal,
  killed: Run,
  /** The temp files there were before the command (the repair scenario plants some). */
  before: string[],
  easyconfigs?: string,
): Promise<string[]> {
  const out: string[] = [];
  if (easyconfigs)
    for (const [dockerhash, ebs] of await scanEasyconfigs(easyconfigs))
      if (!(await fs.stat(path.join(tree.easybuild, `${STEM}-dockerhash-${dockerhash}.sif`)).catch(() => undefined)))
        out.push(`${ebs.join(', ')} names ${dockerhash}, which is not in easybuild-sif-images`);
  // What `status --json` and `verify --json` print, asked in this process (a CLI start each would double the time).
  let status: TreeStatus;
  let problems: Problem[];
  let lock: LockState | undefined;
  try {
    [status, problems, lock] = await Promise.all([treeStatus(tree), verifyTree(tree), lockHolder(tree.lock)]);
  } catch (e) {
    return [`status or verify failed: ${(e as Error).stack}`];
  }
  const named = (p: string, kinds?: string[]) =>
    problems.some((x) => x.path === p && (!kinds || kinds.includes(x.kind)));
  for (const l of status.links) if (l.dangling) out.push(`sif-images/${l.name} points at a missing SIF`);
  for (const img of status.images)
    if (img.checksum === 'changed' && !img.dirs.some((d) => named(`${d}/${img.name}`)))
      out.push(`status calls ${img.name} changed, verify names no problem with it`);
  for (const t of await temps(tree.root)) {
    const inLock = t.startsWith('.sifkit/lock/') || t.startsWith('.sifkit/lock.break/');
    if (!inLock && !named(t, ['temp-leftover'])) out.push(`${t}: a temp file verify does not name`);
  }
  for (const name of await fs.readdir(tree.ledger).catch(() => [] as string[])) {
    if (name.includes(TEMP_MARKER)) continue;
    const image = name.replace(/\.json$/, '');
    const somewhere = await Promise.all(
      [
        tree.tested,
        tree.easybuild,
        path.join(tree.quarantine, 'tested-containers'),
        path.join(tree.quarantine, 'easybuild-sif-images'),
      ].map((d) =>
        fs.lstat(path.join(d, image)).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (!somewhere.some(Boolean) && !named(`.sifkit/ledger/${name}`, ['ledger-orphan']))
      out.push(`.sifkit/ledger/${name}: a record of no file that verify does not name`);
  }
  if (lock && !named('.sifkit/lock', ['stale-lock'])) out.push('a lock is left that verify does not name');
  if ((await lockHolder(`${tree.lock}.break`)) && !named('.sifkit/lock.break', ['stale-lock']))
    out.push('a lock.break is left that verify does not name');
  if (sig === 'SIGINT') {
    if (killed.code !== 130) out.push(`Ctrl-C: exit ${killed.code} (signal ${killed.signal}), not 130`);
    const errors = killed.stderr.split('\n').filter((l) => l.startsWith('sifkit: error:'));
    if (errors.length !== 1) out.push(`Ctrl-C: ${errors.length} error lines, not one: ${errors.join(' | ')}`);
    const left = (await temps(tree.root)).filter((t) => !before.includes(t));
    if (left.length) out.push(`Ctrl-C left temp files: ${left.join(', ')}`);
    if (lock) out.push('Ctrl-C left the lock behind');
  }
  return out;
}

/** After the rerun: what differs from the uninterrupted run's tree, and what status and verify still find. */
export async function endStateProblems(
  tree: Tree,
  reference: Record<string, string>,
  alike = false,
): Promise<string[]> {
  const out: string[] = [];
  const problems = await verifyTree(tree);
  for (const p of problems) out.push(`verify after the rerun: ${p.kind} ${p.path}`);
  for (const img of (await treeStatus(tree)).images)
    if (img.checksum !== 'ok-cached') out.push(`status after the rerun: ${img.name} ${img.checksum}`);
  const now = await snapshot(tree.root, alike);
  for (const k of new Set([...Object.keys(now), ...Object.keys(reference)]))
    if (now[k] !== reference[k]) out.push(`${k}: ${now[k] ?? 'absent'}, uninterrupted: ${reference[k] ?? 'absent'}`);
  return out;
}

export { run as runCliPlain };

const SIGNALS: KillSignal[] = ['SIGKILL', 'SIGINT'];

/** The seed and the points per command and signal (`all`: every write; SIGINT gets at least 2), from the environment. */
export const SWEEP = {
  seed: Number(process.env.SIFKIT_KILLPOINTS_SEED ?? '6060'),
  per: process.env.SIFKIT_KILLPOINTS ?? '1',
};

/**
 * The points to stop at, of the uninterrupted run's writes (1-based): all
 * of them, or `per` drawn by the seed among the command's own (the lock's
 * are alike for every command, and test/integration/lock.test.ts has them).
 */
function points(writes: string[], rnd: () => number, per: string): number[] {
  const all = writes.map((_, i) => i + 1);
  if (per === 'all') return all;
  const own = all.filter((n) => !/ ROOT\/\.sifkit\/\.?lock/.test(writes[n - 1]));
  const picked = new Set<number>();
  while (picked.size < Math.min(Number(per), own.length)) picked.add(own[Math.floor(rnd() * own.length)]);
  return [...picked].sort((a, b) => a - b);
}

/**
 * One scenario's sweep: the uninterrupted run (its writes are the points,
 * its tree the end state), then for each signal and each point a fresh
 * case stopped there, judged, run again (and repaired where verify names
 * something) and compared with the uninterrupted run's tree.
 */
export async function sweep<I>(
  sc: Scenario<I>,
  inputs: I,
  work: string,
  { seed, per } = SWEEP,
): Promise<{ swept: number; writes: number; failures: string[] }> {
  const dir = (s: string) => path.join(work, `${sc.name.replace(/\W+/g, '-')}-${s}`);
  // The uninterrupted run: its writes are the points, its tree the end state.
  const refTree = await prepareCase(dir('reference'), sc, inputs);
  const under = sc.under ?? ((root: string) => root);
  const ref = await runHooked(
    sc.args(refTree.root, inputs),
    refTree.root,
    path.join(dir('reference'), 'log'),
    undefined,
    undefined,
    under(refTree.root),
  );
  if (ref.code !== 0) throw new Error(`${sc.name}: the uninterrupted run exit ${ref.code}: ${ref.stderr}`);
  const reference = await snapshot(refTree.root, sc.appends);
  // A checkout the command changes (EasyConfigs archived) must end as the uninterrupted run left it, too.
  const checkout = (root: string) => (sc.under ? sc.easyconfigs?.(root, inputs) : undefined);
  const refCheckout = checkout(refTree.root) && (await snapshot(checkout(refTree.root)!));
  const rnd = seeded(seed + sc.name.length);
  const failures: string[] = [];
  let swept = 0;
  for (const sig of SIGNALS) {
    // Ctrl-C is where a handler runs (cleanup, the exit code, the one error line): a few points, not one.
    const n = per === 'all' || sig === 'SIGKILL' ? per : String(Math.max(2, Number(per)));
    for (const at of points(ref.writes, rnd, n)) {
      swept++;
      const where = `seed ${seed}: ${sc.name}, ${sig} before write ${at}/${ref.writes.length} (${ref.writes[at - 1]})`;
      const tree = await prepareCase(dir(`${sig}-${at}`), sc, inputs);
      const args = sc.args(tree.root, inputs);
      const before = await temps(tree.root);
      const killed = await runHooked(args, tree.root, path.join(dir(`${sig}-${at}`), 'log'), at, sig, under(tree.root));
      for (const d of await disagreements(tree, sig, killed, before, sc.easyconfigs?.(tree.root, inputs)))
        failures.push(`${where}: ${d}`);
      const again = await run(args);
      if (again.code !== 0) failures.push(`${where}: the rerun exit ${again.code}: ${again.stderr.trim()}`);
      // What a stop leaves that the rerun does not take back (its temp files, a stale stat) is verify --repair's.
      if ((await verifyTree(tree)).length) {
        const repaired = await run(['verify', '--repair', '--root', tree.root]);
        if (repaired.code !== 0)
          failures.push(`${where}: verify --repair exit ${repaired.code}: ${repaired.stderr.trim()}`);
      }
      for (const d of await endStateProblems(tree, reference, sc.appends))
        failures.push(`${where}: after the rerun: ${d}`);
      const c = checkout(tree.root);
      if (c && JSON.stringify(await snapshot(c)) !== JSON.stringify(refCheckout))
        failures.push(`${where}: after the rerun: the EasyConfig checkout differs from the uninterrupted run's`);
      for (const d of (await sc.after?.(tree, inputs)) ?? []) failures.push(`${where}: after the rerun: ${d}`);
      await fs.rm(dir(`${sig}-${at}`), { recursive: true, force: true });
    }
  }
  return { swept, writes: ref.writes.length, failures };
}
