import type { Command } from 'commander';
import { collect, jsonDoc, table, wrapWords } from './output';
import { runCommand } from './run';
import { filterStatus, parseWhere, statusTable } from './status-view';
import { ROOT_HELP } from './tree';
import { describeLock, lockHolder, openTree, resolveRoot, treeStatus } from '../index';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('every image in the tree: stem, dockerhash, parameters, where it is, link, size, age, checksum state')
    .option('--stem <stem>', 'only images of this stem (* matches anything)')
    .option('--where <name=value>', 'only images whose parameter has this value (repeatable, all must hold)', collect)
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout')
    .action(async (flags: { root?: string; json?: boolean; stem?: string; where?: string[] }) => {
      process.exitCode = await runCommand(async (io) => {
        const where = parseWhere(flags.where);
        const tree = await openTree(resolveRoot(flags.root), false);
        const s = filterStatus(await treeStatus(tree), { stem: flags.stem, where });
        const lock = await lockHolder(tree.lock);
        if (io.json) {
          io.stdout(jsonDoc({ ok: true, ...s, lock: lock ?? null }));
          return;
        }
        if (lock) io.stdout(`lock: held by ${describeLock(lock)}\n`);
        if (!s.images.length) io.stdout(`no images${flags.stem || where.length ? ' match' : ` in ${s.root}`}\n`);
        else {
          const t = statusTable(s.images);
          io.stdout(table(t.rows, t.columns));
          if (t.shared.length)
            io.stdout(wrapWords([`${s.images.length === 1 ? 'parameters' : 'every image has'}:`, ...t.shared], 100));
        }
        const dangling = s.links.filter((l) => l.dangling);
        if (dangling.length)
          io.stdout(`dangling links: ${dangling.map((l) => l.name).join(', ')} (run sifkit verify)\n`);
        // A tree without a policy works as before: said on stderr, so the table's output stays the same.
        if (s.trustPolicy) io.stdout(`trust policy: ${s.trustPolicy}\n`);
        else io.stderr('sifkit: note: no trust policy in this tree: signatures are not enforced (docs/signing.md)\n');
      }, flags);
    });
}
