/** The pull request's paths, title and body for a release. Pure. */
import type { CheckResult } from '../checks/judge';
import { mdCode, mdText } from '../emit/markdown';
import type { TestRun } from '../checks/results';
import type { ImageFacts } from '../easybuild/facts';

export const EASYCONFIGS = 'easybuild/easyconfigs';

/** `easybuild/easyconfigs/m/mpi4py`, as LUMI's contrib repository lays them out. */
export function packageDir(name: string): string {
  return `${EASYCONFIGS}/${name[0].toLowerCase()}/${name}`;
}

/** Where retire moves an EasyConfig: `easybuild/easyconfigs/__archive__/m/mpi4py/<file>`. */
export function easyconfigArchivePath(name: string, file: string): string {
  return `${EASYCONFIGS}/__archive__/${name[0].toLowerCase()}/${name}/${file}`;
}

export function branchName(f: ImageFacts): string {
  return `sifkit/${f.names.easyconfig.replace(/\.eb$/, '')}`;
}

function figureLine(c: CheckResult): string {
  const pts = c.figures?.points ?? [];
  if (!pts.length) return '';
  const pick = [pts[0], pts[Math.floor(pts.length / 2)], pts[pts.length - 1]];
  return pick.map((p) => `${p.size} B: ${p.value} ${c.figures?.unit ?? ''}`.trim()).join(', ');
}

/**
 * The pull request's body. Every value, from the image's labels, the
 * ledger or a test's output, enters the Markdown through its emitter:
 * names as code spans, everything else as plain text.
 */
export function prBody(f: ImageFacts, sizeBytes: number | undefined, runs: TestRun[]): string {
  const latest = runs[runs.length - 1];
  const lines = [
    `New container release for ${mdCode(`module load ${f.names.module}`)}, prepared by sifkit.`,
    '',
    '| | |',
    '|---|---|',
    `| image | ${mdCode(f.sifName)} |`,
    `| dockerhash | ${mdCode(f.dockerhash)} |`,
    `| sha256 | ${f.sha256 ? mdCode(f.sha256) : 'not in the tree ledger'} |`,
    ...(sizeBytes ? [`| size | ${(sizeBytes / 1048576).toFixed(1)} MiB |`] : []),
    `| versions | ${mdText(f.recipe.naming.parts.map(([l, p]) => `${l} ${f.values[p]}`).join(', '))} |`,
    ...(f.definitionHash ? [`| definition hash | ${mdCode(f.definitionHash.slice(0, 16))} |`] : []),
    '',
  ];
  if (latest) {
    lines.push(
      `### Tests (${mdText(`${latest.runner}${latest.jobId ? `, job ${latest.jobId}` : ''}, ${latest.finished.slice(0, 10)}`)}): ${latest.passed ? 'passed' : 'FAILED'}`,
      '',
      '| check | result | time | figures |',
      '|---|---|---|---|',
    );
    for (const c of latest.checks)
      lines.push(
        `| ${mdText(c.name)} | ${c.passed ? 'pass' : `**${mdText(c.outcome)}**${c.reason ? ` ${mdText(`(${c.reason})`)}` : ''}`} | ${(c.durationMs / 1000).toFixed(1)} s | ${mdText(figureLine(c))} |`,
      );
  } else lines.push('### Tests', '', 'No test run is recorded for this image.');
  lines.push(
    '',
    'Files: the EasyConfig, the Docker definition it installs under `share/docker-defs`, and the user page.',
  );
  return lines.join('\n') + '\n';
}
