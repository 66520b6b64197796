/**
 * Small SIFs with the labels sifkit's convert writes, made without an
 * engine: a real squashfs partition (optionally padded with random bytes
 * to make the file big), and the inspect-metadata.json object.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSif } from '../../src/sif/file';
import { Arch, DataType, FsType, PartType } from '../../src/sif/format';
import { inspectMetadata } from '../../src/convert/singularity';

let base: Buffer | undefined;

async function baseSquashfs(): Promise<Buffer> {
  if (!base) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-sq-'));
    await fs.mkdir(path.join(dir, 'root', 'bin'), { recursive: true });
    await fs.writeFile(path.join(dir, 'root', 'bin', 'hello'), 'hello\n');
    execFileSync('mksquashfs', [path.join(dir, 'root'), path.join(dir, 'p.sqfs'), '-noappend', '-quiet']);
    base = await fs.readFile(path.join(dir, 'p.sqfs'));
    await fs.rm(dir, { recursive: true, force: true });
  }
  return base;
}

export interface SifSpec {
  stem: string;
  dockerhash?: string;
  created?: string;
  params?: Record<string, string>;
  /** Random bytes after the squashfs, to make the file this much bigger. */
  padBytes?: number;
  recipe?: string;
  /** More labels (definition hash...). */
  labels?: Record<string, string>;
  /** The image's ENV, kept in oci-config.json as convert does. */
  env?: string[];
}

export async function makeSif(file: string, spec: SifSpec): Promise<{ dockerhash: string; name: string }> {
  const dockerhash = spec.dockerhash ?? randomBytes(6).toString('hex');
  const labels: Record<string, string> = {
    'io.sifkit.stem': spec.stem,
    'io.sifkit.dockerhash': dockerhash,
    'io.sifkit.image-id': `sha256:${dockerhash}${'0'.repeat(52)}`,
    'io.sifkit.recipe': spec.recipe ?? 'mpi4py',
    'org.opencontainers.image.created': spec.created ?? new Date().toISOString(),
    ...Object.fromEntries(Object.entries(spec.params ?? {}).map(([k, v]) => [`io.sifkit.param.${k}`, v])),
    ...(spec.labels ?? {}),
  };
  const part = `${file}.part`;
  const fh = await fs.open(part, 'w');
  await fh.write(await baseSquashfs());
  let left = spec.padBytes ?? 0;
  while (left > 0) {
    const n = Math.min(left, 8 << 20);
    await fh.write(randomBytes(n));
    left -= n;
  }
  await fh.close();
  await writeSif(file, [
    {
      kind: 'data',
      dataType: DataType.deffile,
      name: '',
      data: Buffer.from('bootstrap: docker-archive\nfrom: x.tar\n\n'),
    },
    {
      kind: 'data',
      dataType: DataType.genericJson,
      name: 'inspect-metadata.json',
      data: Buffer.from(JSON.stringify(inspectMetadata('', labels, '#!/bin/sh\n', '#!/bin/sh\n'))),
    },
    {
      kind: 'data',
      dataType: DataType.genericJson,
      name: 'oci-config.json',
      data: Buffer.from(JSON.stringify({ Env: spec.env ?? [] })),
    },
    {
      kind: 'partition',
      name: '',
      file: part,
      partition: { fsType: FsType.squash, partType: PartType.primSys, arch: Arch.amd64 },
    },
  ]);
  await fs.rm(part);
  return { dockerhash, name: `${spec.stem}-dockerhash-${dockerhash}.sif` };
}
