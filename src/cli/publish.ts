import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { collect, jsonDoc } from './output';
import { runCommand } from './run';
import {
  apiBase,
  easyconfigArchivePath,
  branchName,
  DEFAULT_API_URL,
  definitionFor,
  imageFacts,
  InputError,
  locateSif,
  makeOutputDir,
  moduleScripts,
  moduleText,
  octokitHost,
  openTree,
  packageDir,
  prBody,
  publishPullRequest,
  readResults,
  refuseOverwrite,
  releaseFiles,
  resolveRoot,
  resultsFor,
  type TestRun,
  treeAt,
  trustedKeysFromFlags,
  writeInside,
} from '../index';

const ROOT_HELP = 'container tree root (default: $LUMI_CONTAINER_REPOSITORY_ROOT, else /appl/local/containers)';

async function treeIfThere(root: string) {
  return openTree(root, false).catch(() => undefined);
}

const FORCE_HELP = 'replace files already there with other content (refused by default)';

/** The build keys a user trusts for this SIF (in a tree or not), as verify-signature takes them. */
interface KeyFlags {
  key?: string[];
  cert?: string;
  caPool?: string;
  keyring?: string;
}

function addKeyFlags(cmd: Command): Command {
  return cmd
    .option(
      '--key <file>',
      'a PEM public key that must have signed the SIF (checked before writing); repeatable',
      collect,
    )
    .option('--cert <file>', 'an X.509 certificate whose key must have signed it, trusted through --ca-pool')
    .option('--ca-pool <file>', 'PEM CA certificates the --cert must chain to')
    .option('--keyring <file>', 'an armored OpenPGP keyring whose key must have signed it');
}

/** The keys named, or undefined when none is (then only a tree's trust policy is checked). */
async function givenKeys(f: KeyFlags) {
  if (!f.key?.length && !f.cert && !f.caPool && !f.keyring) return undefined;
  return trustedKeysFromFlags({ keys: f.key, cert: f.cert, caPool: f.caPool, keyring: f.keyring }, process.cwd());
}

/** What an existing generated file was made for, when another image: its module and EasyConfig name the dockerhash. */
/** The image a command names (a SIF, or a name in the tree at --root), its signature checked against the keys given. */
async function factsOf(image: string, flags: KeyFlags & { root?: string; date?: string }) {
  const root = resolveRoot(flags.root);
  const tree = await treeIfThere(root);
  // The keys first: a bad --key is bad input, whatever the image.
  const trusted = await givenKeys(flags);
  const sif = await locateSif(image, tree);
  const facts = await imageFacts(sif, { date: flags.date, tree, trusted });
  return { root, sif, facts };
}

function otherImage(dockerhash: string): (existing: string) => string | undefined {
  return (existing) => {
    const m = /dockerhash-([0-9a-f]{12})|local_hash\s*=\s*'([0-9a-f]{12})'/.exec(existing);
    const other = m && (m[1] ?? m[2]);
    return other && other !== dockerhash ? `made for image ${other}` : undefined;
  };
}

export function registerEasyBuildFiles(program: Command): void {
  const easyconfig = program
    .command('easyconfig')
    .description(
      "write the image's EasyConfig, its Docker definition and, when the recipe has a USER.md template, the user page",
    )
    .argument('<image>', 'a SIF file, or the name of an image in the tree')
    .option('--date <YYYYMMDD>', 'the date in the EasyConfig name (default: today)')
    .option('--out <dir>', 'where the files go', '.')
    .option('--force', FORCE_HELP)
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout');
  addKeyFlags(easyconfig).action(
    async (
      image: string,
      flags: KeyFlags & { date?: string; out: string; force?: boolean; root?: string; json?: boolean },
    ) => {
      process.exitCode = await runCommand(async (io) => {
        const { root, facts } = await factsOf(image, flags);
        const r = await releaseFiles(facts, root);
        const out = await makeOutputDir(flags.out, '--out');
        await refuseOverwrite(out, Object.entries(r.files), {
          force: flags.force,
          whose: otherImage(facts.dockerhash),
        });
        for (const [name, text] of Object.entries(r.files)) await writeInside(out, name, text);
        if (io.json)
          io.stdout(jsonDoc({ ok: true, dir: out, files: Object.keys(r.files), module: facts.names.module }));
        else for (const name of Object.keys(r.files)) io.stdout(`${path.join(out, name)}\n`);
      }, flags);
    },
  );

  const module = program
    .command('module')
    .description('write a standalone Lmod module (and its scripts) for sites without EasyBuild')
    .argument('<image>', 'a SIF file, or the name of an image in the tree')
    .requiredOption('--out <dir>', 'prefix: modules go in DIR/modules, scripts in DIR/software')
    .option('--date <YYYYMMDD>', 'the date in the module version (default: today)')
    .option('--force', FORCE_HELP)
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout');
  addKeyFlags(module).action(
    async (
      image: string,
      flags: KeyFlags & { out: string; date?: string; force?: boolean; root?: string; json?: boolean },
    ) => {
      process.exitCode = await runCommand(async (io) => {
        const { root, facts } = await factsOf(image, flags);
        const [modName, modVersion] = facts.names.module.split('/');
        const installRel = `software/${modName}/${modVersion}`;
        const installdir = path.join(path.resolve(flags.out), installRel);
        // SINGULARITY_BIND is a list of src:dest separated by commas.
        if (/[,:]/.test(installdir))
          throw new InputError(
            'bad-out',
            `--out ${JSON.stringify(installdir)} holds a , or :, which SINGULARITY_BIND cannot hold`,
          );
        // A SIF in the tree's easybuild-sif-images/ is found there (or as a copy in the install directory);
        // any other SIF is used where it is, by its absolute path: no copy of a multi-GB file (README, "module").
        const real = await fs.realpath(facts.sifPath);
        const inTree = path.dirname(real) === (await fs.realpath(treeAt(root).easybuild).catch(() => undefined));
        // Everything is written only once all of it is made: a refusal leaves nothing behind.
        const files: Record<string, [string, number?]> = {
          // The definition rendered again from the recipe (never a label), proven by the image's hash.
          [`${installRel}/share/docker-defs/${facts.stem}.docker`]: [await definitionFor(facts)],
          ...Object.fromEntries(
            Object.entries(moduleScripts(facts)).map(([rel, text]) => [`${installRel}/${rel}`, [text, 0o755]]),
          ),
          [`modules/${modName}/${modVersion}.lua`]: [
            moduleText(facts, { installdir, sif: inTree ? { root: treeAt(root).root } : { file: real } }),
          ],
        };
        const out = await makeOutputDir(flags.out, '--out');
        await refuseOverwrite(
          out,
          // The module first: it names the image it was made for.
          Object.entries(files)
            .map(([rel, [text]]): [string, string] => [rel, text])
            .sort(([a], [b]) => Number(b.endsWith('.lua')) - Number(a.endsWith('.lua'))),
          { force: flags.force, whose: otherImage(facts.dockerhash) },
        );
        let modfile = '';
        for (const [rel, [text, mode]] of Object.entries(files)) {
          const written = await writeInside(out, rel, text, mode);
          if (rel.endsWith('.lua')) modfile = written;
        }
        if (io.json) io.stdout(jsonDoc({ ok: true, modulefile: modfile, installdir, module: facts.names.module }));
        else io.stdout(`${modfile}\nmodule use ${path.join(out, 'modules')}; module load ${facts.names.module}\n`);
      }, flags);
    },
  );
}

/** A duration from the environment, or the default when it is absent or not a positive number. */
function positiveMs(text: string | undefined, dflt: number): number {
  const n = Number(text);
  return text && Number.isFinite(n) && n > 0 ? n : dflt;
}

interface PublishFlags extends KeyFlags {
  repo?: string;
  root?: string;
  date?: string;
  apiUrl?: string;
  archive?: string[];
  results?: string;
  json?: boolean;
}

export function registerPublish(program: Command): void {
  const publish = program
    .command('publish')
    .description('open (or update) the pull request that ships the EasyConfig and user page')
    .argument('<image>', 'a SIF file, or the name of an image in the tree')
    .option('--repo <owner/name>', 'the EasyConfig repository', 'Lumi-supercomputer/LUMI-EasyBuild-containers')
    .option('--root <dir>', ROOT_HELP)
    .option('--date <YYYYMMDD>', 'the date in the EasyConfig name (default: today)')
    .option('--archive <file.eb>', 'an EasyConfig of this package to move to __archive__ (repeatable)', collect)
    .option(
      '--results <file>',
      'test results to describe (default: the tree ledger, else the results beside the tree, else .sifkit/test-results)',
    )
    .option('--api-url <url>', 'GitHub API base URL', process.env.GITHUB_API_URL ?? DEFAULT_API_URL)
    .option('--json', 'print one JSON document on stdout');
  addKeyFlags(publish).action(async (image: string, flags: PublishFlags) => {
    process.exitCode = await runCommand(async (io) => {
      const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(flags.repo ?? '');
      if (!m) throw new InputError('bad-repo', `--repo ${JSON.stringify(flags.repo)} is not OWNER/NAME`);
      const token = process.env.GITHUB_TOKEN;
      if (!token)
        throw new InputError('no-token', 'GITHUB_TOKEN is not set', {
          hint: 'export a token with contents and pull requests write access',
        });
      // Checked before anything else is read or sent.
      const apiUrl = apiBase(flags.apiUrl ?? DEFAULT_API_URL);
      const { root, sif, facts } = await factsOf(image, flags);
      const r = await releaseFiles(facts, root);
      const dir = packageDir(facts.recipe.naming.app);
      let runs: TestRun[] = facts.tests ?? [];
      if (!runs.length)
        runs =
          (flags.results ? await readResults(path.resolve(flags.results)) : (await resultsFor(facts.sifName, root)).doc)
            ?.runs ?? [];
      const size = (await fs.stat(sif)).size;
      const log = (l: string) => io.stderr(`${l}\n`);
      const result = await publishPullRequest(
        {
          owner: m[1],
          repo: m[2],
          branch: branchName(facts),
          title: `${facts.names.module}: container ${facts.dockerhash}`,
          body: prBody(facts, size, runs),
          message: `${facts.names.module}: EasyConfig and user page for ${facts.sifName}\n\nWritten by sifkit.`,
          files: Object.entries(r.files).map(([name, content]) => ({ path: `${dir}/${name}`, content })),
          moves: (flags.archive ?? []).map((eb) => [
            `${dir}/${path.basename(eb)}`,
            easyconfigArchivePath(facts.recipe.naming.app, path.basename(eb)),
          ]),
        },
        octokitHost({
          token,
          apiUrl,
          signal: io.signal,
          log,
          // Tests shorten the waits against the local server; a person never needs to.
          backoffMs: positiveMs(process.env.SIFKIT_GITHUB_BACKOFF_MS, 1000),
          timeoutMs: positiveMs(process.env.SIFKIT_GITHUB_TIMEOUT_MS, 30_000),
        }),
        { signal: io.signal, log },
      );
      if (io.json) io.stdout(jsonDoc({ ok: true, ...result }));
      else
        io.stdout(
          `${result.pr.created ? 'opened' : 'updated'} ${result.pr.url}\nbranch ${result.branch} at ${result.commit.slice(0, 12)}${result.committed ? '' : ' (no change)'}\n`,
        );
    }, flags);
  });
}
