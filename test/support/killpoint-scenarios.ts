/**
 * The tree commands the kill-point harness (killpoints.ts) sweeps without
 * an engine, and the inputs they share: tiny SIFs made here, an archive, a
 * retention policy, an EasyConfig checkout, signing keys and a host
 * snapshot.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { recordHost } from '../../src/tree/compat';
import { writeLedger, type LedgerEntry } from '../../src/tree/ledger';
import { parsePolicy } from '../../src/tree/policy';
import { promote } from '../../src/tree/promote';
import { retire } from '../../src/tree/retire';
import type { Tree } from '../../src/tree/root';
import { stage } from '../../src/tree/stage';
import { loadSigningKey } from '../../src/sif/keys';
import { signSif } from '../../src/sif/signature';
import { TEMP_MARKER } from '../../src/util/files';
import { hostTag } from '../../src/util/process';
import type { HostSnapshot } from '../../src/validate/schemas/host';
import { STEM, hash, runCliPlain as run, sifName, type Scenario } from './killpoints';
import { makeSif } from './sifs';

/** The inputs every case shares: three SIFs of one stem (1 oldest), an archive, a retention policy. */
export interface Inputs {
  dir: string;
  sif: (i: number) => string;
  archive: string;
  policy: string;
  /** An EasyConfig checkout whose one active EasyConfig names image 1. */
  easyconfigs: string;
  /** Image 2 signed by the build key of `trustPolicy`. */
  signed2: string;
  /** The private key of the policy's tested step (ed25519: the same payload gives the same signature). */
  testedKey: string;
  /** Writes a trust policy (build and tested keys) into a tree. */
  trustPolicy(tree: Tree): Promise<void>;
  /** A host snapshot (`sifkit host snapshot` of one bind). */
  hostSnapshot: string;
}

const SYLABS = path.join(__dirname, '..', 'fixtures', 'sylabs');

export async function makeInputs(dir: string): Promise<Inputs> {
  await fs.mkdir(dir, { recursive: true });
  for (const i of [1, 2, 3])
    await makeSif(path.join(dir, `src-${i}.sif`), {
      stem: STEM,
      dockerhash: hash(i),
      created: `2026-0${i}-01T00:00:00Z`,
      params: { rocm: '6.2.0' },
    });
  await fs.writeFile(path.join(dir, 'src-2.tar'), 'an archive stands in here\n');
  await fs.writeFile(
    path.join(dir, 'policy.yaml'),
    `directories:
  tested-containers: { keep_newest: 1, series: [stem], keep_younger_than_days: 0 }
  easybuild-sif-images: { keep_newest: 1, series: [stem], keep_younger_than_days: 0 }
quarantine_days: 30
`,
  );
  const eb = path.join(dir, 'easyconfigs', 'easybuild', 'easyconfigs', 'l', 'lumi-mpi4py');
  await fs.mkdir(eb, { recursive: true });
  await fs.writeFile(path.join(eb, 'lumi-mpi4py-1.eb'), `local_dockerhash = '${hash(1)}'\n`);
  const signed2 = path.join(dir, 'signed', sifName(2));
  await fs.mkdir(path.dirname(signed2), { recursive: true });
  await fs.copyFile(path.join(dir, 'src-2.sif'), signed2);
  // Private keys as a user keeps them (sifkit refuses one others can read).
  const privateKey = async (from: string, to: string) => {
    await fs.copyFile(path.join(SYLABS, from), to);
    await fs.chmod(to, 0o600);
    return to;
  };
  await signSif(signed2, [await loadSigningKey(await privateKey('ecdsa-private.pem', path.join(dir, 'build.pem')))]);
  const testedKey = await privateKey('ed25519-private.pem', path.join(dir, 'tested.pem'));
  const hostSnapshot = path.join(dir, 'host.json');
  await fs.mkdir(path.join(dir, 'bind'), { recursive: true });
  const snap = await run(['host', 'snapshot', '--bind', `${path.join(dir, 'bind')}:/opt/bind`, '-o', hostSnapshot]);
  if (snap.code !== 0) throw new Error(`host snapshot: ${snap.stderr}`);
  return {
    dir,
    signed2,
    testedKey,
    hostSnapshot,
    trustPolicy: async (tree) => {
      const keys = path.join(tree.state, 'keys');
      await fs.mkdir(keys, { recursive: true });
      await fs.copyFile(path.join(SYLABS, 'ecdsa-public.pem'), path.join(keys, 'build.pub.pem'));
      await fs.copyFile(path.join(SYLABS, 'ed25519-public.pem'), path.join(keys, 'tested.pub.pem'));
      await fs.writeFile(
        path.join(tree.state, 'trust-policy.yaml'),
        'version: 1\nbuild:\n  keys: [keys/build.pub.pem]\ntested:\n  keys: [keys/tested.pub.pem]\n',
      );
    },
    easyconfigs: path.join(dir, 'easyconfigs'),
    sif: (i) => path.join(dir, `src-${i}.sif`),
    archive: path.join(dir, 'src-2.tar'),
    policy: path.join(dir, 'policy.yaml'),
  };
}

async function policyOf(inputs: Inputs) {
  return parsePolicy(await fs.readFile(inputs.policy, 'utf8'), inputs.policy);
}

async function promoted(tree: Tree, inputs: Inputs, which: number[]): Promise<void> {
  for (const i of which) {
    await stage(tree, inputs.sif(i));
    await promote(tree, sifName(i), { to: 'all', compat: false });
  }
}

/** A process that has ended, for leftovers "of a dead process". */
function deadPid(): number {
  return Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$"'], { encoding: 'utf8' }).trim());
}

export const SCENARIOS: Array<Scenario<Inputs>> = [
  {
    name: 'stage',
    prepare: (tree, inputs) => promoted(tree, inputs, [1]),
    args: (root, inputs) => ['stage', inputs.sif(2), '--archive', inputs.archive, '--untested', '--root', root],
  },
  {
    name: 'promote',
    prepare: async (tree, inputs) => {
      await promoted(tree, inputs, [1]);
      await stage(tree, inputs.sif(2));
    },
    args: (root) => ['promote', sifName(2), '--to', 'all', '--root', root],
  },
  {
    name: 'retire --apply',
    easyconfigs: (_root, inputs) => inputs.easyconfigs,
    prepare: (tree, inputs) => promoted(tree, inputs, [1, 2, 3]),
    args: (root, inputs) => [
      'retire',
      '--apply',
      '--policy',
      inputs.policy,
      '--easyconfigs',
      inputs.easyconfigs,
      '--root',
      root,
    ],
  },
  {
    name: 'restore',
    prepare: async (tree, inputs) => {
      await promoted(tree, inputs, [1, 2, 3]);
      await retire(tree, { policy: await policyOf(inputs), apply: true });
    },
    args: (root) => ['restore', hash(2), '--dir', 'easybuild-sif-images', '--root', root],
  },
  {
    name: 'retire --purge',
    prepare: async (tree, inputs) => {
      await promoted(tree, inputs, [1, 2, 3]);
      await retire(tree, { policy: await policyOf(inputs), apply: true });
    },
    args: (root, inputs) => ['retire', '--purge', '--grace-days', '0', '--policy', inputs.policy, '--root', root],
  },
  {
    name: 'verify --repair',
    prepare: async (tree, inputs) => {
      await promoted(tree, inputs, [1, 2]);
      // What killed commands leave: a temp file and a lock of a dead process, a record with no file, an unreadable image.
      const pid = deadPid();
      await fs.writeFile(
        path.join(tree.tested, `.${sifName(3)}${TEMP_MARKER}${hostTag()}-${pid}-0123abcd`),
        'half a copy',
      );
      await fs.mkdir(tree.lock);
      await fs.writeFile(
        path.join(tree.lock, 'owner.json'),
        JSON.stringify({
          host: os.hostname(),
          pid,
          user: 'x',
          command: 'x',
          since: '',
          token: 't',
        }),
      );
      const orphan: LedgerEntry = {
        name: sifName(3),
        sha256: '0'.repeat(64),
        size: 1,
        stem: STEM,
        dockerhash: hash(3),
        params: {},
        labels: {},
        stagedAt: '2026-03-01T00:00:00Z',
        stagedBy: 'test',
        hashed: {},
      };
      await writeLedger(tree, orphan);
      await fs.chmod(path.join(tree.tested, sifName(1)), 0o600);
    },
    args: (root) => ['verify', '--repair', '--root', root],
  },
  {
    name: 'promote --tested-key',
    prepare: async (tree, inputs) => {
      await inputs.trustPolicy(tree);
      await stage(tree, inputs.signed2);
    },
    args: (root, inputs) => ['promote', sifName(2), '--to', 'all', '--tested-key', inputs.testedKey, '--root', root],
  },
  {
    // Image 3 is broken while a link and an EasyConfig name it: the EasyConfig is archived (in the checkout,
    // beside the tree, so its rename is a kill point too), the link moves to image 2, images 1 and 3 go.
    name: 'retire --include-referenced',
    easyconfigs: (root) => path.join(path.dirname(root), 'easyconfigs'),
    under: (root) => path.dirname(root),
    prepare: async (tree, inputs) => {
      await promoted(tree, inputs, [1, 2, 3]);
      const eb = path.join(path.dirname(tree.root), 'easyconfigs', 'easybuild', 'easyconfigs', 'l', 'lumi-mpi4py');
      await fs.mkdir(eb, { recursive: true });
      await fs.writeFile(path.join(eb, 'lumi-mpi4py-3.eb'), `local_dockerhash = '${hash(3)}'\n`);
      await fs.writeFile(
        path.join(path.dirname(tree.root), 'policy.yaml'),
        `${await fs.readFile(inputs.policy, 'utf8')}broken:\n  - { name: ${sifName(3)}, reason: segfaults }\n`,
      );
    },
    args: (root) => [
      'retire',
      '--apply',
      '--include-referenced',
      '--policy',
      path.join(path.dirname(root), 'policy.yaml'),
      '--easyconfigs',
      path.join(path.dirname(root), 'easyconfigs'),
      '--root',
      root,
    ],
  },
  {
    // A snapshot recorded before under the same name is replaced.
    name: 'host record',
    prepare: async (tree, inputs) => {
      await promoted(tree, inputs, [1]);
      const old = JSON.parse(await fs.readFile(inputs.hostSnapshot, 'utf8')) as HostSnapshot;
      await recordHost(tree, { ...old, takenAt: '2026-01-01T00:00:00.000Z' }, 'lumi-g');
    },
    args: (root, inputs) => ['host', 'record', inputs.hostSnapshot, '--name', 'lumi-g', '--root', root],
  },
];
