/**
 * The leak scan's verdict, bound to the image ID it was reached on. An
 * image is tagged, reused or converted by the pipeline only with a passing
 * verdict for its exact ID, reached by this scanner version over the same
 * served files: an image whose scan failed, errored or was interrupted has
 * none, so the next build scans it again (or rebuilds) before any use.
 *
 * Verdicts live in files under the state directory (one per image ID,
 * written atomically), not in labels: a label is part of the image and
 * would change its ID.
 */
import { promises as fs } from 'node:fs';
import { z } from 'zod';
import * as os from 'node:os';
import * as path from 'node:path';
import { errnoCode } from '../errors';
import { writeFileAtomic } from '../util/files';

/** Raised when what the scan checks changes, so older verdicts no longer count (3: judged by role). */
export const SCANNER_VERSION = 3;

export interface Verdict {
  imageId: string;
  passed: boolean;
  /** Why it failed (the first leak), when it did. */
  reason?: string;
  scanner: number;
  /** Digest of the served files the scan looked for (none when nothing was served). */
  servedDigest?: string;
  /**
   * The roles it judged with, one `file role [path]` line per served file
   * (recipe/served.ts rolesKey): a verdict reached under other roles does
   * not hold.
   */
  roles?: string;
  scannedAt: string;
  layers: number;
  files: number;
  bytes: number;
}

/**
 * A verdict file as recordVerdict writes it. The file can be torn, edited
 * or older than this sifkit: `passed: "false"` (a string, so truthy) must
 * never count as a pass, so the file is checked before anything reads it.
 */
const verdictSchema = z.object({
  imageId: z.string(),
  passed: z.boolean(),
  reason: z.string().optional(),
  scanner: z.number().int(),
  servedDigest: z.string().optional(),
  roles: z.string().optional(),
  scannedAt: z.string(),
  layers: z.number(),
  files: z.number(),
  bytes: z.number(),
});

export function defaultVerdictDir(env: NodeJS.ProcessEnv = process.env): string {
  const state =
    env.SIFKIT_STATE_DIR ?? path.join(env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state'), 'sifkit');
  return path.join(state, 'scan-verdicts');
}

function fileFor(dir: string, imageId: string): string {
  const hex = imageId.replace(/^sha256:/, '');
  // The ID names a file: only ever 64 hex digits.
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not an image ID: ${JSON.stringify(imageId)}`);
  return path.join(dir, `${hex}.json`);
}

export async function recordVerdict(dir: string, v: Verdict): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(fileFor(dir, v.imageId), JSON.stringify(v, null, 2) + '\n');
}

export async function readVerdict(dir: string, imageId: string): Promise<Verdict | undefined> {
  let text: string;
  try {
    text = await fs.readFile(fileFor(dir, imageId), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const v = verdictSchema.safeParse(JSON.parse(text));
    // A torn or edited file is no verdict: scan again.
    return v.success && v.data.imageId === imageId ? v.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `v` lets the image be used: passed, by this scanner, and (for a
 * build, which knows what it serves) over the same served files judged
 * with the same roles.
 */
export function verdictHolds(
  v: Verdict | undefined,
  imageId: string,
  served?: { digest: string | undefined; roles: string },
): v is Verdict {
  if (v === undefined || v.imageId !== imageId || !v.passed || v.scanner !== SCANNER_VERSION) return false;
  return served === undefined || ((v.servedDigest ?? '') === (served.digest ?? '') && (v.roles ?? '') === served.roles);
}
