/**
 * Shell completion. `sifkit completion bash|zsh` prints a small script
 * that, on TAB, asks sifkit itself (`sifkit __complete WORD...`) what may
 * come next: commands, a command's flags, the values of fixed-value flags,
 * recipe names, a recipe's parameters and their values (`--set`), and the
 * images in the tree. Nothing of sifkit's is pasted into the script, so it
 * never goes stale: a new command, flag, recipe or image completes as soon
 * as it exists. `complete()` decides what is wanted from the commander
 * tree; the candidates that live on disk come through `CompletionSources`.
 */
import type { Command } from 'commander';
import { runCommand } from './run';
import {
  bashWord,
  defaultDefsRoot,
  InputError,
  isValidName,
  listLedger,
  listRecipes,
  loadRecipe,
  openTree,
  resolveRoot,
} from '../index';

/** The hidden command the scripts call (handled in main.ts before commander parses). */
export const COMPLETE = '__complete';

/** The line that asks the shell to complete file names as well. */
export const FILES = ':files';

/** Values of flags that are a fixed set, the same for every command. */
export const FLAG_VALUES: Record<string, string[]> = {
  '--to': ['sif-images', 'easybuild-sif-images', 'all'],
  '--runner': ['local', 'slurm'],
  '--on': ['local', 'slurm'],
  '--backend': ['native', 'apptainer', 'singularity'],
  '--compression': ['gzip', 'zstd', 'lz4', 'xz'],
};

export const SHELLS = ['bash', 'zsh'];

/** What sifkit knows that lives on disk: the recipes, a recipe's parameters, the tree's images. */
export interface CompletionSources {
  recipes(): Promise<string[]>;
  /** Parameter name → the values it may take (enum and list values, else its default). */
  parameters(recipe: string): Promise<Record<string, string[]>>;
  /** The images staged in the tree at `root` (its default when undefined). */
  images(root: string | undefined): Promise<string[]>;
}

interface Spec {
  name: string;
  /** Every flag spelling, and whether it takes a value. */
  flags: Map<string, boolean>;
  /** The positional arguments' names, in order (`recipe`, `name`, `image`…). */
  args: string[];
}

function specOf(c: Command): Spec {
  const flags = new Map<string, boolean>([
    ['--help', false],
    ['-h', false],
  ]);
  for (const o of c.options) for (const f of [o.long, o.short]) if (f) flags.set(f, o.required || o.optional);
  return { name: c.name(), flags, args: c.registeredArguments.map((a) => a.name()) };
}

const startsWith = (prefix: string) => (s: string) => s.startsWith(prefix);

/**
 * The candidates for the last of `words` (the words after `sifkit`, the
 * one being completed last, maybe empty), each starting with it; `FILES`
 * last when file names fit too. Names read from disk pass the name rule
 * first: a candidate is one line, and no file's name becomes anything else.
 */
export async function complete(program: Command, words: string[], src: CompletionSources): Promise<string[]> {
  const cur = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  const commands = program.commands.map((c) => c.name());
  const cmdName = before.find((w) => !w.startsWith('-'));
  const command = program.commands.find((c) => c.name() === cmdName);
  if (!cmdName) return [...commands, '--help', '--version'].filter(startsWith(cur));
  if (!command) return [];
  const spec = specOf(command);

  // Positionals and flag values given so far, after the command.
  const given = new Map<string, string>();
  const positionals: string[] = [];
  const rest = before.slice(before.indexOf(cmdName) + 1);
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i];
    const eq = w.indexOf('=');
    if (w.startsWith('--') && eq > 0) given.set(w.slice(0, eq), w.slice(eq + 1));
    else if (spec.flags.get(w)) given.set(w, rest[++i] ?? '');
    else if (!w.startsWith('-')) positionals.push(w);
  }

  const prev = before.at(-1) ?? '';
  if (prev !== cmdName && spec.flags.get(prev)) return flagValue(prev, cur, spec, positionals, given, src);
  if (cur.startsWith('-')) return [...spec.flags.keys()].filter(startsWith(cur)).sort();
  if (spec.name === 'help') return positionals.length ? [] : commands.filter(startsWith(cur));
  return argument(spec.args[Math.min(positionals.length, spec.args.length - 1)], cur, given, src);
}

async function flagValue(
  flag: string,
  cur: string,
  spec: Spec,
  positionals: string[],
  given: Map<string, string>,
  src: CompletionSources,
): Promise<string[]> {
  if (FLAG_VALUES[flag]) return FLAG_VALUES[flag].filter(startsWith(cur));
  if (flag === '--recipe') return [...(await recipes(src)).filter(startsWith(cur)), FILES];
  if (flag === '--set') {
    // The recipe is the command's <recipe> argument, or run's --recipe.
    const at = spec.args.indexOf('recipe');
    const recipe = given.get('--recipe') ?? (at >= 0 ? positionals[at] : undefined);
    if (!recipe) return [];
    const params = await src.parameters(recipe).catch(() => ({}) as Record<string, string[]>);
    const eq = cur.indexOf('=');
    if (eq < 0)
      return Object.keys(params)
        .map((p) => `${p}=`)
        .filter(startsWith(cur));
    const name = cur.slice(0, eq);
    return (params[name] ?? []).map((v) => `${name}=${v}`).filter(startsWith(cur));
  }
  return [FILES];
}

async function argument(
  arg: string | undefined,
  cur: string,
  given: Map<string, string>,
  src: CompletionSources,
): Promise<string[]> {
  if (arg === 'shell') return SHELLS.filter(startsWith(cur));
  if (arg === 'recipe') return [...(await recipes(src)).filter(startsWith(cur)), FILES];
  if (arg === 'name' || arg === 'image') {
    const images = await src.images(given.get('--root')).catch(() => [] as string[]);
    return [...images.filter((n) => isValidName('sif file', n)).filter(startsWith(cur)), FILES];
  }
  return arg === undefined ? [] : [FILES];
}

async function recipes(src: CompletionSources): Promise<string[]> {
  return (await src.recipes().catch(() => [] as string[])).filter((r) => isValidName('recipe', r));
}

/** The real sources: the recipe directory and the tree on disk. */
export const diskSources: CompletionSources = {
  recipes: () => listRecipes(defaultDefsRoot()),
  async parameters(recipe) {
    const r = await loadRecipe(recipe);
    return Object.fromEntries(
      r.parameters
        .filter((p) => isValidName('version', p.name))
        .map((p) => [p.name, (p.values ?? [p.default]).filter((v) => isValidName('version', v))]),
    );
  },
  async images(root) {
    return (await listLedger(await openTree(resolveRoot(root), false))).map((e) => e.name);
  },
};

/** Answers `sifkit __complete WORD...`: candidates one per line; never an error on the user's terminal. */
export async function answerCompletion(program: Command, words: string[]): Promise<void> {
  const lines = await complete(program, words, diskSources).catch(() => [] as string[]);
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
}

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
