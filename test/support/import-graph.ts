/**
 * The import graph of a TypeScript source tree, read with TypeScript's own
 * parser (no type-checking: fast), and the checks the layering test makes
 * on it. Pure functions over file texts and plain maps, so the checks
 * themselves are tested on made-up graphs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

export interface Import {
  /** What the file names: './x', '../tree/root', 'node:fs', 'dockerode'. */
  specifier: string;
  /** Erased at run time (`import type`, or every named binding is `type`). */
  typeOnly: boolean;
}

/** Every static import/export-from, `import x = require()`, `require()` and `import()` in one file. */
export function importsOf(fileName: string, text: string): Import[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: Import[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      const allTypes = Boolean(c && !c.name && named && named.length > 0 && named.every((e) => e.isTypeOnly));
      out.push({ specifier: node.moduleSpecifier.text, typeOnly: Boolean(c?.isTypeOnly) || allTypes });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      const allTypes = Boolean(named && named.length > 0 && named.every((e) => e.isTypeOnly));
      out.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly || allTypes });
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      out.push({ specifier: node.moduleReference.expression.text, typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) {
        out.push({ specifier: node.arguments[0].text, typeOnly: false });
      }
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      out.push({ specifier: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** A module of the graph: its path under the source root without `.ts` ('tree/root', 'errors', 'index'). */
export type ModuleId = string;

export interface Edge {
  to: ModuleId;
  typeOnly: boolean;
}

export interface ImportGraph {
  /** Relative imports between modules of the tree. */
  edges: Map<ModuleId, Edge[]>;
  /** Package and node: imports, by module. */
  external: Map<ModuleId, Import[]>;
}

function listTs(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listTs(dir, r));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(r);
  }
  return out.sort();
}

/** Builds the graph from file texts keyed by path relative to the source root ('tree/root.ts'). */
export function graphOf(files: Map<string, string>): ImportGraph {
  const ids = new Set([...files.keys()].map((f) => f.replace(/\.ts$/, '')));
  const edges = new Map<ModuleId, Edge[]>();
  const external = new Map<ModuleId, Import[]>();
  for (const [file, text] of files) {
    const id = file.replace(/\.ts$/, '');
    const mine: Edge[] = [];
    const ext: Import[] = [];
    for (const imp of importsOf(file, text)) {
      if (!imp.specifier.startsWith('.')) {
        ext.push(imp);
        continue;
      }
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(id), imp.specifier));
      const to = ids.has(target) ? target : ids.has(`${target}/index`) ? `${target}/index` : undefined;
      if (to === undefined) throw new Error(`${file}: import ${imp.specifier} names no module of the tree`);
      mine.push({ to, typeOnly: imp.typeOnly });
    }
    edges.set(id, mine);
    external.set(id, ext);
  }
  return { edges, external };
}

export function readGraph(srcDir: string): ImportGraph {
  return graphOf(new Map(listTs(srcDir).map((f) => [f, fs.readFileSync(path.join(srcDir, f), 'utf8')])));
}

/** Strongly connected components of more than one node (or a node importing itself): the circles. */
export function circles(edges: Map<string, Iterable<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || [...(edges.get(v) ?? [])].includes(v)) found.push(c.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** The group a module belongs to: its top directory, or itself for a top-level file ('tree', 'errors'). */
export function groupOf(id: ModuleId): string {
  return id.split('/')[0];
}

/** Module edges lifted to groups (self-edges dropped). */
export function groupEdges(g: ImportGraph): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [from, es] of g.edges) {
    const set = out.get(groupOf(from)) ?? new Set<string>();
    out.set(groupOf(from), set);
    for (const e of es) if (groupOf(e.to) !== groupOf(from)) set.add(groupOf(e.to));
  }
  return out;
}

/** Layers, lowest first: a module may import its own layer and the ones below. */
export type LayerTable = ReadonlyArray<readonly string[]>;

export function rankOf(layers: LayerTable, id: ModuleId): number | undefined {
  const i = layers.findIndex((l) => l.includes(groupOf(id)));
  return i < 0 ? undefined : i;
}

/** Edges to a higher layer, as 'from -> to'. */
export function upwardEdges(g: ImportGraph, layers: LayerTable): string[] {
  const out: string[] = [];
  for (const [from, es] of g.edges) {
    for (const e of es)
      if ((rankOf(layers, e.to) ?? Infinity) > (rankOf(layers, from) ?? -1)) out.push(`${from} -> ${e.to}`);
  }
  return out.sort();
}

/**
 * Why a module said to be pure is not: a run-time import of an effect
 * (a package or node: module in `effects`), or of a module not itself
 * pure. Type-only imports are erased and do not count.
 */
export function impurities(g: ImportGraph, pure: ReadonlySet<ModuleId>, effects: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const id of pure) {
    for (const imp of g.external.get(id) ?? [])
      if (!imp.typeOnly && effects.has(imp.specifier)) out.push(`${id} -> ${imp.specifier}`);
    for (const e of g.edges.get(id) ?? []) if (!e.typeOnly && !pure.has(e.to)) out.push(`${id} -> ${e.to}`);
  }
  return out.sort();
}
