/**
 * A rendered Dockerfile read once (pure): dockerfile-ast's syntax tree with
 * the text it was read from. A render parses its Dockerfile here once and
 * hands this object to every check that reads instructions (the ENV in
 * effect, the file server's fetches, undeclared downloads), rather than
 * each parsing the text again.
 */
import type * as DockerfileAst from 'dockerfile-ast';

export interface ParsedDockerfile {
  readonly text: string;
  readonly ast: DockerfileAst.Dockerfile;
}

export function parseDockerfile(text: string): ParsedDockerfile {
  // Loaded on the first parse: commands that render nothing need not pay for the parser.
  const { DockerfileParser } = require('dockerfile-ast') as typeof DockerfileAst;
  return { text, ast: DockerfileParser.parse(text) };
}

/**
 * The images the definition's FROM lines start from, in order of first
 * use, less those naming an earlier stage (`FROM rocm AS osu`; stage names
 * compare without case, as the engine's do) and `scratch`, the empty
 * start that names no image. What provenance resolves to image IDs, read
 * from the one parse.
 */
export function baseImages(parsed: ParsedDockerfile): string[] {
  const out: string[] = [];
  const stages = new Set<string>();
  for (const from of parsed.ast.getFROMs()) {
    const ref = from.getImage();
    if (ref && ref !== 'scratch' && !stages.has(ref.toLowerCase()) && !out.includes(ref)) out.push(ref);
    const stage = from.getBuildStage();
    if (stage) stages.add(stage.toLowerCase());
  }
  return out;
}
