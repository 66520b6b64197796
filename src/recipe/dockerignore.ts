/**
 * .dockerignore matching as the Docker CLI does it: patterns are cleaned,
 * a leading `/` is dropped, `**` spans directories, `!` re-includes, the
 * last matching rule wins, and a pattern that matches a directory excludes
 * everything below it.
 */
interface Rule {
  re: RegExp;
  negate: boolean;
}

function toRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` matches zero or more directories
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
    else re += c.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  // A directory match covers everything under it.
  return new RegExp(`^${re}(?:/.*)?$`);
}

function clean(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return parts.join('/');
}

export class DockerIgnore {
  private readonly rules: Rule[];
  constructor(text: string) {
    this.rules = [];
    for (const raw of text.split(/\r?\n/)) {
      let line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const negate = line.startsWith('!');
      if (negate) line = line.slice(1).trim();
      line = clean(line);
      if (line === '') continue;
      this.rules.push({ re: toRegExp(line), negate });
    }
  }

  /** True when a context-relative path (with `/` separators) is excluded. */
  ignores(relPath: string): boolean {
    const p = clean(relPath);
    let excluded = false;
    for (const r of this.rules) if (r.re.test(p)) excluded = !r.negate;
    return excluded;
  }

  /**
   * Whether a walk must enter a directory: yes unless it is excluded and no
   * `!` rule could re-include something below it.
   */
  mustEnter(relDir: string): boolean {
    return !this.ignores(relDir) || this.rules.some((r) => r.negate);
  }
}
