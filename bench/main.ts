/**
 * `npm run bench`: every benchmark, sifkit beside its baseline in the same
 * run, one table. SIFKIT_BENCH_GIB sets the data size (default 1).
 */
import { buildBenches } from './build.bench';
import { convertBenches } from './convert.bench';
import { treeBenches } from './tree.bench';
import { renderBench } from './render.bench';
import { stepsBench } from './step-count.bench';
import { tortureBench } from './torture';
import { scanBenches } from './scan.bench';
import { cacheBenches } from './cache.bench';
import { slurmBenches } from './slurm.bench';
import { fetchBenches } from './fetch.bench';
import { signBenches } from './sign.bench';
import { compatBenches } from './compat.bench';
import { stepsBenches } from './steps.bench';
import { printTable, type Figure } from './table';

async function main(): Promise<void> {
  const gib = Number(process.env.SIFKIT_BENCH_GIB ?? '1');
  const figures: Figure[] = [];
  // SIFKIT_BENCH_ONLY=convert,tree,torture runs a subset; the default is everything.
  const only = process.env.SIFKIT_BENCH_ONLY?.split(',');
  if (!only || only.includes('render')) figures.push(...(await renderBench()));
  if (!only || only.includes('stages')) figures.push(...(await stepsBench()));
  if (!only || only.includes('build')) figures.push(...(await buildBenches(gib)));
  if (!only || only.includes('convert')) figures.push(...(await convertBenches()));
  if (!only || only.includes('tree')) figures.push(...(await treeBenches()));
  if (!only || only.includes('torture')) figures.push(...(await tortureBench()));
  if (!only || only.includes('scan')) figures.push(...(await scanBenches()));
  if (!only || only.includes('cache')) figures.push(...(await cacheBenches()));
  if (!only || only.includes('slurm')) figures.push(...(await slurmBenches()));
  if (!only || only.includes('fetch')) figures.push(...(await fetchBenches()));
  if (!only || only.includes('sign')) figures.push(...(await signBenches(gib)));
  if (!only || only.includes('compat')) figures.push(...(await compatBenches()));
  if (!only || only.includes('steps')) figures.push(...(await stepsBenches()));
  printTable(figures);
  const rss = process.memoryUsage().rss / 1048576;
  console.log(`peak-ish RSS of the bench process: ${rss.toFixed(0)} MiB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
