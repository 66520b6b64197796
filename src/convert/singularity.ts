/**
 * What apptainer adds to a Docker image's root file system, and the JSON
 * objects it puts beside the partition, derived from the image config only
 * (pure: same config, same bytes).
 */
import { bashWord, shDoubleQuoted } from '../emit/bash';
import type { ImageConfig } from './archive';

export const ENV_DIR = '.singularity.d/env';
export const DOCKER_ENV_SCRIPT = `${ENV_DIR}/10-docker2singularity.sh`;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * One export per ENV entry. PATH is taken as is; everything else only as a
 * default, so a value the user sets on the host wins.
 */
export function envScript(env: string[] = []): string {
  const lines = ['#!/bin/sh'];
  for (const item of env) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const name = item.slice(0, eq);
    if (!NAME.test(name)) continue;
    const value = shDoubleQuoted(item.slice(eq + 1), `image ENV ${name}`);
    lines.push(name === 'PATH' ? `export PATH=${value}` : `export ${name}="\${${name}:-${value}}"`);
  }
  return lines.join('\n') + '\n';
}

/** The words as one string of double-quoted words, for the runscript's `eval set`. */
function quoteWords(words: string[] | null | undefined, what: string): string {
  return (words ?? []).map((w) => shDoubleQuoted(w, what)).join(' ');
}

/**
 * ENTRYPOINT runs with the user's arguments, or with CMD when there are
 * none; CMD alone is replaced by the arguments. The words are kept as
 * quoted strings and re-split by `eval set`, so arguments survive intact.
 */
export function runscript(config: ImageConfig['config'] = {}): string {
  return `#!/bin/sh
OCI_ENTRYPOINT=${bashWord(quoteWords(config.Entrypoint, 'image ENTRYPOINT'), 'image ENTRYPOINT')}
OCI_CMD=${bashWord(quoteWords(config.Cmd, 'image CMD'), 'image CMD')}
ARGS=""
for arg in "$@"; do
    ARGS="\${ARGS} \\"$(printf '%s' "$arg" | sed 's/[\\\\"\`$]/\\\\&/g')\\""
done
if [ $# -gt 0 ]; then
    CMDLINE="\${ARGS}"
else
    CMDLINE="\${OCI_CMD}"
fi
if [ -n "$OCI_ENTRYPOINT" ]; then
    SINGULARITY_OCI_RUN="\${OCI_ENTRYPOINT} \${CMDLINE}"
else
    SINGULARITY_OCI_RUN="\${CMDLINE}"
fi
eval "set \${SINGULARITY_OCI_RUN}"
exec "$@"
`;
}

const SOURCE_ENV = `for script in /.singularity.d/env/*.sh; do
    if [ -f "$script" ]; then
        . "$script"
    fi
done
`;

export const ACTIONS: Record<string, string> = {
  exec: `#!/bin/sh\n${SOURCE_ENV}exec "$@"\n`,
  run: `#!/bin/sh\n${SOURCE_ENV}if [ -x /.singularity.d/runscript ]; then\n    exec /.singularity.d/runscript "$@"\nfi\necho "No runscript found in the container" >&2\nexit 1\n`,
  shell: `#!/bin/sh\n${SOURCE_ENV}exec "\${SINGULARITY_SHELL:-/bin/sh}" "$@"\n`,
  start: `#!/bin/sh\n${SOURCE_ENV}if [ -x /.singularity.d/startscript ]; then\n    exec /.singularity.d/startscript "$@"\nfi\n`,
  test: `#!/bin/sh\n${SOURCE_ENV}if [ -x /.singularity.d/test ]; then\n    exec /.singularity.d/test "$@"\nfi\necho "No test script found in the container" >&2\nexit 1\n`,
};

export const BASE_ENV = '#!/bin/sh\n# \n# Environment of the container: custom variables go in 90-environment.sh\n';
export const CUSTOM_ENV = '#!/bin/sh\n# Custom environment shell code should follow\n\n';
export const LIBS_ENV = `#!/bin/sh
if [ -z "$LD_LIBRARY_PATH" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi
PS1="Apptainer> "
export LD_LIBRARY_PATH PS1
`;
export const STARTSCRIPT = '#!/bin/sh\n';

/** Go's MarshalIndent with a tab: keys sorted, as apptainer writes labels.json. */
export function labelsJson(labels: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted, null, '\t');
}

export interface SourceRef {
  bootstrap: 'docker-archive' | 'docker-daemon';
  from: string;
}

export function definitionFile(src: SourceRef): string {
  return `bootstrap: ${src.bootstrap}\nfrom: ${src.from}\n\n`;
}

export interface ImageLabelsInput {
  config: ImageConfig;
  imageId: string;
  arch: string;
  buildDate: Date;
  extra?: Record<string, string>;
}

/** The image's labels merged with the build labels apptainer adds, plus ours. */
export function imageLabels(i: ImageLabelsInput): Record<string, string> {
  return {
    ...(i.config.config?.Labels ?? {}),
    'org.label-schema.build-arch': i.arch,
    'org.label-schema.build-date': i.buildDate.toISOString(),
    'org.label-schema.schema-version': '1.0',
    'org.opencontainers.image.created': i.config.created ?? i.buildDate.toISOString(),
    'io.sifkit.image-id': i.imageId,
    'io.sifkit.dockerhash': i.imageId.replace(/^sha256:/, '').slice(0, 12),
    ...(i.extra ?? {}),
  };
}

export interface InspectMetadata {
  type: 'container';
  data: {
    attributes: {
      deffile: string;
      labels: Record<string, string>;
      environment: Record<string, string>;
      runscript: string;
      startscript: string;
    };
  };
}

export function inspectMetadata(
  deffile: string,
  labels: Record<string, string>,
  env: string,
  run: string,
): InspectMetadata {
  return {
    type: 'container',
    data: {
      attributes: {
        deffile,
        labels,
        environment: {
          [`/${ENV_DIR}/01-base.sh`]: BASE_ENV,
          [`/${DOCKER_ENV_SCRIPT}`]: env,
          [`/${ENV_DIR}/90-environment.sh`]: CUSTOM_ENV,
          [`/${ENV_DIR}/99-base.sh`]: LIBS_ENV,
        },
        runscript: run,
        startscript: STARTSCRIPT,
      },
    },
  };
}

/** ELF e_machine → SIF arch name; ppc64 endianness from EI_DATA. */
export function elfArch(head: Buffer): string | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const little = head[5] === 1;
  const machine = little ? head.readUInt16LE(18) : head.readUInt16BE(18);
  switch (machine) {
    case 0x03:
      return '386';
    case 0x3e:
      return 'amd64';
    case 0x28:
      return 'arm';
    case 0xb7:
      return 'arm64';
    case 0x15:
      return little ? 'ppc64le' : 'ppc64';
    case 0x16:
      return 's390x';
    case 0xf3:
      return 'riscv64';
    case 0x08:
      return little ? 'mipsle' : 'mips';
    default:
      return undefined;
  }
}
