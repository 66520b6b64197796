/**
 * The EasyConfig of a container module, field by field as LUMI writes
 * them (reference §4), and the user page. Pure: facts in, text out.
 */
import { sifkitVersion } from '../provenance';
import type { ImageFacts } from './facts';

/** `SIF` + the package name upper-cased, `-` spelled `MIN` (LUMI's create_container_vars). */
export function varSuffix(name: string): string {
  return name.toUpperCase().replace(/-/g, 'MIN');
}

export const SINGULARITY_BIND = '/var/spool/slurmd,/opt/cray,/usr/lib64/libcxi.so.1,%(installdir)s/runscripts:/runscripts,/pfs,/scratch,/projappl,/project,/flash,/appl';

export const CONDA_PYTHON_SIMPLE = `#!/bin/bash -e

# Start the conda environment inside the container
$WITH_CONDA

# Run the application
python "$@"
`;

export function startShell(varName: string): string {
  return `#!/bin/bash
# A shell in the container; the conda environment is not initialised.
if [ -f /.singularity.d/Singularity ]
then
    # Already inside a container.
    exec bash "$@"
else
    singularity exec $${varName} bash "$@"
fi
`;
}

const HOMEPAGES: Record<string, string> = { mpi4py: 'https://mpi4py.readthedocs.io/en/stable/' };

/** Python source for a string that a here-document must pass through unexpanded. */
function heredocSafe(script: string): string {
  return script.replace(/\\/g, '\\\\').replace(/\$/g, '\\\\$');
}

function py(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The version variable of a naming parameter: `local_rocm_version`. */
function localVar(param: string): string {
  return `local_${param.replace(/[^a-z0-9]/gi, '_')}_version`;
}

export function easyconfigText(f: ImageFacts): string {
  const { naming } = f.recipe;
  const name = naming.app;
  const V = varSuffix(name);
  const params = naming.parts.map(([, p]) => p);
  const stemF = `${naming.prefix}-${naming.app}${naming.parts.map(([label, p]) => `-${label}-{${localVar(p)}}`).join('')}`;
  const suffixF = naming.parts.filter(([, p]) => p !== naming.version).map(([label, p]) => `-${label}-{${localVar(p)}}`).join('') + '-singularity-{local_date}';
  const width = Math.max(...params.map((p) => localVar(p).length), 'local_dockerhash'.length);
  const pad = (k: string) => k.padEnd(width);
  const versions = naming.parts.map(([label, p]) => `${label} ${f.values[p]}`).join(', ');
  const lines = [
    `# ${name} ${f.appVersion} in a container (${versions}).`,
    `# Written by sifkit ${sifkitVersion()} from ${f.sifName}`,
    `# (recipe ${f.recipe.name}${f.definitionHash ? `, definition hash ${f.definitionHash.slice(0, 16)}` : ''}${f.sha256 ? `, sha256 ${f.sha256}` : ''}).`,
    `easyblock = 'MakeCp'`,
    '',
    ...params.map((p) => `${pad(localVar(p))} = ${py(f.values[p])}`),
    `${pad('local_date')} = ${py(f.date)}`,
    `${pad('local_dockerhash')} = ${py(f.dockerhash)}`,
    '',
    `local_sif    = f'${stemF}-dockerhash-{local_dockerhash}.sif'`,
    `local_docker = f'${stemF}.docker'`,
    '',
    `name          = ${py(name)}`,
    `version       = ${localVar(naming.version)}`,
    `versionsuffix = f'${suffixF}'`,
    '',
    `homepage = ${py(HOMEPAGES[name] ?? 'https://github.com/Lumi-supercomputer/LUMI-EasyBuild-contrib')}`,
    '',
    'whatis = [',
    `    f'Description: ${name} {version} in a singularity container with ${naming.parts.filter(([, p]) => p !== naming.version).map(([label, p]) => `${label} {${localVar(p)}}`).join(' and ')}',`,
    ']',
    '',
    'description = f"""',
    `This module provides a container with ${name} {version}${f.recipe.description ? ` (${f.recipe.description.replace(/"/g, "'")})` : ''}.`,
    '',
    `The module defines SIF and SIF${V} (the container file), RUNSCRIPTS and RUNSCRIPTS${V}`,
    '(sample run scripts) and SINGULARITY_BIND (the bindings the container needs on LUMI).',
    'The conda environment is activated in the container with $WITH_CONDA.',
    '"""',
    '',
    'toolchain = SYSTEM',
    '',
    'sources = [',
    '    {',
    `        'filename':    local_sif,`,
    `        'extract_cmd': '/bin/cp -L %s .'`,
    '    },',
    '    {',
    `        'filename':    local_docker,`,
    `        'extract_cmd': '/bin/cp -L %s .'`,
    '    },',
    ']',
    '',
    `skipsteps = ['build']`,
    '',
    'files_to_copy = [',
    `    ([local_sif],    '.'),`,
    `    ([local_docker], 'share/docker-defs/'),`,
    ']',
    '',
    '# The scripts go through a shell here-document at install time: \\$ keeps their $ for run time.',
    `local_runscript_python_simple = """${heredocSafe(CONDA_PYTHON_SIMPLE)}"""`,
    '',
    `local_bin_start_shell = """${heredocSafe(startShell(`SIF${V}`))}"""`,
    '',
    'postinstallcmds = [',
    `    'mkdir -p %(installdir)s/runscripts',`,
    `    f'cat >%(installdir)s/runscripts/conda-python-simple <<EOF\\n{local_runscript_python_simple}EOF\\n',`,
    `    'chmod a+rx %(installdir)s/runscripts/conda-python-simple',`,
    `    'mkdir -p %(installdir)s/bin',`,
    `    f'cat >%(installdir)s/bin/start-shell <<EOF\\n{local_bin_start_shell}EOF\\n',`,
    `    'chmod a+rx %(installdir)s/bin/start-shell',`,
    ']',
    '',
    'sanity_check_paths = {',
    '    # Not the SIF: users may remove their copy and fall back to the central one.',
    `    'files': ['runscripts/conda-python-simple', 'bin/start-shell'],`,
    `    'dirs':  [],`,
    '}',
    '',
    'modextravars = {',
    `    'RUNSCRIPTS':       '%(installdir)s/runscripts',`,
    `    'RUNSCRIPTS${V}': '%(installdir)s/runscripts',`,
    `    'SINGULARITY_BIND': ${py(SINGULARITY_BIND)},`,
    '}',
    '',
    'modluafooter = f"""',
    `-- SIF and SIF${V}: the copy in the install directory, else the central one.`,
    `create_container_vars('{local_sif}', '${name}', '%(installdir)s')`,
    '"""',
    '',
    `moduleclass = 'devel'`,
    '',
  ];
  return lines.join('\n');
}

/**
 * The user page: the seed's page, with this release's module, EasyConfig,
 * WITH_CONDA and directories. The template is the recipe's USER.md.
 */
export function userPage(template: string, f: ImageFacts, root: string): string {
  const values: Record<string, string> = {
    module: f.names.module,
    easyconfig: f.names.easyconfig,
    with_conda: f.withConda ?? '$WITH_CONDA',
    sif: f.sifName,
    stem: f.stem,
    root,
    name: f.recipe.naming.app,
    NAME: varSuffix(f.recipe.naming.app),
    version: f.appVersion,
    ...f.values,
  };
  return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (m, k: string) => values[k] ?? m);
}
