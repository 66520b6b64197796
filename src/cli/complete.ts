/**
 * What a TAB completes, decided from the command tree as data: commands,
 * a command's flags, the values of fixed-value flags, recipe names, a
 * recipe's parameters and their values (`--set`), and the images in the
 * tree. The tree is read off commander's program (`treeOf`) and may come
 * from a cache (complete-main.ts), so this module loads nothing but itself:
 * a TAB must not wait for the library. Candidates that live on disk come
 * through `CompletionSources`, which checks their names.
 */
import type { Command } from 'commander';

/** The hidden command the scripts call (handled in main.ts before commander is loaded). */
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

/** What sifkit knows that lives on disk; every name returned has passed sifkit's name rule. */
export interface CompletionSources {
  recipes(): Promise<string[]>;
  /** Parameter name → the values it may take (enum and list values, else its default). */
  parameters(recipe: string): Promise<Record<string, string[]>>;
  /** The images staged in the tree at `root` (its default when undefined). */
  images(root: string | undefined): Promise<string[]>;
}

/** One command as completion sees it. */
export interface CommandSpec {
  name: string;
  /** Every flag spelling, and whether it takes a value. */
  flags: [string, boolean][];
  /** The positional arguments' names, in order (`recipe`, `name`, `image`…). */
  args: string[];
}

/** The commands of `program`, as data a cache can hold. */
export function treeOf(program: Command): CommandSpec[] {
  return program.commands.map((c) => {
    const flags: [string, boolean][] = [
      ['--help', false],
      ['-h', false],
    ];
    for (const o of c.options) for (const f of [o.long, o.short]) if (f) flags.push([f, o.required || o.optional]);
    return { name: c.name(), flags, args: c.registeredArguments.map((a) => a.name()) };
  });
}

const WORD = /^-{0,2}[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Whether `x` is a command tree (a cache file is data until this says so). */
export function isCommandTree(x: unknown): x is CommandSpec[] {
  const word = (w: unknown) => typeof w === 'string' && WORD.test(w);
  return (
    Array.isArray(x) &&
    x.every(
      (c) =>
        typeof c === 'object' &&
        c !== null &&
        word(c.name) &&
        Array.isArray(c.flags) &&
        c.flags.every((f: unknown) => Array.isArray(f) && f.length === 2 && word(f[0]) && typeof f[1] === 'boolean') &&
        Array.isArray(c.args) &&
        c.args.every(word),
    )
  );
}

const startsWith = (prefix: string) => (s: string) => s.startsWith(prefix);

/**
 * The candidates for the last of `words` (the words after `sifkit`, the
 * one being completed last, maybe empty), each starting with it; `FILES`
 * last when file names fit too.
 */
export async function complete(tree: CommandSpec[], words: string[], src: CompletionSources): Promise<string[]> {
  const cur = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  const commands = tree.map((c) => c.name);
  const cmdName = before.find((w) => !w.startsWith('-'));
  const command = tree.find((c) => c.name === cmdName);
  if (!cmdName) return [...commands, '--help', '--version'].filter(startsWith(cur));
  if (!command) return [];
  const flags = new Map(command.flags);

  // Positionals and flag values given so far, after the command.
  const given = new Map<string, string>();
  const positionals: string[] = [];
  const rest = before.slice(before.indexOf(cmdName) + 1);
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i];
    const eq = w.indexOf('=');
    if (w.startsWith('--') && eq > 0) given.set(w.slice(0, eq), w.slice(eq + 1));
    else if (flags.get(w)) given.set(w, rest[++i] ?? '');
    else if (!w.startsWith('-')) positionals.push(w);
  }

  const prev = before.at(-1) ?? '';
  if (prev !== cmdName && flags.get(prev)) return flagValue(prev, cur, command, positionals, given, src);
  if (cur.startsWith('-')) return [...flags.keys()].filter(startsWith(cur)).sort();
  if (command.name === 'help') return positionals.length ? [] : commands.filter(startsWith(cur));
  return argument(command.args[Math.min(positionals.length, command.args.length - 1)], cur, given, src);
}

async function flagValue(
  flag: string,
  cur: string,
  command: CommandSpec,
  positionals: string[],
  given: Map<string, string>,
  src: CompletionSources,
): Promise<string[]> {
  if (FLAG_VALUES[flag]) return FLAG_VALUES[flag].filter(startsWith(cur));
  if (flag === '--recipe') return [...(await recipes(src)).filter(startsWith(cur)), FILES];
  if (flag === '--set') {
    // The recipe is the command's <recipe> argument, or run's --recipe.
    const at = command.args.indexOf('recipe');
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
    return [...images.filter(startsWith(cur)), FILES];
  }
  return arg === undefined ? [] : [FILES];
}

function recipes(src: CompletionSources): Promise<string[]> {
  return src.recipes().catch(() => [] as string[]);
}
