/**
 * Shell completion. `sifkit completion bash|zsh` prints a small script
 * that, on TAB, asks sifkit itself (`sifkit __complete WORD...`) what may
 * come next: commands, a command's flags, the values of fixed-value flags,
 * recipe names, a recipe's parameters and their values (`--set`), and the
 * images in the tree. Nothing of sifkit's is pasted into the script, so it
 * never goes stale: a new command, flag, recipe or image completes as soon
 * as it exists. `complete()` decides what is wanted from the commander
 * tree (complete.ts), answered by a small entry point (complete-main.ts).
 */
import type { Command } from 'commander';
import { COMPLETE, FILES, SHELLS } from './complete';
import { runCommand } from './run';
import { bashWord, InputError } from '../index';

/**
 * The bash script: asks the sifkit the user typed (`COMP_WORDS[0]`) for the
 * candidates, and completes file names too when it says so.
 */
export function bashCompletion(prog: string): string {
  const p = bashWord(prog, 'program name');
  return `# bash completion for sifkit (made by: sifkit completion bash); candidates come from sifkit itself
_sifkit() {
  local cur line files=
  cur=\${COMP_WORDS[COMP_CWORD]}
  COMPREPLY=()
  while IFS= read -r line; do
    if [ "$line" = ${bashWord(FILES)} ]; then files=1; else COMPREPLY+=("$line"); fi
  done < <("\${COMP_WORDS[0]}" ${bashWord(COMPLETE)} "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  if [ -n "$files" ]; then
    while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -f -- "$cur")
  fi
  # A value such as "rocm=" goes on without a space.
  if [ \${#COMPREPLY[@]} -eq 1 ] && [[ \${COMPREPLY[0]} == *= ]]; then compopt -o nospace 2>/dev/null; fi
}
complete -o filenames -F _sifkit ${p}
`;
}

/** The zsh script: the same question, answered with compadd (and _files when file names fit). */
export function zshCompletion(prog: string): string {
  const p = bashWord(prog, 'program name');
  return `#compdef sifkit
# zsh completion for sifkit (made by: sifkit completion zsh); candidates come from sifkit itself
_sifkit() {
  local -a lines words_eq others
  local files=0 line
  lines=("\${(@f)$("\${words[1]}" ${bashWord(COMPLETE)} "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  for line in "\${lines[@]}"; do
    if [[ $line == ${bashWord(FILES)} ]]; then files=1
    elif [[ $line == *= ]]; then words_eq+=("$line")
    elif [[ -n $line ]]; then others+=("$line"); fi
  done
  (( \${#others} )) && compadd -- "\${others[@]}"
  # A value such as "rocm=" goes on without a space.
  (( \${#words_eq} )) && compadd -S '' -- "\${words_eq[@]}"
  (( files )) && _files
}
if [ "$funcstack[1]" = "_sifkit" ]; then _sifkit "$@"; else compdef _sifkit ${p}; fi
`;
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script for bash or zsh')
    .argument('<shell>', SHELLS.join(' or '))
    .action(async (shell: string) => {
      process.exitCode = await runCommand(async (io) => {
        if (shell === 'bash') io.stdout(bashCompletion(program.name()));
        else if (shell === 'zsh') io.stdout(zshCompletion(program.name()));
        else throw new InputError('bad-shell', `no completion for ${JSON.stringify(shell)}: bash or zsh`);
      });
    });
}
