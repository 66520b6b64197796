import type { Command } from 'commander';
import * as path from 'node:path';
import { jsonDoc, table, wrapWords } from './output';
import { runCommand } from './run';
import { addStageFlags, graceDays, requireDirectory, testedKeyFile, type RetireFlags } from './stage-flags';
import {
  blockedError,
  describeLock,
  EASYBUILD,
  ExitCode,
  InputError,
  commandLine,
  initTree,
  loadPolicyFile,
  loadSigningKey,
  lockHolder,
  mutate,
  openTree,
  parseTarget,
  type Problem,
  promote,
  purge,
  purgeError,
  readResults,
  reconvertTree,
  resolveRoot,
  restore,
  resultsFor,
  retire,
  runGateSummary,
  SIF_IMAGES,
  stage,
  TESTED,
  verifyTree,
} from '../index';

export const ROOT_HELP = 'container tree root (default: $LUMI_CONTAINER_REPOSITORY_ROOT, else /appl/local/containers)';

export function registerTree(program: Command): void {
  program
    .command('init')
    .description("make a container tree: the directory and LUMI's layout (no other command makes one)")
    .argument('<root>', 'where the tree goes')
    .option('--json', 'print one JSON document on stdout')
    .action(async (root: string, flags: { json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const { tree, created } = await initTree(path.resolve(root));
        if (io.json) io.stdout(jsonDoc({ ok: true, root: tree.root, created }));
        else io.stdout(`${created ? 'made a container tree at' : 'a container tree is already at'} ${tree.root}\n`);
      }, flags);
    });

  const stageCmd = program
    .command('stage')
    .description('put a SIF into tested-containers/ under its dockerhash name, with its checksum recorded')
    .argument('<file>', 'the SIF (made by sifkit convert)')
    .option('--archive <tar>', 'the docker archive to keep beside it');
  addStageFlags(stageCmd, 'stage')
    .option(
      '--results <file>',
      'test results to record (default: <name>.json beside the tree, else in .sifkit/test-results)',
    )
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout')
    .action(
      async (
        file: string,
        flags: { archive?: string; root?: string; json?: boolean; untested?: boolean; results?: string },
      ) => {
        process.exitCode = await runCommand(async (io) => {
          const tree = await openTree(resolveRoot(flags.root), false);
          // The image's name comes from its labels, which stage reads only after its signature check.
          const testsFor = async (name: string) => {
            const tests =
              (flags.results ? await readResults(path.resolve(flags.results)) : (await resultsFor(name, tree.root)).doc)
                ?.runs ?? [];
            if (flags.results && !tests.length)
              throw new InputError('no-results', `${flags.results} holds no test runs`);
            if (tests.some((t) => t.image !== name))
              throw new InputError(
                'wrong-results',
                `${flags.results ?? 'the results file'} is about another image than ${name}`,
              );
            return tests;
          };
          const r = await stage(tree, file, {
            archive: flags.archive,
            signal: io.signal,
            testsFor,
            ...(!flags.untested && { requireTests: { gateSummary: runGateSummary } }),
          });
          if (io.json) io.stdout(jsonDoc({ ok: true, staged: r }));
          else io.stdout(`${r.already ? 'already staged' : 'staged'} ${r.path}\nsha256 ${r.sha256}\n`);
        }, flags);
      },
    );

  const promoteCmd = program
    .command('promote')
    .description('promote a staged image: the stem link in sif-images/, the file in easybuild-sif-images/, or both')
    .argument('<name>', 'the staged image (file name in tested-containers/)')
    // Required here; the pipelines take the pipeline file's `to:` when it is not given.
    .requiredOption('--to <where>', 'sif-images, easybuild-sif-images or all');
  addStageFlags(promoteCmd, 'promote', { skip: ['--to'] })
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout')
    .action(
      async (
        name: string,
        flags: { to: string; rollback?: boolean; testedKey?: string; compat?: boolean; root?: string; json?: boolean },
      ) => {
        process.exitCode = await runCommand(async (io) => {
          const to = parseTarget(flags.to);
          const keyFile = testedKeyFile(flags);
          const testedKey = keyFile ? await loadSigningKey(keyFile) : undefined;
          const tree = await openTree(resolveRoot(flags.root), false);
          const r = await promote(tree, name, {
            to,
            rollback: flags.rollback,
            testedKey,
            compat: flags.compat,
            signal: io.signal,
          });
          if (io.json) io.stdout(jsonDoc({ ok: true, promoted: r }));
          else {
            if (r.easybuild)
              io.stdout(
                `${r.easybuild.how === 'present' ? 'already in' : `${r.easybuild.how} into`} ${r.easybuild.path}\n`,
              );
            if (r.link)
              io.stdout(
                `${r.link.changed ? 'linked' : 'already linked'} ${r.link.path} -> ${r.link.target}${r.link.previous && r.link.changed ? ` (was ${r.link.previous})` : ''}\n`,
              );
            if (r.testedSignature) io.stdout(`tested signature: ${r.testedSignature}\n`);
          }
        }, flags);
      },
    );

  program
    .command('verify')
    .description('check links, checksums, permissions, leftovers and names; --repair fixes what is safe')
    .option('--deep', 're-hash every image instead of trusting unchanged files')
    .option('--repair', 'remove our own leftovers, make files readable, drop orphan records')
    .option(
      '--reconvert',
      'with --deep: convert each SIF in tested-containers again from the image or archive it names and compare byte for byte',
    )
    .option('--work-dir <dir>', 'where --reconvert writes its second conversions (default: the system temp directory)')
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout')
    .action(
      async (flags: {
        deep?: boolean;
        repair?: boolean;
        reconvert?: boolean;
        workDir?: string;
        root?: string;
        json?: boolean;
      }) => {
        process.exitCode = await runCommand(async (io) => {
          // Every flag checked before anything is read or repaired.
          if (flags.reconvert && !flags.deep) throw new InputError('bad-usage', '--reconvert goes with --deep');
          if (flags.workDir !== undefined) await requireDirectory(flags.workDir, '--work-dir');
          const tree = await openTree(resolveRoot(flags.root), false);
          let problems = await verifyTree(tree, { deep: flags.deep, signal: io.signal });
          // Repairs only when there is something to repair: otherwise no lock, no audit line.
          if (flags.repair && problems.some((p) => p.repairable)) {
            problems = await mutate(
              tree,
              'verify-repair',
              io.signal,
              async () => {
                // Taking the lock broke a stale one, if there was one: say so.
                const p = [
                  ...problems.filter((x) => x.kind === 'stale-lock').map((x) => ({ ...x, repaired: 'broken' })),
                  ...(await verifyTree(tree, { deep: flags.deep, repair: true, signal: io.signal })),
                ];
                return { value: p, files: p.filter((x) => x.repaired).map((x) => ({ path: x.path, op: x.repaired })) };
              },
              { resume: 'run sifkit verify --repair again to finish' },
            );
          }
          const reconverted = flags.reconvert
            ? await reconvertTree(tree, { signal: io.signal, workDir: flags.workDir })
            : undefined;
          if (reconverted) problems = [...problems, ...reconverted.problems];
          const lock = await lockHolder(tree.lock);
          const open = problems.filter((p) => !p.repaired);
          if (io.json)
            io.stdout(
              jsonDoc({
                ok: open.length === 0,
                problems,
                lock: lock ?? null,
                ...(reconverted ? { reconverted: reconverted.rows } : {}),
              }),
            );
          else {
            if (reconverted)
              io.stdout(
                table(
                  reconverted.rows.map((r) => [r.path, r.result, r.source ?? r.detail ?? '']),
                  [{ header: 'image', shrink: true }, 're-conversion', { header: 'source', shrink: true }],
                ),
              );
            // A live holder is shown; a stale one is among the problems.
            if (lock?.live) io.stdout(`lock: held by ${describeLock(lock)} (its work in progress was not checked)\n`);
            if (!problems.length) io.stdout('tree is clean\n');
            else io.stdout(problemLines(problems));
          }
          return open.length ? ExitCode.failed : ExitCode.ok;
        }, flags);
      },
    );
}

interface RetireCommandFlags extends RetireFlags {
  root?: string;
  json?: boolean;
}

/**
 * Flags `retire` would take and then not act on: `--purge` runs alone (it
 * deletes what an earlier --apply quarantined), and --grace-days only
 * means something to it. Taken silently, `retire --apply --purge` printed
 * nothing and quarantined nothing.
 */
function refuseIdleRetireFlags(flags: RetireCommandFlags): void {
  const root = flags.root === undefined ? [] : ['--root', flags.root];
  if (flags.purge) {
    const idle = [
      flags.apply && '--apply',
      flags.includeReferenced && '--include-referenced',
      flags.easyconfigs !== undefined && '--easyconfigs',
    ].filter((f): f is string => typeof f === 'string');
    if (idle.length)
      throw new InputError(
        'conflicting-flags',
        `--purge deletes what the quarantine already holds and takes no ${idle.join(', ')}`,
        {
          hint: `quarantine first, then purge: ${commandLine(['sifkit', 'retire', '--apply', ...root])}, then ${commandLine(['sifkit', 'retire', '--purge', ...root])}`,
        },
      );
  } else if (flags.graceDays !== undefined)
    throw new InputError('idle-flag', '--grace-days goes with --purge (the plan and --apply use the policy)');
}

export function registerRetire(program: Command): void {
  const retireCmd = program
    .command('retire')
    .description(
      'plan which old or broken images go (changes nothing); --apply quarantines them, --purge deletes quarantined ones',
    );
  addStageFlags(retireCmd, 'retire')
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout')
    .action(async (flags: RetireCommandFlags) => {
      process.exitCode = await runCommand(async (io) => {
        refuseIdleRetireFlags(flags);
        const policy = await loadPolicyFile(flags.policy);
        // Nothing is made here: a retire with nothing to do changes nothing.
        const tree = await openTree(resolveRoot(flags.root), false);
        if (flags.purge) {
          const r = await purge(tree, policy, { graceDays: graceDays(flags.graceDays), signal: io.signal });
          const unsaved = purgeError(r);
          if (io.json) io.stdout(jsonDoc({ ok: !unsaved, ...r }));
          else {
            for (const d of r.deleted) io.stdout(`purged ${d}\n`);
            for (const k of r.kept) io.stdout(`kept   ${k.name}: ${k.why}\n`);
            if (!r.deleted.length && !r.kept.length)
              io.stdout(`nothing in the quarantine of ${tree.root}: nothing to purge\n`);
          }
          return unsaved ? ExitCode.failed : ExitCode.ok;
        }
        const { plan, applied } = await retire(tree, {
          policy,
          easyconfigs: flags.easyconfigs,
          includeReferenced: flags.includeReferenced,
          apply: flags.apply,
          signal: io.signal,
        });
        const blocked = plan.decisions.filter((d) => d.action === 'blocked');
        if (io.json) io.stdout(jsonDoc({ ok: !blocked.length, applied, ...plan }));
        // An empty table would show only its headings.
        else if (!plan.decisions.length) io.stdout(`no images in ${tree.root}: nothing to retire\n`);
        else {
          // Images as headings (names are long and must stay whole), one row per directory it is in.
          const byImage = [...plan.decisions].sort((a, b) => (a.name === b.name ? 0 : a.name < b.name ? -1 : 1));
          const actionColour = (c: string) =>
            c === 'blocked' ? ('red' as const) : c.startsWith('retire') ? ('yellow' as const) : undefined;
          io.stdout(
            table(
              byImage.map((d) => [
                d.name,
                d.dir,
                d.action === 'retire' && applied ? 'retired' : d.action,
                d.rule,
                d.references.join(', ') || '-',
              ]),
              [
                { header: 'image', group: true },
                'in',
                { header: 'action', color: actionColour },
                'rule',
                { header: 'referenced by', shrink: true },
              ],
            ),
          );
          for (const a of plan.archive) io.stdout(`archive EasyConfig ${a.from} -> ${a.to}\n`);
          for (const l of plan.links)
            io.stdout(`${SIF_IMAGES}/${l.link}: ${l.to ? `-> ${l.to}` : 'remove'} (was ${l.from})\n`);
          if (!applied) io.stdout('(plan only: nothing changed; --apply carries it out)\n');
        }
        if (blocked.length) throw blockedError(plan);
      }, flags);
    });

  program
    .command('restore')
    .description('bring a retired image back from the quarantine')
    .argument('<name>', 'the image file name, or its dockerhash (12 hex digits, as status shows it)')
    .option('--dir <dir>', `${TESTED} or ${EASYBUILD}, when it was retired from both`)
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout')
    .action(async (name: string, flags: { dir?: string; root?: string; json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const tree = await openTree(resolveRoot(flags.root), false);
        const r = await restore(tree, name, { dir: flags.dir, signal: io.signal });
        if (io.json) io.stdout(jsonDoc({ ok: true, ...r }));
        else
          io.stdout(
            r.already ? `${r.restored} is in the tree already; nothing to restore\n` : `restored ${r.restored}\n`,
          );
      }, flags);
    });
}

/**
 * verify's problems for people: kind, path and repair state on one line,
 * the detail wrapped beneath it. The detail is what says what to do, so it
 * is never cut to fit a table.
 */
function problemLines(problems: Problem[]): string {
  return problems
    .map((p) => {
      const state = p.repaired ? `repaired: ${p.repaired}` : p.repairable ? 'repairable (--repair)' : 'not repairable';
      return `${p.kind}  ${p.path}  (${state})\n${wrapWords(['   ', ...p.message.split(' ')], 100, '    ')}`;
    })
    .join('');
}
