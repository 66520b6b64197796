/**
 * `npm run bench`: every benchmark, sifkit beside its baseline in the same
 * run, one table. SIFKIT_BENCH_GIB sets the data size (default 1).
 */
import { buildBenches } from './build.bench';
import { renderBench } from './render.bench';
import { printTable, type Figure } from './table';

async function main(): Promise<void> {
  const gib = Number(process.env.SIFKIT_BENCH_GIB ?? '1');
  const figures: Figure[] = [];
  figures.push(...(await renderBench()));
  figures.push(...(await buildBenches(gib)));
  printTable(figures);
  const rss = process.memoryUsage().rss / 1048576;
  console.log(`peak-ish RSS of the bench process: ${rss.toFixed(0)} MiB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
