/**
 * The SBOM and provenance objects of a SIF: the package records are read
 * out of its own squashfs partition (unsquashfs lists it once and extracts
 * only those few files, into a temp dir), so the SBOM says what is really
 * in the image; both documents are appended to object group 1, where a
 * signature of the group covers them. Rerunning finds them and stops.
 */
import { createInterface } from 'node:readline';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OperationError } from '../errors';
import { sifkitVersion } from '../provenance';
import { LABEL } from '../validate/labels';
import { DataType, PartType } from '../sif/format';
import { appendObjects, openSif } from '../sif/update';
import { signSif, type SignResult } from '../sif/signature';
import type { SigningKey } from '../sif/keys';
import { startChild, runChild } from '../util/process';
import type { Processes } from '../util/processes';
import { packagesOf, recordKind, type ImagePackage } from './packages';
import { sbomDocument, validateSbom } from './sbom';
import { provenanceDocument, type ProvenanceInput } from './provenance-doc';

export const SBOM_NAME = 'sbom.cdx.json';
export const PROVENANCE_NAME = 'provenance.json';
/** sylabs/sif SBOMFormatCycloneDXJSON. */
const CYCLONEDX_JSON = 1;
/** A package record bigger than this is not one (a METADATA with an embedded README can be long). */
const MAX_RECORD = 4 << 20;

/** Every regular file of the partition whose path is a package record, from `unsquashfs -lln`, streamed. */
async function recordPaths(
  sif: string,
  offset: bigint,
  signal?: AbortSignal,
  processes?: Processes,
): Promise<string[]> {
  const c = startChild('unsquashfs', ['-o', String(offset), '-lln', sif], {
    stdout: 'pipe',
    signal,
    processes,
    label: 'unsquashfs',
  });
  const found: string[] = [];
  // "-rw-r--r-- 0/0   1234 2024-01-01 00:00 squashfs-root/var/lib/dpkg/status"
  const line = /^-\S*\s+\S+\s+\d+\s+\S+\s+\S+\s+squashfs-root(\/.*)$/;
  for await (const l of createInterface({ input: c.stdout!, crlfDelay: Infinity })) {
    const m = line.exec(l);
    if (m && recordKind(m[1])) found.push(m[1]);
  }
  await c.done;
  return found;
}

export interface ImageRecords {
  packages: ImagePackage[];
  /** What was found and not read (the rpm database), as sentences. */
  notes: string[];
}

/** The packages of a SIF's primary partition. */
export async function readImagePackages(
  sif: string,
  opts: { signal?: AbortSignal; processes?: Processes } = {},
): Promise<ImageRecords> {
  const o = await openSif(sif, false);
  const part = o.sif.descriptors.find((d) => d.partition?.partType === PartType.primSys);
  await o.fh.close();
  if (!part) throw new OperationError('no-partition', `${sif} has no primary partition to list packages from`);
  const paths = await recordPaths(sif, part.offset, opts.signal, opts.processes);
  const notes = paths
    .filter((p) => recordKind(p) === 'rpmdb')
    .map((p) => `rpm database ${p} not read: only rpm reads it, and rpm is not used here; rpm packages are not listed`);
  // Paths with wildcard characters would be patterns to unsquashfs: left out, and said.
  const wild = paths.filter((p) => /[*?[\\\n]/.test(p));
  for (const p of wild) notes.push(`record ${JSON.stringify(p)} not read: its name has wildcard characters`);
  const wanted = paths.filter((p) => recordKind(p) !== 'rpmdb' && !wild.includes(p));
  if (wanted.length === 0) return { packages: [], notes };
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-sbom-'));
  try {
    const list = path.join(tmp, 'extract.list');
    await fs.writeFile(list, wanted.map((p) => p.slice(1)).join('\n') + '\n');
    const root = path.join(tmp, 'root');
    await runChild('unsquashfs', ['-o', String(part.offset), '-n', '-no-xattrs', '-d', root, '-ef', list, sif], {
      signal: opts.signal,
      processes: opts.processes,
      label: 'unsquashfs',
    });
    const records: Array<{ path: string; text: string }> = [];
    for (const p of wanted) {
      const file = path.join(root, p.slice(1));
      const st = await fs.lstat(file).catch(() => undefined);
      if (!st?.isFile() || st.size > MAX_RECORD) continue;
      records.push({ path: p, text: await fs.readFile(file, 'utf8') });
    }
    return { packages: packagesOf(records), notes };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

export interface AttachResult {
  sif: string;
  /** The objects' IDs; absent when they were already there. */
  ids?: number[];
  already: boolean;
  /** How many packages the SBOM lists (absent when it was already there). */
  packages?: number;
  notes: string[];
}

/**
 * Appends the SBOM (type 0x4009, CycloneDX JSON) and the provenance
 * document (generic JSON) to group 1 of `sif`, unless it has them. Their
 * times are the SIF's own, so a reproducible SIF stays reproducible.
 */
export async function attachSbomAndProvenance(
  sif: string,
  provenance: ProvenanceInput,
  opts: { signal?: AbortSignal; processes?: Processes } = {},
): Promise<AttachResult> {
  const probe = await openSif(sif, false);
  const has = probe.sif.descriptors.some((d) => d.dataType === DataType.sbom);
  await probe.fh.close();
  if (has) return { sif, already: true, notes: [] };
  const records = await readImagePackages(sif, opts);
  const labels = provenance.labels ?? {};
  const sbom = sbomDocument(
    {
      name: labels[LABEL.stem] ?? provenance.source ?? path.basename(sif, '.sif'),
      version: labels[LABEL.imageVersion],
      imageId: provenance.imageId,
    },
    records.packages,
    sifkitVersion(),
    records.notes,
  );
  await validateSbom(sbom);
  const prov = provenanceDocument(provenance, sifkitVersion());
  const o = await openSif(sif, true);
  try {
    const sbomExtra = Buffer.alloc(384);
    sbomExtra.writeInt32LE(CYCLONEDX_JSON, 0);
    const ids = await appendObjects(
      o,
      [
        {
          dataType: DataType.sbom,
          group: 1,
          linkedId: 0,
          name: SBOM_NAME,
          extra: sbomExtra,
          size: Buffer.byteLength(sbom),
          data: Buffer.from(sbom),
        },
        {
          dataType: DataType.genericJson,
          group: 1,
          linkedId: 0,
          name: PROVENANCE_NAME,
          extra: Buffer.alloc(384),
          size: prov.length,
          data: prov,
        },
      ],
      o.sif.header.modified,
    );
    return { sif, ids, already: false, packages: records.packages.length, notes: records.notes };
  } finally {
    await o.fh.close();
  }
}

export interface AttestResult extends AttachResult {
  signature?: SignResult;
}

/**
 * What a release does to each SIF it converts: the SBOM and provenance
 * objects, then, with a key, the build signature over group 1 (which
 * covers them). Idempotent: a rerun finds both and changes nothing.
 */
export async function attestSif(
  sif: string,
  provenance: ProvenanceInput,
  opts: { signingKey?: SigningKey; signal?: AbortSignal; processes?: Processes } = {},
): Promise<AttestResult> {
  const attached = await attachSbomAndProvenance(sif, provenance, opts);
  const signature = opts.signingKey
    ? await signSif(sif, [opts.signingKey], { group: 1, signal: opts.signal })
    : undefined;
  return { ...attached, signature };
}
