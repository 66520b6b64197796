/**
 * What apptainer adds to an image's root file system (reference §2), as a
 * list both converters put in: the archive converter into its flattened
 * tree, the engine converter after the engine's export stream. Pure.
 */
import { ACTIONS, BASE_ENV, CUSTOM_ENV, DOCKER_ENV_SCRIPT, LIBS_ENV, STARTSCRIPT, labelsJson } from './singularity';
import { dirEntry, type Entry } from './flatten';

export interface Additions {
  env: string;
  run: string;
  labels: Record<string, string>;
  deffile: string;
}

export interface Addition {
  path: string;
  entry: Entry;
  content?: Buffer;
  /** Only where the image has nothing at that path (the mount points apptainer needs). */
  ifAbsent: boolean;
}

/** The paths apptainer makes only when the image lacks them, parents first. */
export const MOUNT_POINTS = [
  'dev',
  'proc',
  'root',
  'var',
  'var/tmp',
  'tmp',
  'etc',
  'sys',
  'home',
  'etc/hosts',
  'etc/resolv.conf',
];

/** The paths that are apptainer's alone: an image's own are replaced. */
export function isSingularityPath(p: string): boolean {
  return (
    p === '.singularity.d' ||
    p.startsWith('.singularity.d/') ||
    ['singularity', '.exec', '.run', '.shell', '.test', 'environment'].includes(p)
  );
}

export function singularityAdditions(add: Additions, mtime: Date): Addition[] {
  const out: Addition[] = [];
  const file = (p: string, body: string, mode: number, ifAbsent = false) => {
    const content = Buffer.from(body);
    out.push({
      path: p,
      entry: { type: 'file', mode, uid: 0, gid: 0, mtime, size: content.length },
      content,
      ifAbsent,
    });
  };
  const dir = (p: string, mode = 0o755, ifAbsent = false) =>
    out.push({ path: p, entry: dirEntry(mode, mtime), ifAbsent });
  const link = (p: string, target: string) =>
    out.push({
      path: p,
      entry: { type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime, size: 0, linkname: target },
      ifAbsent: false,
    });
  for (const p of MOUNT_POINTS) {
    if (p.startsWith('etc/')) file(p, '', 0o644, true);
    else dir(p, p.endsWith('tmp') ? 0o1777 : 0o755, true);
  }
  dir('.singularity.d');
  for (const d of ['actions', 'env', 'libs']) dir(`.singularity.d/${d}`);
  for (const [name, body] of Object.entries(ACTIONS)) file(`.singularity.d/actions/${name}`, body, 0o755);
  file('.singularity.d/env/01-base.sh', BASE_ENV, 0o644);
  file(DOCKER_ENV_SCRIPT, add.env, 0o755);
  file('.singularity.d/env/90-environment.sh', CUSTOM_ENV, 0o644);
  file('.singularity.d/env/99-base.sh', LIBS_ENV, 0o644);
  file('.singularity.d/runscript', add.run, 0o755);
  file('.singularity.d/startscript', STARTSCRIPT, 0o755);
  file('.singularity.d/labels.json', labelsJson(add.labels), 0o644);
  file('.singularity.d/Singularity', add.deffile, 0o644);
  link('singularity', '.singularity.d/runscript');
  for (const a of ['exec', 'run', 'shell', 'test']) link(`.${a}`, `.singularity.d/actions/${a}`);
  link('environment', '.singularity.d/env/90-environment.sh');
  return out;
}
