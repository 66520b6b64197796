/**
 * Real Debian roots for the compatibility tests: bullseye (glibc 2.31,
 * Open MPI 4.1.0), bookworm (glibc 2.36, Open MPI 4.1.4) and trixie
 * (glibc 2.41, Open MPI 5), with MPICH beside, made by debootstrap from
 * Debian's archive (about a minute or four each here) and imported into
 * the engine under a fixed name, so later runs reuse them. Host library
 * directories are copied out of them with their dependencies (less glibc),
 * as /opt/cray holds Cray MPICH with its own libfabric.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readElfFile } from '../../src/elf/file';

export type Release = 'bullseye' | 'bookworm' | 'trixie';

const INCLUDE: Record<Release, string> = {
  bullseye: 'python3-mpi4py,libmpich12',
  bookworm: 'python3-mpi4py,libmpich12',
  trixie: 'openmpi-bin,libmpich12',
};

/** Where the module's binds put the host's MPI in these tests, and the images' LD_LIBRARY_PATH. */
export const HOST_LIB_DIR = '/opt/cray/lib';

export const imageRef = (r: Release, variant = 'mpi') => `sifkit-test/debian-${r}:${variant}`;

function exists(ref: string): boolean {
  try {
    execFileSync('docker', ['image', 'inspect', ref], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Imports a root directory as an image with LD_LIBRARY_PATH at the host's MPI, as LUMI's images have. */
export function importRoot(dir: string, ref: string): void {
  execFileSync(
    'bash',
    [
      '-c',
      `set -o pipefail; tar -C "$1" -c . | docker import --change "ENV LD_LIBRARY_PATH=${HOST_LIB_DIR}" --change 'LABEL io.sifkit.test.debian=1' - "$2"`,
      'import',
      dir,
      ref,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

/** The release's image in the engine, made when missing. */
export async function debianImage(r: Release): Promise<string> {
  const ref = imageRef(r);
  if (exists(ref)) return ref;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `sifkit-debootstrap-${r}-`));
  try {
    const t = Date.now();
    execFileSync(
      'debootstrap',
      ['--variant=minbase', `--include=${INCLUDE[r]}`, r, dir, 'http://deb.debian.org/debian'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    process.stderr.write(`debootstrap ${r}: ${((Date.now() - t) / 1000).toFixed(0)} s\n`);
    importRoot(dir, ref);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return ref;
}

/** The same image without its own Open MPI: what LUMI's images are, MPI coming from the host. */
export async function withoutOpenMpi(r: Release): Promise<string> {
  const ref = imageRef(r, 'nompi');
  if (exists(ref)) return ref;
  const base = await debianImage(r);
  execFileSync('docker', ['build', '--network=none', '-t', ref, '-'], {
    input: `FROM ${base}\nRUN rm -rf /usr/lib/x86_64-linux-gnu/libmpi.so.40* /usr/lib/x86_64-linux-gnu/openmpi\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  return ref;
}

/** glibc's own libraries: the image provides them, never a bind. */
const GLIBC = new Set([
  'libc.so.6',
  'libm.so.6',
  'libdl.so.2',
  'libpthread.so.0',
  'librt.so.1',
  'libresolv.so.2',
  'libutil.so.1',
  'ld-linux-x86-64.so.2',
  'libanl.so.1',
  'libnsl.so.1',
]);

/**
 * Copies `libs` (names in /usr/lib/x86_64-linux-gnu of the image) and
 * everything they need but glibc into `dest`, each real file under its
 * own name with its SONAME link beside it, as a host's library directory.
 */
export async function hostLibraries(ref: string, libs: string[], dest: string): Promise<string[]> {
  return (await hostLibrarySets(ref, [{ libs, dest }]))[0];
}

/** hostLibraries for several directories out of one image, which is copied out once. */
export async function hostLibrarySets(ref: string, sets: Array<{ libs: string[]; dest: string }>): Promise<string[][]> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-hostlibs-'));
  try {
    const id = execFileSync('docker', ['create', ref, 'true'], { encoding: 'utf8' }).trim();
    try {
      execFileSync('bash', [
        '-c',
        'set -o pipefail; docker cp "$1:/usr/lib/x86_64-linux-gnu" - | tar -x -C "$2"',
        'cp',
        id,
        tmp,
      ]);
    } finally {
      execFileSync('docker', ['rm', id], { stdio: 'ignore' });
    }
    const dir = path.join(tmp, 'x86_64-linux-gnu');
    const copied: string[][] = [];
    for (const { libs, dest } of sets) copied.push(await copyClosure(dir, libs, dest));
    return copied;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

async function copyClosure(dir: string, libs: string[], dest: string): Promise<string[]> {
  await fs.mkdir(dest, { recursive: true });
  const done = new Set<string>();
  const todo = [...libs];
  while (todo.length) {
    const name = todo.shift()!;
    if (done.has(name) || GLIBC.has(name)) continue;
    done.add(name);
    const real = await fs.realpath(path.join(dir, name)).catch(() => undefined);
    if (!real) continue; // not there: the image must provide it
    const elf = await readElfFile(real);
    await fs.copyFile(real, path.join(dest, path.basename(real)));
    if (path.basename(real) !== name)
      await fs.symlink(path.basename(real), path.join(dest, name)).catch(() => undefined);
    todo.push(...(elf?.needed ?? []));
  }
  return [...done];
}
