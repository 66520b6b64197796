import { execFileSync } from 'node:child_process';

/** Reads an EasyConfig as EasyBuild would: parsed by Python's ast, run with SYSTEM defined; its values as JSON. */
export function easyconfigValues(file: string): Record<string, unknown> {
  const script = `
import ast, json, sys
with open(sys.argv[1]) as f:
    src = f.read()
ast.parse(src)
ns = {'SYSTEM': {'name': 'system', 'version': 'system'}}
exec(compile(src, sys.argv[1], 'exec'), ns)
print(json.dumps({k: v for k, v in ns.items() if not k.startswith('__')}, default=str))
`;
  return JSON.parse(execFileSync('python3', ['-W', 'error', '-c', script, file]).toString());
}
