/**
 * A host snapshot (`sifkit host snapshot`): what a module's binds bring
 * into every container on one system (each shared library's dynamic
 * facts, the links to them) and the host's own glibc. `compat` and the
 * promote gate read it; the tree keeps the ones it promises to serve.
 */
import { z } from 'zod';

/** Absolute, normalised (no `.` or `..` component), no NUL or newline: a path inside the container. */
const absPath = z
  .string()
  .regex(/^\/(?:[^/\0\n]+(?:\/[^/\0\n]+)*)?$/, 'an absolute path without //, a trailing / or a newline')
  .refine((p) => !p.split('/').some((c) => c === '.' || c === '..'), 'a path without . or .. components');
const name = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^[^\0\n]*$/, 'no NUL or newline');
const version = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\0\n]*$/, 'no NUL or newline');

export const elfInfoSchema = z.object({
  bits: z.union([z.literal(32), z.literal(64)]),
  machine: z.number().int().nonnegative(),
  type: z.enum(['exec', 'dyn', 'other']),
  interp: name.optional(),
  soname: name.optional(),
  needed: z.array(name),
  rpath: z.array(name),
  runpath: z.array(name),
  requires: z.array(z.object({ file: name, versions: z.array(version) })),
  defines: z.array(version),
});

/** One entry under a bind, by its path in the container: a link, or a regular ELF file. */
export const hostFileSchema = z.object({
  path: absPath,
  link: name.optional(),
  elf: elfInfoSchema.optional(),
});

export const bindSchema = z
  .object({
    /** As the bind list says it: `src[:dst[:opts]]`. */
    spec: name,
    source: name,
    target: absPath,
    kind: z.enum(['directory', 'file', 'missing', 'other']),
    /** Why its files were not recorded (user data file systems); it still hides the image's files there. */
    skipped: name.optional(),
    files: z.array(hostFileSchema),
  })
  .superRefine((b, ctx) => {
    // A bind brings files under its target only: one elsewhere would be laid over the image where no bind goes.
    const dir = b.target === '/' ? '/' : `${b.target}/`;
    b.files.forEach((f, i) => {
      if (f.path !== b.target && !f.path.startsWith(dir))
        ctx.addIssue({
          code: 'custom',
          path: ['files', i, 'path'],
          message: `a path under the bind's target ${b.target}`,
        });
    });
  });

export const hostSnapshotSchema = z.object({
  kind: z.literal('sifkit-host-snapshot'),
  version: z.literal(1),
  host: name,
  takenAt: z.string(),
  sifkit: z.string(),
  /** uname machine, e.g. x86_64. */
  arch: z.string(),
  from: z.object({ kind: z.enum(['bind', 'module', 'easyconfig']), file: name.optional() }),
  /** The host's libc: `version` is the newest GLIBC_ symbol version it defines (2.31 defines none of its own: 2.30). */
  glibc: z.object({ path: name, version: version, defines: z.array(version) }).nullable(),
  /**
   * The CPU's x86-64 micro-architecture level (x86-64 hosts): which
   * glibc-hwcaps subdirectories an image's ld.so (glibc 2.33 and later)
   * searches there. Absent (an older snapshot, another architecture): none.
   */
  x86Level: z.enum(['x86-64', 'x86-64-v2', 'x86-64-v3', 'x86-64-v4']).optional(),
  /**
   * The CPU's maker as /proc/cpuinfo names it (`GenuineIntel`,
   * `AuthenticAMD`): which legacy hwcaps subdirectories (haswell/...) an
   * image's ld.so before glibc 2.37 searches there. Absent: not Intel.
   */
  cpuVendor: z
    .string()
    .regex(/^[A-Za-z0-9 _-]{1,32}$/)
    .optional(),
  /** LD_LIBRARY_PATH the module gives the container (SINGULARITYENV_/APPTAINERENV_), prepended to the image's. */
  ldLibraryPath: z.array(name),
  binds: z.array(bindSchema),
});

export type HostSnapshot = z.infer<typeof hostSnapshotSchema>;
export type HostBind = z.infer<typeof bindSchema>;
export type HostFile = z.infer<typeof hostFileSchema>;
