import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { easyconfigText } from '../../src/easybuild/easyconfig';
import type { ImageFacts } from '../../src/easybuild/facts';
import { loadRecipe } from '../../src/recipe/load';
import { sifFileName, variantNames } from '../../src/recipe/names';
import { resolveValues } from '../../src/recipe/params';
import { easyconfigValues } from '../support/easyconfig';
import { DIFFERENCES, type LumiVariant } from '../support/lumi-differences';

/**
 * Issue 18.3: sifkit's EasyConfig for each variant LUMI ships, field by
 * field against LUMI's published one (Lumi-supercomputer/
 * LUMI-EasyBuild-containers @ af6fb1c5ab09: m/mpi4py/mpi4py-3.1.6-rocm-6.2.0-
 * python-3.12-singularity-20241007.eb and __archive__/m/mpi4py/mpi4py-3.1.4-
 * rocm-5.4.5-python-3.10-singularity-20240207.eb). LUMI's values are kept
 * here as data (names, versions, URLs, bind lists), read with python3 from
 * LUMI's files; every field that differs is in test/support/lumi-differences.ts.
 */
// python3 reads each EasyConfig: slow on a loaded machine.
jest.setTimeout(60_000);

interface LumiEasyconfig {
  given: Record<string, string>;
  dockerhash: string;
  date: string;
  fields: Record<string, unknown>;
}

const sif620 = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6-dockerhash-f049c8bd4669.sif';
const sif545 = 'lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4-dockerhash-6f5094cb4f33.sif';
const homepage = 'https://github.com/mpi4py/mpi4py';
const docurls = ['mpi4py web-based manual: https://mpi4py.readthedocs.io/en/'];
const runscripts = { RUNSCRIPTS: '%(installdir)s/runscripts', RUNSCRIPTSMPI4PY: '%(installdir)s/runscripts' };
const binds = (jansson: boolean) =>
  `/var/spool/slurmd,/opt/cray,/usr/lib64/libcxi.so.1,${jansson ? '/usr/lib64/libjansson.so.4,' : ''}%(installdir)s/runscripts:/runscripts,/pfs,/scratch,/projappl,/project,/flash,/appl`;

const LUMI: Record<LumiVariant, LumiEasyconfig> = {
  '6.2.0': {
    given: { rocm: '6.2.0', python: '3.12', mpi4py: '3.1.6' },
    dockerhash: 'f049c8bd4669',
    date: '20241007',
    fields: {
      easyblock: 'MakeCp',
      local_version: '3.1.6',
      local_rocm_version: '6.2.0',
      local_python_version: '3.12',
      local_date: '20241007',
      local_hash: 'f049c8bd4669',
      local_sif: sif620,
      name: 'mpi4py',
      version: '3.1.6',
      versionsuffix: '-rocm-6.2.0-python-3.12-singularity-20241007',
      homepage,
      whatis: ['<prose>'],
      docurls,
      toolchain: { name: 'system', version: 'system' },
      sources: [{ filename: sif620, extract_cmd: '/bin/cp %s .' }],
      skipsteps: ['build'],
      files_to_copy: [[[sif620], '.']],
      postinstallcmds: '<scripts>',
      sanity_check_paths: { files: ['bin/start-shell', 'runscripts/conda-python-simple'], dirs: [] },
      SINGULARITY_BIND: binds(false),
      modextravars: runscripts,
      modluafooter: [sif620, 'mpi4py', '%(installdir)s'],
      moduleclass: 'devel',
    },
  },
  '5.4.5': {
    given: {
      rocm: '5.4.5',
      python: '3.10',
      mpi4py: '3.1.4',
      cupy: '12.2.0',
      bci: '15.3.17.20.145',
      miniconda: 'py310_23.3.1-0',
      cpe: '23.03',
      mpich: '8.1.25',
      crayclang: '10.0',
    },
    dockerhash: '6f5094cb4f33',
    date: '20240207',
    fields: {
      easyblock: 'MakeCp',
      local_sif: sif545,
      name: 'mpi4py',
      version: '3.1.4',
      versionsuffix: '-rocm-5.4.5-python-3.10-singularity-20231110',
      homepage,
      whatis: ['<prose>'],
      docurls,
      toolchain: { name: 'system', version: 'system' },
      sources: [{ filename: sif545, extract_cmd: '/bin/cp %s .' }],
      skipsteps: ['build'],
      files_to_copy: [[[sif545], '.']],
      postinstallcmds: '<scripts>',
      sanity_check_paths: { files: [], dirs: ['runscripts'] },
      SINGULARITY_BIND: binds(true),
      modextravars: runscripts,
      modluafooter: [sif545, 'mpi4py', '%(installdir)s'],
      moduleclass: 'devel',
    },
  },
};

/** sifkit's fields in the shape LUMI's are kept: the bind list apart, the footer as its call's arguments. */
function comparable(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...v };
  const extra = { ...(v.modextravars as Record<string, string>) };
  out.SINGULARITY_BIND = extra.SINGULARITY_BIND;
  delete extra.SINGULARITY_BIND;
  out.modextravars = extra;
  const call = /create_container_vars\(\s*'([^']*)',\s*'([^']*)',\s*'([^']*)'\s*\)/.exec(String(v.modluafooter));
  out.modluafooter = call ? call.slice(1) : v.modluafooter;
  return out;
}

describe.each(Object.keys(LUMI) as LumiVariant[])("sifkit's EasyConfig against LUMI's for ROCm %s", (variant) => {
  let ours: Record<string, unknown>;
  beforeAll(async () => {
    const lumi = LUMI[variant];
    const recipe = await loadRecipe('mpi4py');
    const values = resolveValues(recipe, lumi.given);
    const names = variantNames(recipe.naming, values, lumi.date);
    const stem = `lumi-mpi4py-rocm-${values.rocm}-python-${values.python}-mpi4py-${values.mpi4py}`;
    const facts: ImageFacts = {
      sifName: sifFileName(stem, lumi.dockerhash),
      sifPath: '/nowhere',
      stem,
      dockerhash: lumi.dockerhash,
      recipe,
      values,
      appVersion: values.mpi4py,
      names,
      date: lumi.date,
      labels: {},
      withConda: 'source /opt/miniconda3/bin/activate mpi4py',
    };
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-golden-'));
    try {
      await fs.writeFile(path.join(dir, names.easyconfig), easyconfigText(facts));
      ours = comparable(easyconfigValues(path.join(dir, names.easyconfig)));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  const listed = (field: string) =>
    DIFFERENCES.some((d) => d.kind === 'easyconfig' && d.what === field && d.variants.includes(variant));

  it('has every field LUMI has equal, or listed as an accepted difference that really differs', () => {
    for (const [field, want] of Object.entries(LUMI[variant].fields)) {
      if (listed(field)) expect([field, ours[field]]).not.toEqual([field, want]);
      else expect([field, ours[field]]).toEqual([field, want]);
    }
  });

  it('adds no EasyBuild field of its own that is not listed', () => {
    const skip = new Set(['SYSTEM', 'description', 'local_runscript_python_simple', 'local_bin_start_shell']);
    const extra = Object.keys(ours).filter((k) => !skip.has(k) && !(k in LUMI[variant].fields));
    for (const field of extra) expect([field, listed(field)]).toEqual([field, true]);
  });

  it('has a non-empty help text (description), in our words', () => {
    expect(String(ours.description)).toMatch(/SIFMPI4PY/);
    expect(String(ours.description)).toMatch(/\$WITH_CONDA/);
  });
});

describe('the list of accepted differences', () => {
  it('gives a reason for every entry', () => {
    for (const d of DIFFERENCES) expect([d.what, d.reason.length > 20]).toEqual([d.what, true]);
  });
});
