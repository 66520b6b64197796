/**
 * The append-only audit log: one JSON line per mutating command, who did
 * what to which files with which checksums, and how it ended. Written with
 * O_APPEND and fsync, under the tree lock.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import { errnoCode } from '../errors';
import { parseJsonDocument } from '../validate/schema';
import { auditRecordSchema, type AuditRecord } from '../validate/schemas/audit';

export type { AuditRecord };

type AuditInput = Omit<AuditRecord, 'time' | 'user' | 'host' | 'pid' | 'command'> & { command?: string };

/** One audit record as its JSON line. */
export function auditLine(r: AuditInput): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return (
    JSON.stringify({
      time: new Date().toISOString(),
      user,
      host: os.hostname(),
      pid: process.pid,
      command: r.command ?? process.argv.slice(2).join(' '),
      ...r,
    }) + '\n'
  );
}

/** Writes a line to an audit log opened for append ('a': O_APPEND), durably. */
export async function writeAuditLine(fh: fs.FileHandle, line: string): Promise<void> {
  await fh.write(line);
  await fh.sync();
}

/**
 * The log's records, each line checked by its schema. A last line without
 * its newline is a write cut short by a crash and is left out; any other
 * bad line is an InputError naming its number.
 */
export async function readAudit(file: string): Promise<AuditRecord[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
  const lines = text.split('\n');
  const complete = lines.slice(0, -1);
  return complete.flatMap((l, i) =>
    l ? [parseJsonDocument(auditRecordSchema, l, `audit log ${file} line ${i + 1}`, 'bad-audit')] : [],
  );
}
