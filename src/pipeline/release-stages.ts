/**
 * The release stages after build: convert, test, stage, promote, retire.
 * Each knows when its work is already done and still valid (same image,
 * same SIF, a passing run on record, the checksum matching) and skips, so
 * a run after a failure or an interruption continues where it stopped.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { convertSource, recordOf, sourceText, type Source } from '../convert/convert';
import { archiveOfImage, sifOfImage } from '../convert/existing';
import { saveScanConvert } from '../convert/one-read';
import { judgeDeferredScan } from '../engine/build';
import { runFailure, runTests, type GateInputs } from '../checks/run';
import { builtTarget } from '../checks/target';
import { DEFAULT_RESULTS_DIR, passedNow, readResults, resultsPath } from '../checks/results';
import { runGateSummary } from '../checks/gate';
import { stagedEntry } from '../tree/checksum';
import { isPromoted } from '../tree/links';
import { promote, type PromoteTarget } from '../tree/promote';
import { EASYBUILD, type Tree } from '../tree/root';
import { stage } from '../tree/stage';
import { loadPolicyFile } from '../tree/policy-file';
import { blockedError, purge, purgeError, retire } from '../tree/retire';
import type { PipelineContext, Stage, VariantState } from './context';
import { compatBeforeTests } from './compat-gate';
import { engineFor } from './engines';
import { built, dockerArchivePath, sifName, sifPath } from './outputs';
import { STAGE_WITH, type PromoteWith, type RetireWith, type TestWith } from './stage-with';
import { attested, attestVariant } from './attest';

/** The tree the caller opened for this run (never opened again here). */
function treeOf(ctx: PipelineContext): Tree {
  const tree = ctx.options.tree;
  if (!tree)
    throw new InputError(
      'no-root',
      'this pipeline stages and promotes: give --root DIR (or set LUMI_CONTAINER_REPOSITORY_ROOT)',
    );
  return tree;
}

function resultsDir(ctx: PipelineContext): string {
  return path.resolve(ctx.options.resultsDir ?? DEFAULT_RESULTS_DIR);
}

/**
 * The variant's SIF and docker archive as staged in the tree, when they
 * are. Once staged, the tree's copies are their one home: the stage removes
 * the copies in the output directory (tens of GB each), so archive and
 * convert skip on the staged ones when a rerun finds --out empty.
 */
async function stagedCopies(
  ctx: PipelineContext,
  v: VariantState,
): Promise<{ sif: string; size: number; archive?: { path: string; size: number } } | undefined> {
  const tree = ctx.options.tree;
  if (!tree) return undefined;
  const entry = await stagedEntry(tree, sifName(v), ctx.signal);
  if (!entry) return undefined;
  const a = entry.archive;
  return {
    sif: path.join(tree.tested, entry.name),
    size: entry.size,
    archive:
      a && existsSync(path.join(tree.tested, a.name))
        ? { path: path.join(tree.tested, a.name), size: a.size }
        : undefined,
  };
}

/** Whether the output directory still holds a copy of the variant's SIF or docker archive. */
function outCopies(ctx: PipelineContext, v: VariantState): string[] {
  return [sifPath(ctx, v), dockerArchivePath(ctx, v)].filter((f) => existsSync(f));
}

/**
 * `docker save` of the built image into the output directory, beside its
 * SIF: staged with it into tested-containers, and what a Slurm conversion
 * job reads. The one read of the image (convert/one-read.ts): the same
 * stream feeds the leak scan the build left to it and, when this pass
 * converts natively, the converter. Published by rename, so a file under
 * the name is complete.
 */
export const archiveStage: Stage = {
  name: 'archive',
  title: 'Save the docker archive',
  needs: ['rendered', 'build'],
  gives: ['archive'],
  async skip(ctx, v) {
    // An image not judged yet is read now, whatever files are there.
    if (v.pendingScan) return undefined;
    const file = dockerArchivePath(ctx, v);
    const st = await fs.stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      const staged = (await stagedCopies(ctx, v))?.archive;
      if (!staged) return undefined;
      v.results.archive = staged;
      return `${path.basename(file)} is staged in the tree`;
    }
    v.results.archive = { path: file, size: st.size };
    return `${path.basename(file)} is there`;
  },
  async run(ctx, v, report) {
    const file = dockerArchivePath(ctx, v);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const b = built(v);
    const engine = await engineFor(ctx, v);
    const pending = v.pendingScan;
    const sif = (await convertsAlongside(ctx, v)) ? sifPath(ctx, v) : undefined;
    const started = Date.now();
    const read = () =>
      saveScanConvert(engine, b.imageId, {
        ...ctx.options.convert,
        signal: ctx.signal,
        archive: file,
        sif,
        source: { bootstrap: 'docker-daemon', from: b.imageId },
        needles: pending?.plan.needles,
        judge: pending
          ? async (scan) => {
              b.leakScan = await judgeDeferredScan(engine, pending, scan);
            }
          : undefined,
        onProgress: (line) => report.progress(line),
      });
    if (sif) report.progress('waiting for a conversion slot');
    const r = sif ? await ctx.run.slots.use('convert', read) : await read();
    v.pendingScan = undefined;
    v.results.archive = { path: file, size: r.archiveSize };
    // Converted here: the convert stage only attests it.
    if (sif && r.convert)
      v.results.convert = recordOf(sourceText({ kind: 'docker-daemon', ref: b.imageId }), sif, started, r.convert);
    report.title(
      `Saved ${path.basename(file)} (${(r.archiveSize / 1048576).toFixed(0)} MiB${r.scan ? ', scanned' : ''}${r.convert ? ', converted' : ''})`,
    );
  },
};

/**
 * Whether the archive stage converts too: the convert stage follows in
 * this pass (not on Slurm), natively, and no SIF of this image is there.
 */
async function convertsAlongside(ctx: PipelineContext, v: VariantState): Promise<boolean> {
  const pass = ctx.pass ?? [];
  if (!(pass.indexOf('convert') > pass.indexOf('archive'))) return false;
  if ((ctx.options.convert?.backend ?? 'native') !== 'native') return false;
  return !(await sifOfImage(sifPath(ctx, v), built(v).imageId));
}

export const convertStage: Stage = {
  name: 'convert',
  title: 'Convert to SIF',
  needs: ['rendered', 'build'],
  gives: ['convert'],
  async skip(ctx, v) {
    let out = sifPath(ctx, v);
    let where = 'is there';
    if (!existsSync(out)) {
      const staged = await stagedCopies(ctx, v);
      if (!staged) return undefined;
      [out, where] = [staged.sif, 'is staged in the tree'];
    }
    const s = await sifOfImage(out, built(v).imageId);
    // Converted but not attested (or not signed, when the run signs): convert again, attest after.
    if (!s || !(await attested(ctx, s))) return undefined;
    v.results.convert = {
      out,
      backend: 'native',
      source: sourceText({ kind: 'docker-daemon', ref: built(v).imageId }),
      size: (await fs.stat(out)).size,
      durationMs: 0,
    };
    return `${path.basename(out)} ${where} for this image`;
  },
  async run(ctx, v, report) {
    const out = sifPath(ctx, v);
    await fs.mkdir(path.dirname(out), { recursive: true });
    const engine = await engineFor(ctx, v);
    // Converted by the archive stage's read of the image, in this run: attested here.
    const alongside = v.results.convert?.out === out ? v.results.convert : undefined;
    // Else the image's archive when it is there (a SIF removed, or converted in a later pass), not a new
    // export: what the archive stage wrote (or found) under the variant's name.
    const archiveFile = v.results.archive?.path ?? dockerArchivePath(ctx, v);
    const archive = !alongside && (await archiveOfImage(archiveFile, built(v).imageId)) ? archiveFile : undefined;
    // The image this run built, by its ID as held (or its archive, checked to be of that ID): no text
    // to parse back, and the same object for the conversion and the provenance. Its scan is not asked
    // again: build returns an image only once its leak scan passed (or had passed) for that ID.
    const source: Source = archive
      ? { kind: 'docker-archive', path: archive }
      : { kind: 'docker-daemon', ref: built(v).imageId };
    if (!alongside) report.progress('waiting for a conversion slot');
    const r =
      alongside ??
      (await ctx.run.slots.use('convert', () => {
        report.progress(`${archive ? path.basename(archive) : 'docker export'} | mksquashfs -> ${out}`);
        return convertSource(source, out, { ...ctx.options.convert, signal: ctx.signal, engine });
      }));
    report.progress('SBOM, provenance and signature');
    const a = await attestVariant(ctx, v, out, source);
    v.results.convert = { ...r, size: (await fs.stat(out)).size };
    report.title(
      `Converted ${path.basename(out)} (${(r.size / 1048576).toFixed(0)} MiB, ${(r.durationMs / 1000).toFixed(0)} s; ${a.already ? 'SBOM kept' : `SBOM of ${a.packages} packages`}${a.signature ? ', signed' : ''})`,
    );
  },
};

/** The gate's tolerance: the command line's, else the pipeline file's (checked at load), else 10 %. */
function tolerance(ctx: PipelineContext, w: TestWith): number {
  if (ctx.options.tolerance !== undefined) return ctx.options.tolerance;
  return w.tolerance ?? 0.1;
}

/** The gate's inputs for a run: the tree the run holds (never opened again here), a --baseline, the tolerance, --no-gate. */
export async function gateInputs(ctx: PipelineContext, w: TestWith): Promise<GateInputs> {
  return {
    tree: ctx.options.tree,
    baseline: ctx.options.test?.baseline,
    tolerance: tolerance(ctx, w),
    gate: ctx.options.test?.gate ?? true,
  };
}

export const testStage: Stage = {
  name: 'test',
  title: 'Test the image',
  needs: ['rendered', 'build'],
  gives: ['test'],
  with: STAGE_WITH.test,
  async skip(ctx, v) {
    // The latest run decides: a failed or gate-refused run is tested again, never skipped.
    const doc = await readResults(resultsPath(resultsDir(ctx), sifName(v))).catch(() => undefined);
    const run = passedNow(doc?.runs);
    if (!run) return undefined;
    v.results.test = run;
    return `passed on ${run.finished.slice(0, 16).replace('T', ' ')} (${run.runner})`;
  },
  async run(ctx, v, report, w) {
    if (v.results.convert) await compatBeforeTests(ctx, v, { kind: 'sif', path: v.results.convert.out });
    const runner = ctx.options.runner ?? (w as TestWith).runner ?? 'local';
    const engine = await engineFor(ctx, v);
    // What this run holds: the image it built (and its SIF: Slurm runs the SIF, or the image, as the
    // recipe's container command says), the recipe it loaded, the tree it opened.
    const names = v.rendered!.names;
    const target = builtTarget(
      built(v),
      names.stem,
      ctx.recipe.name,
      { ...v.values },
      v.rendered!.labels,
      runner === 'slurm' ? v.results.convert?.out : undefined,
    );
    const o = await runTests(target, ctx.recipe, {
      runner,
      resultsDir: resultsDir(ctx),
      ...(await gateInputs(ctx, w as TestWith)),
      only: ctx.options.test?.only,
      // One job directory per image: variants tested at once never share one.
      workdir: ctx.options.test?.workdir
        ? path.join(ctx.options.test.workdir, sifName(v).replace(/\.sif$/, ''))
        : undefined,
      slurm: ctx.options.test?.slurm,
      signal: ctx.signal,
      engine,
      onCheck: (r) => report.progress(`${r.passed ? 'pass' : 'FAIL'} ${r.name}${r.reason ? `: ${r.reason}` : ''}`),
    });
    v.results.test = o.run;
    const failure = runFailure(o.run, { resultsFile: o.resultsFile });
    if (failure) throw failure;
    report.title(`Tested: ${o.run.checks.length} checks passed (${runner})`);
  },
};

export const stagingStage: Stage = {
  name: 'stage',
  title: 'Stage into tested-containers',
  needs: ['rendered', 'build'],
  gives: ['stage'],
  async skip(ctx, v) {
    const tree = treeOf(ctx);
    const name = sifName(v);
    const entry = await stagedEntry(tree, name, ctx.signal);
    // A copy left in --out (a run stopped between staging and removing it): staged again, then removed.
    if (!entry || outCopies(ctx, v).length > 0) return undefined;
    v.results.stage = {
      name,
      path: path.join(tree.tested, name),
      sha256: entry.sha256,
      size: entry.size,
      already: true,
      linked: false,
    };
    return 'staged, checksum matching';
  },
  async run(ctx, v, report) {
    const tree = treeOf(ctx);
    const runs =
      (await readResults(resultsPath(resultsDir(ctx), sifName(v))))?.runs ?? (v.results.test ? [v.results.test] : []);
    const file = v.results.convert?.out ?? sifPath(ctx, v);
    const archive = v.results.archive?.path;
    // Its --out copies go once staged (the tree's copies are then the one home): on the tree's file system
    // they go in by hard link, and stage() removes them under the lock before it records the tree's file.
    const removed = outCopies(ctx, v).filter((f) => f === file || f === archive);
    const r = await stage(tree, file, {
      archive,
      signal: ctx.signal,
      tests: runs,
      ...(!ctx.options.untested && { requireTests: { gateSummary: runGateSummary } }),
      link: true,
      removeAfter: removed,
    });
    v.results.stage = r;
    // The archive and convert stages of a rerun find them in the tree.
    if (v.results.convert?.out === file) v.results.convert = { ...v.results.convert, out: r.path };
    if (archive && r.archive)
      v.results.archive = { path: path.join(tree.tested, r.archive), size: v.results.archive!.size };
    report.title(
      `Staged ${r.name}${r.linked ? ' (hard-linked, not copied)' : ''}${removed.length ? `; removed from --out: ${removed.map((f) => path.basename(f)).join(', ')}` : ''}`,
    );
  },
};

/** The command line's target, else the pipeline file's (both checked before the run), else all. */
function promoteTo(ctx: PipelineContext, w: PromoteWith): PromoteTarget {
  return ctx.options.to ?? w.to ?? 'all';
}

export const promoteStage: Stage = {
  name: 'promote',
  title: 'Promote',
  needs: ['rendered', 'build'],
  gives: ['promote'],
  with: STAGE_WITH.promote,
  async skip(ctx, v, w) {
    const tree = treeOf(ctx);
    const name = sifName(v);
    const to = promoteTo(ctx, w as PromoteWith);
    const done = await isPromoted(tree, name, v.rendered!.names.stem, {
      file: to !== 'sif-images',
      link: to !== 'easybuild-sif-images',
    });
    return done ? `already in ${to === 'all' ? `${EASYBUILD} and linked` : to}` : undefined;
  },
  async run(ctx, v, report, w) {
    const tree = treeOf(ctx);
    const r = await promote(tree, sifName(v), {
      to: promoteTo(ctx, w as PromoteWith),
      rollback: ctx.options.rollback,
      testedKey: ctx.options.testedKey,
      compat: ctx.options.compat,
      signal: ctx.signal,
    });
    v.results.promote = r;
    report.title(
      `Promoted${r.easybuild ? ` to ${EASYBUILD}` : ''}${r.link ? `, ${path.basename(r.link.path)} -> ${path.basename(r.link.target)}` : ''}`,
    );
  },
};

/**
 * Retire runs once per pipeline run, whatever the number of variants. Like
 * `sifkit retire`, it only plans unless told to apply, and a broken image
 * still referenced is refused.
 */
export const retireStage: Stage = {
  name: 'retire',
  title: 'Retire old versions',
  gives: ['retire'],
  with: STAGE_WITH.retire,
  async run(ctx, v, report, with_) {
    const w = with_ as RetireWith;
    const r = await ctx.run.retire.get(async () => {
      const tree = treeOf(ctx);
      const o = ctx.options;
      const policy = await loadPolicyFile(o.policy ?? w.policy);
      const easyconfigs = o.easyconfigs ?? w.easyconfigs;
      const r = await retire(tree, {
        policy,
        easyconfigs: easyconfigs ? path.resolve(easyconfigs) : undefined,
        includeReferenced: o.includeReferenced ?? w['include-referenced'] === true,
        apply: o.apply === true || w.apply === true,
        signal: ctx.signal,
      });
      if (r.plan.decisions.some((d) => d.action === 'blocked')) throw blockedError(r.plan);
      // As `sifkit retire --purge`: the policy's backup first, then the delete.
      if (!o.purge) return r;
      const purged = await purge(tree, policy, { graceDays: o.graceDays, signal: ctx.signal });
      const unsaved = purgeError(purged);
      if (unsaved) throw unsaved;
      return { ...r, purge: purged };
    });
    v.results.retire = r;
    const going = r.plan.decisions.filter((d) => d.action === 'retire');
    // Named, so the plan can be judged from the run's output alone.
    const names = going.map((d) => `${d.dir}/${d.name}`);
    report.title(
      `Retire: ${going.length} image(s) ${r.applied ? 'quarantined' : 'to retire (plan only: --apply carries it out)'}${names.length ? `: ${names.join(', ')}` : ''}${r.purge ? `; purged ${r.purge.deleted.length}, kept ${r.purge.kept.length}` : ''}`,
    );
  },
};
