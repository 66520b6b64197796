/**
 * How the leak scan judges served files by their role (pure).
 *
 * - licensed: its bytes (the file, or any member of it when it is a
 *   tarball) anywhere in any layer, under any name, also when a later layer
 *   deletes them, or its digest in the config or history, is a leak.
 *   A served file the recipe does not declare counts as licensed.
 * - tool: it must be in the finished image at its declared path with
 *   exactly the served bytes, and nowhere else in any layer. Missing,
 *   changed or found at another path is a failure that names it.
 */
import { InputError } from '../errors';
import { servedRole, type ServedFile } from '../recipe/served';
import { escapeForMessage } from '../validate/names';
import type { ServedRole } from '../recipe/types';

/** How the scan treats each role: a role added to the recipe schema must be given its treatment here. */
const SCAN_AS: Record<ServedRole, 'licensed' | 'tool' | 'may-stay'> = {
  licensed: 'licensed',
  tool: 'tool',
  source: 'may-stay',
};

export interface ServedTool {
  file: string;
  path: string;
  digest: string;
  /** Its size in bytes; without it, the leak scan hashes every file of the image. */
  size?: number;
}

/**
 * The served directory's files split by role: undeclared ones are
 * licensed. A declared tool that is not there is refused: without the
 * served bytes nothing could tell the image's copy from any other file.
 */
export function classifyServed(
  present: string[],
  served: ServedFile[],
): { licensed: string[]; tools: Array<{ file: string; path: string }> } {
  const here = new Set(present);
  const absent = served.filter((s) => SCAN_AS[s.role] === 'tool' && !here.has(s.file)).map((s) => s.file);
  if (absent.length)
    throw new InputError(
      'served-tool-absent',
      `served tool${absent.length > 1 ? 's' : ''} ${absent.map((f) => escapeForMessage(f)).join(', ')} declared by the recipe ${absent.length > 1 ? 'are' : 'is'} not in the served directory`,
    );
  const licensed: string[] = [];
  const tools: Array<{ file: string; path: string }> = [];
  for (const file of present) {
    // servedRole is the one home of "undeclared means licensed".
    const decl = servedRole(file, served);
    if (SCAN_AS[decl.role] === 'may-stay') continue;
    if (SCAN_AS[decl.role] === 'tool' && decl.path) tools.push({ file, path: decl.path });
    else licensed.push(file);
  }
  return { licensed, tools };
}

/** What a layer did to a tool's declared path (deletions of a layer come before its own writes). */
export interface PathEvent {
  layer: string;
  kind: 'file' | 'other' | 'deleted';
  digest?: string;
}

/** A regular file (or hard link) in a layer whose content is a tool's. */
export interface Sighting {
  layer: string;
  path: string;
  digest: string;
}

export interface ToolProblem {
  file: string;
  path: string;
  why: 'missing' | 'changed' | 'elsewhere';
  /** For `elsewhere`: where else it was found. */
  layer?: string;
  at?: string;
}

/** One line for people. */
export function describeToolProblem(p: ToolProblem): string {
  if (p.why === 'elsewhere')
    return `served tool ${p.file} is also at ${p.at} in layer ${p.layer} (it may stay only at ${p.path})`;
  if (p.why === 'missing') return `served tool ${p.file} is not in the image at ${p.path}, its declared path`;
  return `served tool ${p.file} at ${p.path} is not the served file (its content changed)`;
}

/**
 * Judges the tools against what the layers hold, applying the layers in
 * the image's order (`order`, from the archive's manifest).
 */
export function judgeTools(
  tools: ServedTool[],
  sightings: Sighting[],
  events: ReadonlyMap<string, PathEvent[]>,
  order: string[],
): ToolProblem[] {
  const problems: ToolProblem[] = [];
  const rank = new Map(order.map((l, i) => [l, i]));
  for (const t of tools) {
    let state: PathEvent | undefined;
    const evs = [...(events.get(t.path) ?? [])].filter((e) => rank.has(e.layer));
    // Stable sort keeps a layer's own deletion before its own write.
    evs.sort((a, b) => (rank.get(a.layer) ?? 0) - (rank.get(b.layer) ?? 0));
    for (const e of evs) state = e.kind === 'deleted' ? undefined : e;
    if (!state) problems.push({ file: t.file, path: t.path, why: 'missing' });
    else if (state.kind !== 'file' || state.digest !== t.digest)
      problems.push({ file: t.file, path: t.path, why: 'changed' });
    for (const s of sightings) {
      if (s.digest === t.digest && s.path !== t.path)
        problems.push({ file: t.file, path: t.path, why: 'elsewhere', layer: s.layer, at: s.path });
    }
  }
  const key = (p: ToolProblem) => `${p.file}\0${p.why}\0${p.at ?? ''}\0${p.layer ?? ''}`;
  return [...new Map(problems.map((p) => [key(p), p])).values()].sort((a, b) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0,
  );
}
