/**
 * A standalone Lmod modulefile for sites without EasyBuild: the same
 * variables and scripts as the EasyConfig's module, and LUMI's refusal
 * when the SIF is gone. Every value enters the Lua through its emitter
 * (emit/lua.ts), the help text included. Pure: facts in, text out.
 */
import { luaString as lua } from '../emit/lua';
import { checkText } from '../emit/text';
import type { ImageFacts } from './facts';
import {
  CONDA_PYTHON_SIMPLE,
  SINGULARITY_BIND,
  moduleHelp,
  packageInfo,
  startShell,
  varSuffix,
  whatisLine,
} from './easyconfig';

export interface ModuleLayout {
  /** The module's install directory (runscripts/, bin/, share/docker-defs/). */
  installdir: string;
  /**
   * Where the SIF is: `{ root }`, the container tree whose
   * easybuild-sif-images/ holds it (found as LUMI's create_container_vars
   * finds it: a copy in the install directory first), or `{ file }`, an
   * absolute path to a SIF outside any tree, used where it is.
   */
  sif: { root: string } | { file: string };
}

/**
 * A path the module sets in the environment: Lua holds any byte, but Lmod
 * hands the value to the user's shell, where a line break ends it (and
 * what follows is read as a command) and other control characters reach
 * the terminal, so those are refused.
 */
function envPath(value: string, what: string): string {
  return lua(
    checkText(
      value,
      what,
      'an environment variable set by Lmod',
      /[\u0000-\u001f\u007f-\u009f]/,
      'a line break or control character',
    ),
    what,
  );
}

export function moduleText(f: ImageFacts, layout: ModuleLayout): string {
  const name = f.recipe.naming.app;
  const V = varSuffix(name);
  const bind = SINGULARITY_BIND.replace('%(installdir)s', layout.installdir);
  const info = packageInfo(name);
  const more = [`Homepage: ${info.homepage}`, ...info.docurls.map((u) => `Documentation: ${u}`)].join('\n');
  const find =
    'root' in layout.sif
      ? `-- The copy in the install directory if there is one, else the central one;
-- LUMI_CONTAINER_REPOSITORY_ROOT points at a test clone of the tree; set
-- but empty, it counts as unset, as in LUMI's SitePackage.lua.
local root = os.getenv("LUMI_CONTAINER_REPOSITORY_ROOT")
if root == nil or root == "" then
    root = ${envPath(layout.sif.root, '--root')}
end
local sif = pathJoin(installdir, sif_name)
if not isFile(sif) then
    sif = pathJoin(root, "easybuild-sif-images", sif_name)
end`
      : `-- A SIF outside the container tree: the file this module was written for, where it is.
local sif = ${envPath(layout.sif.file, 'the SIF')}`;
  return `-- ${f.names.module}: ${name} ${f.appVersion} in a singularity container.
-- Written by sifkit; the values below are Lua strings written by sifkit's Lua emitter.
help(${lua(`\n${moduleHelp(f, f.appVersion)}\n\n${more}\n`)})
whatis(${lua(whatisLine(name))})
whatis(${lua(`Homepage: ${info.homepage}`)})

local installdir = ${envPath(layout.installdir, '--out')}
local sif_name = ${lua(f.sifName)}
${find}
if not isFile(sif) and mode() == "load" then
    LmodError("The module cannot locate the singularity container file " .. sif_name ..
              ": it may have been removed from the system.")
end

setenv("SIF", sif)
setenv(${lua(`SIF${V}`)}, sif)
setenv("RUNSCRIPTS", pathJoin(installdir, "runscripts"))
setenv(${lua(`RUNSCRIPTS${V}`)}, pathJoin(installdir, "runscripts"))
setenv("SINGULARITY_BIND", ${envPath(bind, 'the bind list')})
prepend_path("PATH", pathJoin(installdir, "bin"))
`;
}

/** The two scripts the module installs, by path relative to the install directory. */
export function moduleScripts(f: ImageFacts): Record<string, string> {
  return {
    'runscripts/conda-python-simple': CONDA_PYTHON_SIMPLE,
    'bin/start-shell': startShell(`SIF${varSuffix(f.recipe.naming.app)}`),
  };
}
