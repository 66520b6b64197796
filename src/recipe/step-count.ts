/**
 * Which build steps of rendered definitions are the same work, as a layer
 * cache sees it. Pure.
 *
 * A step's identity is its instruction together with everything it builds
 * on: the instructions before it in its stage, and, through `FROM STAGE`
 * and `COPY --from=STAGE`, the stages it starts from or copies out of
 * (each with what they build on in turn). Two variants whose steps have
 * the same identity need that step run once. The text is compared as
 * rendered (context files by their digests in the definition hash are not
 * looked at): a step that reads the build context counts as the same work
 * when its instruction is the same.
 *
 * This is how a definition's stages show in the count: a component built
 * in its own stage from the part it needs (OSU from ROCm) has one identity
 * per distinct input set, however many variants copy it in.
 */
import { createHash } from 'node:crypto';
import { Copy, DockerfileParser } from 'dockerfile-ast';

export interface Step {
  keyword: string;
  /** 0-based stage index in the definition. */
  stage: number;
  /** The step's identity: a digest over the step and all it builds on. */
  key: string;
}

function digest(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** `--from=NAME` of a COPY (a flag, which dockerfile-ast keeps apart from the arguments), or undefined. */
function copyFrom(ins: Copy): string | undefined {
  return (
    ins
      .getFlags()
      .find((f) => f.getName().toLowerCase() === 'from')
      ?.getValue() ?? undefined
  );
}

/** Every instruction of a rendered definition with its identity, in order. */
export function definitionSteps(dockerfile: string): Step[] {
  const stageKeys: string[] = [];
  const stageNames = new Map<string, number>();
  const lookup = (ref: string): string | undefined => {
    const byName = stageNames.get(ref.toLowerCase());
    if (byName !== undefined) return stageKeys[byName];
    return /^\d+$/.test(ref) ? stageKeys[Number(ref)] : undefined;
  };
  const out: Step[] = [];
  let stage = -1;
  let key = '';
  for (const ins of DockerfileParser.parse(dockerfile).getInstructions()) {
    const keyword = ins.getKeyword();
    const args = ins.getArguments().map((a) => a.getValue());
    const text = `${keyword} ${ins.getArgumentsContent() ?? ''}`;
    if (keyword === 'FROM') {
      stage += 1;
      // FROM [--platform=…] IMAGE [AS NAME]: a stage named earlier is built on, not pulled.
      const plain = args.filter((a) => !a.startsWith('--'));
      key = lookup(plain[0] ?? '') ?? digest('FROM', plain[0] ?? '');
      if (plain.length >= 3 && plain[1].toLowerCase() === 'as') stageNames.set(plain[2].toLowerCase(), stage);
      stageKeys[stage] = key;
    } else {
      const from = ins instanceof Copy ? copyFrom(ins) : undefined;
      key = digest(key, text, from === undefined ? '' : (lookup(from) ?? `image ${from}`));
      if (stage >= 0) stageKeys[stage] = key;
    }
    out.push({ keyword, stage: Math.max(stage, 0), key });
  }
  return out;
}

export interface StepCount {
  /** Definitions counted (variants). */
  definitions: number;
  /** RUN steps rendered, summed over the definitions. */
  runSteps: number;
  /** Distinct RUN steps: the ones a shared cache would run. */
  distinctRunSteps: number;
}

/** The RUN steps of many rendered definitions, and how many are distinct work. */
export function countRunSteps(dockerfiles: string[]): StepCount {
  const distinct = new Set<string>();
  let runSteps = 0;
  for (const d of dockerfiles)
    for (const s of definitionSteps(d))
      if (s.keyword === 'RUN') {
        runSteps += 1;
        distinct.add(s.key);
      }
  return { definitions: dockerfiles.length, runSteps, distinctRunSteps: distinct.size };
}
