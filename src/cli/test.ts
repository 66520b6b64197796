import * as path from 'node:path';
import type { Command } from 'commander';
import { promises as fs } from 'node:fs';
import { humanDuration, jsonDoc, table } from './output';
import { errorLine, runCommand } from './run';
import { addStageFlags, testSettings, type TestFlags } from './stage-flags';
import {
  DEFAULT_RESULTS_DIR,
  commandLine,
  ExitCode,
  gateError,
  gateSummary,
  InputError,
  listLedger,
  openTree,
  readAllResults,
  recipeForTarget,
  resultsDirFor,
  reportHtml,
  resolveTarget,
  runTests,
  runVerdict,
  treeStatus,
  type TestRun,
  writeFileAtomic,
} from '../index';

interface TestCommandFlags extends TestFlags {
  recipe?: string;
  root?: string;
  json?: boolean;
}

export function registerTest(program: Command): void {
  const cmd = program
    .command('test')
    .description("run the recipe's checks on an image, locally through the engine or through Slurm")
    .argument('<target>', 'an image in the engine (tag or ID) or a .sif file')
    .option('--recipe <name>', 'whose checks (default: the recipe named in the image labels)')
    .option('--root <dir>', 'container tree: record the run in its ledger and gate against the promoted image');
  addStageFlags(cmd, 'test')
    .option('--json', 'print one JSON document on stdout')
    .action(async (target: string, flags: TestCommandFlags) => {
      process.exitCode = await runCommand(async (io) => {
        const settings = testSettings(flags, flags.root);
        // The strings of the command line, parsed once: the image, its recipe, the tree.
        const image = await resolveTarget(target, io.signal);
        const recipe = await recipeForTarget(image, flags.recipe);
        const tree = flags.root ? await openTree(path.resolve(flags.root), false) : undefined;
        const o = await runTests(image, recipe, {
          ...settings,
          tree,
          signal: io.signal,
          onCheck: (r) => {
            if (!io.json)
              io.stderr(
                `${r.passed ? 'pass' : 'FAIL'} ${r.name} (${(r.durationMs / 1000).toFixed(1)} s)${r.reason ? `: ${r.reason}` : ''}\n`,
              );
          },
          onState: (s) => {
            if (!io.json && process.stderr.isTTY) io.stderr(`\rslurm job: ${s}   `);
          },
        });
        if (io.json) io.stdout(jsonDoc({ ok: o.run.passed, ...o }));
        else {
          io.stdout(
            table(
              o.run.checks.map((c) => [
                c.name,
                c.passed ? 'passed' : c.outcome,
                humanDuration(c.durationMs),
                c.figures ? `${c.figures.points.length} ${c.figures.kind} figures` : '',
                c.reason ?? '',
              ]),
              [
                'check',
                { header: 'result', color: (r) => (r === 'passed' ? 'green' : 'red') },
                { header: 'time', align: 'right' },
                'figures',
                { header: 'why', shrink: true },
              ],
            ),
          );
          io.stdout(`results: ${o.resultsFile}${o.recordedInTree ? ' (and the tree ledger)' : ''}\n`);
          const g = o.run.gate;
          if (g?.verdict === 'off') io.stdout('gate: off (--no-gate)\n');
          else if (g)
            io.stdout(
              `gate: ${g.verdict} against ${g.baseline} (${g.source}), ${gateSummary(g.regressions, 'it', g.tolerance)}\n`,
            );
        }
        const verdict = runVerdict(o.run);
        if (verdict === 'failed') return ExitCode.failed;
        if (verdict === 'refused') {
          const e = gateError(o.run, path.dirname(o.resultsFile));
          // With --json the document above is the one on stdout; the refusal is its ok: false, and a line on stderr.
          if (!io.json) throw e;
          io.stderr(`sifkit: error: ${errorLine(e).message}\n`);
          return e.exitCode;
        }
        return ExitCode.ok;
      }, flags);
    });

  program
    .command('report')
    .description('an HTML page with benchmark charts (one line per image version) and the pass/fail table')
    .option(
      '--results-dir <dir>',
      `results files to read (default: those beside the tree with --root, else ${DEFAULT_RESULTS_DIR})`,
    )
    .option('--root <dir>', 'also read the runs recorded in this container tree')
    .option('--out <dir>', 'where index.html goes', '.sifkit/report')
    .option('--json', 'print one JSON document on stdout')
    .action(async (flags: { resultsDir?: string; root?: string; out: string; json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const tree = flags.root ? await openTree(path.resolve(flags.root), false) : undefined;
        const resultsDir = resultsDirFor(flags.resultsDir, tree?.root);
        const runs: TestRun[] = (await readAllResults(resultsDir)).flatMap((f) => f.runs);
        if (tree) for (const e of await listLedger(tree)) runs.push(...(e.tests ?? []));
        // The same run can be in both places: keep one.
        const unique = [...new Map(runs.map((r) => [`${r.image} ${r.started}`, r])).values()];
        if (!unique.length)
          throw new InputError(
            'no-results',
            `no test results in ${resultsDir}${tree ? ` nor in the tree's ledger (${tree.root})` : ''}`,
            // The image is the user's to name: the hint gives the command that says how, and where runs go.
            {
              hint: `test an image first (${commandLine(['sifkit', 'help', 'test'])} shows how); its runs go to ${resultsDir}${tree ? ` and, with --root ${tree.root}, to the tree's ledger` : ''}`,
            },
          );
        const out = path.resolve(flags.out);
        await fs.mkdir(out, { recursive: true });
        const file = path.join(out, 'index.html');
        // Which images users get: what the tree's links point at, as status reads them.
        const linked = tree
          ? new Set((await treeStatus(tree)).links.filter((l) => !l.dangling && l.image).map((l) => l.image!))
          : undefined;
        await writeFileAtomic(file, reportHtml(unique, new Date(), { linked }));
        if (io.json) io.stdout(jsonDoc({ ok: true, report: file, runs: unique.length }));
        else io.stdout(`${file}\n`);
      }, flags);
    });
}
