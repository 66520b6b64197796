/**
 * The EasyConfig of a container module, field by field as LUMI writes
 * them (reference §4), and the user page. Pure: facts in, text out.
 */
import { fillMarkdown } from '../emit/markdown';
import { pyString } from '../emit/python';
import { InputError } from '../errors';
import { sifkitVersion } from '../provenance';
import { escapeForMessage } from '../validate/names';
import type { ImageFacts, SigningKeyFact } from './facts';

/** `SIF` + the package name upper-cased, `-` spelled `MIN` (LUMI's create_container_vars). */
export function varSuffix(name: string): string {
  return name.toUpperCase().replace(/-/g, 'MIN');
}

/**
 * What the module binds. libjansson is bound as the test job binds it
 * (checks/profile.ts): without it the host's Cray MPICH fails to load where
 * the tests passed. LUMI's ROCm 5.4.5 EasyConfig binds it too.
 */
export const SINGULARITY_BIND =
  '/var/spool/slurmd,/opt/cray,/usr/lib64/libcxi.so.1,/usr/lib64/libjansson.so.4,%(installdir)s/runscripts:/runscripts,/pfs,/scratch,/projappl,/project,/flash,/appl';

/** Where users find the central images: LUMI's path, whatever tree sifkit ran against. */
export const PUBLISHED_ROOT = '/appl/local/containers';

export const CONDA_PYTHON_SIMPLE = `#!/bin/bash -e

# Start the conda environment inside the container
$WITH_CONDA

# Run the application
python "$@"
`;

export function startShell(varName: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(varName))
    throw new InputError('bad-recipe', `${escapeForMessage(varName)} is not a shell variable name`);
  return `#!/bin/bash -e
# A shell in the container; the conda environment is not initialised.
if [ -f /.singularity.d/Singularity ]
then
    # Already inside a container.
    exec bash "$@"
else
    singularity exec "$${varName}" bash "$@"
fi
`;
}

/** What the module says about the package: LUMI's homepage and docurls; the prose is ours. */
export interface PackageInfo {
  homepage: string;
  /** One line: what the package is. */
  summary: string;
  docurls: string[];
}

const PACKAGES: Record<string, PackageInfo> = {
  mpi4py: {
    homepage: 'https://github.com/mpi4py/mpi4py',
    summary: 'mpi4py, the Python bindings of the Message Passing Interface (MPI)',
    docurls: ['mpi4py web-based manual: https://mpi4py.readthedocs.io/en/'],
  },
};

export function packageInfo(name: string): PackageInfo {
  return (
    PACKAGES[name] ?? {
      homepage: 'https://github.com/Lumi-supercomputer/LUMI-EasyBuild-containers',
      summary: name,
      docurls: [],
    }
  );
}

/** The one whatis line of the module, shared by the EasyConfig and the standalone module. */
export function whatisLine(name: string): string {
  return `Description: ${packageInfo(name).summary}, in a singularity container`;
}

/** A script's text as a here-document passes it through unexpanded: `\` and `$` escaped for the shell. */
function heredocSafe(script: string): string {
  return script.replace(/[\\$`]/g, (c) => `\\${c}`);
}

const py = pyString;

/**
 * A piece of the recipe's naming that the EasyConfig writes into Python
 * f-strings and Lua (prefix, package, labels): a plain name, checked.
 */
function plain(value: string, what: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value))
    throw new InputError(
      'bad-recipe',
      `${what} ${escapeForMessage(value)} is not a plain name (letters, digits, . _ -)`,
    );
  return value;
}

/**
 * EasyBuild writes the description into its module as a Lua long string
 * (`help([==[ ... ]==])`) and resolves `%(name)s` templates in it: a
 * closing long bracket or a template in the recipe's text is refused.
 */
function easybuildText(value: string, what: string): string {
  if (/\](=*)\]/.test(value) || /%\(/.test(value))
    throw new InputError(
      'bad-recipe',
      `${what} ${escapeForMessage(value)} holds a Lua long bracket (]]) or an EasyBuild template (%(); EasyBuild would not keep it as text`,
    );
  return value;
}

/** The version variable of a naming parameter: `local_rocm_version`; the package's own is `local_version`, as LUMI names it. */
function localVar(param: string, naming?: { version: string }): string {
  if (param === naming?.version) return 'local_version';
  return `local_${param.replace(/[^a-z0-9]/gi, '_')}_version`;
}

export function easyconfigText(f: ImageFacts): string {
  const { naming } = f.recipe;
  const name = plain(naming.app, `recipe ${f.recipe.name}: naming app`);
  plain(naming.prefix, `recipe ${f.recipe.name}: naming prefix`);
  for (const [label] of naming.parts) plain(label, `recipe ${f.recipe.name}: naming label`);
  if (f.recipe.description) easybuildText(f.recipe.description, `recipe ${f.recipe.name}: description`);
  const V = varSuffix(name);
  const params = naming.parts.map(([, p]) => p);
  const stemF = `${naming.prefix}-${naming.app}${naming.parts.map(([label, p]) => `-${label}-{${localVar(p, naming)}}`).join('')}`;
  const suffixF =
    naming.parts
      .filter(([, p]) => p !== naming.version)
      .map(([label, p]) => `-${label}-{${localVar(p, naming)}}`)
      .join('') + '-singularity-{local_date}';
  const width = Math.max(...params.map((p) => localVar(p, naming).length), 'local_hash'.length);
  const pad = (k: string) => k.padEnd(width);
  const versions = naming.parts.map(([label, p]) => `${label} ${f.values[p]}`).join(', ');
  const info = packageInfo(name);
  const lines = [
    `# ${name} ${f.appVersion} in a container (${versions}).`,
    `# Written by sifkit ${sifkitVersion()} from ${f.sifName}`,
    `# (recipe ${f.recipe.name}${f.definitionHash ? `, definition hash ${f.definitionHash.slice(0, 16)}` : ''}${f.sha256 ? `, sha256 ${f.sha256}` : ''}).`,
    ...(f.signedBy ?? []).map(
      (k) => `# Signed (${k.format.toUpperCase()}) by the key ${k.fingerprint}: the module help says how to verify.`,
    ),
    `easyblock = 'MakeCp'`,
    '',
    ...params.map((p) => `${pad(localVar(p, naming))} = ${py(f.values[p])}`),
    `${pad('local_date')} = ${py(f.date)}`,
    `${pad('local_hash')} = ${py(f.dockerhash)}`,
    '',
    `local_sif    = f'${stemF}-dockerhash-{local_hash}.sif'`,
    `local_docker = f'${stemF}.docker'`,
    '',
    `name          = ${py(name)}`,
    `version       = ${localVar(naming.version, naming)}`,
    `versionsuffix = f'${suffixF}'`,
    '',
    `homepage = ${py(info.homepage)}`,
    '',
    'whatis = [',
    `    ${py(whatisLine(name))}`,
    ']',
    '',
    `description = ${py(moduleHelp(f))}`,
    '',
    'docurls = [',
    ...info.docurls.map((u) => `    ${py(u)},`),
    ']',
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
    '# The scripts go through a shell here-document at install time: \\$ and \\\\ keep their $ and \\ for run time.',
    `local_runscript_python_simple = ${py(heredocSafe(CONDA_PYTHON_SIMPLE))}`,
    '',
    `local_bin_start_shell = ${py(heredocSafe(startShell(`SIF${V}`)))}`,
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
    `    'files': ['bin/start-shell', 'runscripts/conda-python-simple'],`,
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
 * The module's help, in our words: what is in the container and the
 * variables the module sets. `%(version)s` is left for EasyBuild.
 */
export function moduleHelp(f: ImageFacts, version = '%(version)s'): string {
  const name = f.recipe.naming.app;
  const V = varSuffix(name);
  const others = f.recipe.naming.parts
    .filter(([, p]) => p !== f.recipe.naming.version)
    .map(([label, p]) => `${label} ${f.values[p]}`)
    .join(', ');
  return [
    `A singularity container with ${name} ${version} (${others})${f.recipe.description ? `: ${f.recipe.description}` : ''}.`,
    '',
    'Loading the module sets:',
    `*   SIF and SIF${V}: the container file, the copy in the module's own`,
    '    directory if it is still there, else the central one.',
    '*   SINGULARITY_BIND: what the container needs from the system (Cray MPICH',
    '    and its libraries, Slurm) and the /pfs, /scratch, /projappl, /project,',
    '    /flash and /appl file systems.',
    `*   RUNSCRIPTS and RUNSCRIPTS${V}: sample scripts, also at /runscripts in`,
    '    the container.',
    '',
    'Python runs in a conda environment in the container: activate it with',
    '$WITH_CONDA first (the script conda-python-simple does).',
    ...verifyHelp(f),
  ].join('\n');
}

/** How a user checks the container file with one key that signed it: singularity's command and sifkit's. */
export function verifyCommands(k: SigningKeyFact, sif = '$SIF'): { singularity: string; sifkit: string } {
  const at = (rel: string | undefined, fallback: string) => (rel ? `${PUBLISHED_ROOT}/${rel}` : fallback);
  if (k.how === 'cert') {
    const cert = at(k.rel, 'signer.crt');
    const pool = at(k.caPoolRel, 'ca-pool.pem');
    return {
      singularity: `singularity verify --certificate ${cert} --certificate-roots ${pool} ${sif}`,
      sifkit: `sifkit verify-signature ${sif} --cert ${cert} --ca-pool ${pool}`,
    };
  }
  if (k.how === 'keyring') {
    const ring = at(k.rel, 'keyring.asc');
    return {
      singularity: `singularity key import ${ring}; singularity verify ${sif}`,
      sifkit: `sifkit verify-signature ${sif} --keyring ${ring}`,
    };
  }
  const key = at(k.rel, 'build.pub.pem');
  return {
    singularity: `singularity verify --key ${key} ${sif}`,
    sifkit: `sifkit verify-signature ${sif} --key ${key}`,
  };
}

/** The module help's lines on the signature: the key's fingerprint and the command that checks a copy. */
function verifyHelp(f: ImageFacts): string[] {
  const keys = f.signedBy ?? [];
  if (keys.length === 0) return [];
  return [
    '',
    'The container file is signed. Check your copy (or the central one) is',
    'unchanged since it was built and tested:',
    ...keys.flatMap((k) => [
      `    ${verifyCommands(k).singularity}`,
      `(signing key fingerprint: ${k.fingerprint}${k.rel ? '' : '; ask LUMI User Support for this public key'})`,
    ]),
  ];
}

/** The user page's section on the signature (filled through the Markdown emitter); `ask`: the key is not in the tree. */
function verifySection(ask: boolean): string {
  return `
## Verifying the container file

The container file \`{{ sif }}\` is signed by the key with fingerprint
\`{{ fingerprint }}\` ({{ format }}).${ask ? ' Ask LUMI User Support for this public key.' : ''}
Before you use a copy, check that it is unchanged since it was built and tested:

\`\`\`
{{ singularity }}
\`\`\`

or, with sifkit:

\`\`\`
{{ sifkit }}
\`\`\`
`;
}

/**
 * The user page: the seed's page, with this release's module, EasyConfig
 * and WITH_CONDA. It names LUMI's central tree, never the tree (or test
 * clone) sifkit ran against. The template is the recipe's USER.md.
 */
export function userPage(template: string, f: ImageFacts): string {
  // The page's own placeholders first: a parameter can never stand in for root, module...
  const values: Record<string, string> = {
    ...f.values,
    module: f.names.module,
    easyconfig: f.names.easyconfig,
    with_conda: f.withConda ?? '$WITH_CONDA',
    sif: f.sifName,
    stem: f.stem,
    root: PUBLISHED_ROOT,
    name: f.recipe.naming.app,
    NAME: varSuffix(f.recipe.naming.app),
    version: f.appVersion,
  };
  const page = fillMarkdown(template, values, `recipe ${f.recipe.name}: USER.md`);
  const sections = (f.signedBy ?? []).map((k) =>
    fillMarkdown(
      verifySection(!k.rel),
      { sif: f.sifName, fingerprint: k.fingerprint, format: k.format === 'pgp' ? 'PGP' : 'DSSE', ...verifyCommands(k) },
      'the signature section of USER.md',
    ),
  );
  return sections.length ? `${page.trimEnd()}\n${sections.join('')}` : page;
}
