/**
 * `sifkit completion bash|zsh`: a completion script made from the
 * commander tree itself, so a new command or flag completes without editing
 * anything here. Flags whose values are a fixed set complete those values;
 * other values and positional arguments complete file names.
 */
import type { Command } from 'commander';
import { runCommand } from './run';
import { InputError } from '../index';

export interface CommandSpec {
  name: string;
  description: string;
  /** Long flags (and short ones), with whether each takes a value. */
  options: Array<{ flags: string[]; takesValue: boolean; description: string }>;
}

/** Values of flags that are a fixed set, the same for every command. */
export const FLAG_VALUES: Record<string, string[]> = {
  '--to': ['sif-images', 'easybuild-sif-images', 'all'],
  '--runner': ['local', 'slurm'],
  '--backend': ['native', 'apptainer', 'singularity'],
  '--compression': ['gzip', 'zstd', 'lz4', 'xz'],
};

export const SHELLS = ['bash', 'zsh'];

export function commandSpecs(program: Command): CommandSpec[] {
  return program.commands.map((c) => ({
    name: c.name(),
    description: c.description().split('\n')[0],
    options: [
      ...c.options.map((o) => ({
        flags: [o.long, o.short].filter((f): f is string => Boolean(f)),
        takesValue: o.required || o.optional,
        description: o.description,
      })),
      { flags: ['--help', '-h'], takesValue: false, description: 'show help for this command' },
    ],
  }));
}

// Single-quoted shell words: nothing inside is expanded.
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// help and completion take a command name and a shell, handled before the per-command cases.
const SPECIAL = new Set(['help', 'completion']);

export function bashCompletion(specs: CommandSpec[]): string {
  const cmds = specs.map((s) => s.name).join(' ');
  const cases = specs
    .filter((s) => !SPECIAL.has(s.name))
    .map((s) => {
      const withValue = s.options.filter((o) => o.takesValue).flatMap((o) => o.flags);
      return `    ${s.name}) opts=${sq(s.options.flatMap((o) => o.flags).join(' '))}; valued=${sq(` ${withValue.join(' ')} `)} ;;`;
    })
    .join('\n');
  const values = Object.entries(FLAG_VALUES)
    .map(([f, v]) => `    ${f}) COMPREPLY=($(compgen -W ${sq(v.join(' '))} -- "$cur")); return ;;`)
    .join('\n');
  return `# bash completion for sifkit (made by: sifkit completion bash)
_sifkit() {
  local cur prev cmd opts valued i
  cur=\${COMP_WORDS[COMP_CWORD]}
  prev=\${COMP_WORDS[COMP_CWORD-1]}
  cmd=
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in -*) ;; *) cmd=\${COMP_WORDS[i]}; break ;; esac
  done
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W ${sq(`${cmds} --help --version`)} -- "$cur"))
    return
  fi
  if [ "$cmd" = help ] || [ "$cmd" = completion ]; then
    [ "$cmd" = completion ] && COMPREPLY=($(compgen -W ${sq(SHELLS.join(' '))} -- "$cur")) || COMPREPLY=($(compgen -W ${sq(cmds)} -- "$cur"))
    return
  fi
  case $prev in
${values}
  esac
  case $cmd in
${cases}
    *) opts=; valued=' ' ;;
  esac
  if [[ $valued == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _sifkit sifkit
`;
}

// zsh's _arguments wants [description] free of ] and :, and : escaped in values.
const zdesc = (s: string) => s.replace(/[[\]]/g, '').replace(/:/g, '\\:').replace(/'/g, `'\\''`);

export function zshCompletion(specs: CommandSpec[]): string {
  const commands = specs.map((s) => `    '${s.name}:${zdesc(s.description)}'`).join('\n');
  const cases = specs
    .filter((s) => !SPECIAL.has(s.name))
    .map((s) => {
      const args = s.options.map((o) => {
        const names = o.flags.length > 1 ? `(${o.flags.join(' ')})'{${o.flags.join(',')}}'` : o.flags[0];
        const values = FLAG_VALUES[o.flags[0]];
        const action = !o.takesValue ? '' : values ? `:value:(${values.join(' ')})` : ':value:_files';
        return `'${names}[${zdesc(o.description)}]${action}'`;
      });
      return `    ${s.name}) _arguments -s ${args.join(' ')} '*:file:_files' ;;`;
    })
    .join('\n');
  return `#compdef sifkit
# zsh completion for sifkit (made by: sifkit completion zsh)
_sifkit() {
  local -a commands
  commands=(
${commands}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'sifkit command' commands
    return
  fi
  local cmd=\${words[2]}
  shift words
  (( CURRENT-- ))
  case $cmd in
    help) _describe -t commands 'sifkit command' commands ;;
    completion) _values shell ${SHELLS.join(' ')} ;;
${cases}
  esac
}
if [ "$funcstack[1]" = "_sifkit" ]; then _sifkit "$@"; else compdef _sifkit sifkit; fi
`;
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script for bash or zsh')
    .argument('<shell>', SHELLS.join(' or '))
    .action(async (shell: string) => {
      process.exitCode = await runCommand(async (io) => {
        const specs = commandSpecs(program);
        if (shell === 'bash') io.stdout(bashCompletion(specs));
        else if (shell === 'zsh') io.stdout(zshCompletion(specs));
        else throw new InputError('bad-shell', `no completion for ${JSON.stringify(shell)}: bash or zsh`);
      });
    });
}
