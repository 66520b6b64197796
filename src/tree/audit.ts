/**
 * The append-only audit log: one JSON line per mutating command, who did
 * what to which files with which checksums, and how it ended. Written with
 * O_APPEND and fsync, under the tree lock.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';

export interface AuditRecord {
  time: string;
  user: string;
  host: string;
  pid: number;
  command: string;
  action: string;
  files: Array<{ path: string; sha256?: string; op?: string }>;
  outcome: 'ok' | 'failed' | 'refused' | 'interrupted';
  error?: string;
  detail?: Record<string, unknown>;
}

type AuditInput = Omit<AuditRecord, 'time' | 'user' | 'host' | 'pid' | 'command'> & { command?: string };

/** One audit record as its JSON line. */
export function auditLine(r: AuditInput): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return JSON.stringify({ time: new Date().toISOString(), user, host: os.hostname(), pid: process.pid, command: r.command ?? process.argv.slice(2).join(' '), ...r }) + '\n';
}

/** Writes a line to an audit log opened for append ('a': O_APPEND), durably. */
export async function writeAuditLine(fh: fs.FileHandle, line: string): Promise<void> {
  await fh.write(line);
  await fh.sync();
}

export async function readAudit(file: string): Promise<AuditRecord[]> {
  try {
    return (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);
  } catch {
    return [];
  }
}
