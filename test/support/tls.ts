import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

/**
 * A self-signed certificate for 127.0.0.1 (P-256, a day or two), made with
 * the real openssl into `dir`: the key and certificate for a local https
 * server, and the certificate's file for the client to trust.
 */
export async function localhostCert(dir: string, days = 1): Promise<{ key: Buffer; cert: Buffer; certFile: string }> {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    String(days),
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return { key: await fs.readFile(keyFile), cert: await fs.readFile(certFile), certFile };
}
