/**
 * A rendered Dockerfile read once (pure): dockerfile-ast's syntax tree with
 * the text it was read from. A render parses its Dockerfile here once and
 * hands this object to every check that reads instructions (the ENV in
 * effect, the file server's fetches, undeclared downloads), rather than
 * each parsing the text again.
 */
import { DockerfileParser, type Dockerfile } from 'dockerfile-ast';

export interface ParsedDockerfile {
  readonly text: string;
  readonly ast: Dockerfile;
}

export function parseDockerfile(text: string): ParsedDockerfile {
  return { text, ast: DockerfileParser.parse(text) };
}
