/**
 * A recipe's `checks:` and a pipeline's `slurm:` block, each one schema:
 * the shape, the bounds and the rules between fields in one place, so a
 * hostile file (a list where a mapping goes, 1e308 ranks, `__proto__`)
 * is one line naming the file and the field. The YAML is read failsafe
 * (every scalar a string); numbers written by code are taken too.
 */
import { z } from 'zod';

/** A whole number from `min` to `max`, written as digits or given as a number. */
export function wholeNumber(min: number, max: number) {
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v),
    z.number().min(min).max(max).int(),
  );
}

/**
 * A mapping whose keys pass `key`. zod's record drops a `__proto__` key
 * without a word (JSON.parse makes it an own key): here it is refused, by name.
 */
export function mapping<V extends z.ZodType>(key: z.ZodType<string>, value: V) {
  return z
    .unknown()
    .superRefine((v, ctx) => {
      if (v !== null && typeof v === 'object' && Object.hasOwn(v, '__proto__'))
        ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'a key other than __proto__' });
    })
    .pipe(z.record(key, value));
}

const varName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name');

export const checkDocSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'lower-case letters, digits, - and _'),
    // Bounds far past any machine sifkit tests on; 0 is taken and means 1, as before.
    ranks: wholeNumber(0, 1_000_000).optional(),
    nodes: wholeNumber(0, 100_000).optional(),
    gpus: wholeNumber(0, 1_000_000).optional(),
    env: mapping(varName, z.string()).optional(),
    unset: z.array(varName).optional(),
    command: z.string().regex(/\S/, 'a command'),
    expect: z.string().optional(),
    figures: z.enum(['latency', 'bandwidth']).optional(),
    // Seconds: up to a week.
    timeout: wholeNumber(0, 7 * 24 * 3600).optional(),
  })
  .superRefine((c, ctx) => {
    for (const [i, k] of (c.unset ?? []).entries())
      if (c.env && Object.hasOwn(c.env, k))
        ctx.addIssue({ code: 'custom', path: ['unset', i], message: `a variable not also set in env (${k} is)` });
  });

/** The `checks:` list: each check as above, and no two of one name. */
export const checksDocSchema = z.array(checkDocSchema).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((c, i) => {
    if (seen.has(c.name))
      ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `a name no other check has (${c.name} is taken)` });
    seen.add(c.name);
  });
});
export type CheckDoc = z.output<typeof checkDocSchema>;

// Partition and account names as Slurm prints them; nothing a shell would read.
const slurmWord = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a Slurm name');

/** One sbatch option, long form only, with no shell or line syntax in it. */
export const sbatchOption = z
  .string()
  .regex(/^--[a-z][a-z-]*(=[A-Za-z0-9_.,:=/@+-]+)?$/, 'one --long[=value] sbatch option');

/** What one kind of job asks Slurm for. */
export const jobResourcesSchema = z
  .strictObject({
    partition: slurmWord.optional(),
    account: slurmWord.optional(),
    time: z
      .union([z.number().transform(String), z.string()])
      .pipe(z.string().regex(/^(\d{1,9}|(\d{1,4}-)?\d{1,2}:\d{2}:\d{2}|\d{1,9}:\d{2})$/, 'minutes or [D-]HH:MM:SS')),
    cpus: wholeNumber(1, 1024),
    mem: z
      .union([z.number().transform(String), z.string()])
      .pipe(z.string().regex(/^\d{1,12}[KMGT]?$/, 'a size such as 4G')),
    sbatch: z.array(sbatchOption),
  })
  .partial();

/** A pipeline file's `slurm:` block: resources for the convert and the test jobs. */
export const slurmBlockSchema = z.strictObject({
  convert: jobResourcesSchema.optional(),
  test: jobResourcesSchema.optional(),
});
