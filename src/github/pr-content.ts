/** The pull request's paths, title and body for a release. Pure. */
import type { CheckResult } from '../checks/judge';
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

export function prBody(f: ImageFacts, sizeBytes: number | undefined, runs: TestRun[]): string {
  const latest = runs[runs.length - 1];
  const lines = [
    `New container release for \`module load ${f.names.module}\`, prepared by sifkit.`,
    '',
    '| | |',
    '|---|---|',
    `| image | \`${f.sifName}\` |`,
    `| dockerhash | \`${f.dockerhash}\` |`,
    `| sha256 | ${f.sha256 ? `\`${f.sha256}\`` : 'not in the tree ledger'} |`,
    ...(sizeBytes ? [`| size | ${(sizeBytes / 1048576).toFixed(1)} MiB |`] : []),
    `| versions | ${f.recipe.naming.parts.map(([l, p]) => `${l} ${f.values[p]}`).join(', ')} |`,
    ...(f.definitionHash ? [`| definition hash | \`${f.definitionHash.slice(0, 16)}\` |`] : []),
    '',
  ];
  if (latest) {
    lines.push(`### Tests (${latest.runner}${latest.jobId ? `, job ${latest.jobId}` : ''}, ${latest.finished.slice(0, 10)}): ${latest.passed ? 'passed' : 'FAILED'}`, '', '| check | result | time | figures |', '|---|---|---|---|');
    for (const c of latest.checks) lines.push(`| ${c.name} | ${c.passed ? 'pass' : `**${c.outcome}**${c.reason ? ` (${c.reason})` : ''}`} | ${(c.durationMs / 1000).toFixed(1)} s | ${figureLine(c)} |`);
  } else lines.push('### Tests', '', 'No test run is recorded for this image.');
  lines.push('', 'Files: the EasyConfig, the Docker definition it installs under `share/docker-defs`, and the user page.');
  return lines.join('\n') + '\n';
}
