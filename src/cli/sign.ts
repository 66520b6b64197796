/**
 * `sifkit sign` and `sifkit verify-signature`: SIF signatures in the format
 * apptainer and SingularityCE read (DSSE or PGP clear-signed), made and
 * checked natively.
 */
import type { Command } from 'commander';
import { jsonDoc } from './output';
import { runCommand } from './run';
import {
  InputError,
  RefusedError,
  loadSigningKey,
  loadVerifiers,
  signSif,
  terminalLine,
  verifyFailure,
  verifySif,
} from '../index';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function groupFlag(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(v))
    throw new InputError(
      'bad-group',
      `--group ${JSON.stringify(v).slice(0, 40)}: an object group is a whole number from 1`,
    );
  return Number(v);
}

export function registerSign(program: Command): void {
  program
    .command('sign')
    .description(
      "sign a SIF's object group in place (DSSE with PEM keys, or PGP clear-signed with an armored secret key)",
    )
    .argument('<file>', 'the SIF to sign')
    .option(
      '--key <file>',
      'a private key: PEM (ed25519, ECDSA P-256/P-384, RSA) or an armored OpenPGP secret key; repeat for several DSSE keys (default: $SIFKIT_SIGNING_KEY)',
      collect,
    )
    .option('--group <n>', 'the object group to sign', '1')
    .option('--json', 'print one JSON document on stdout')
    .action(async (file: string, flags: { key?: string[]; group?: string; json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const files = flags.key?.length
          ? flags.key
          : process.env.SIFKIT_SIGNING_KEY
            ? [process.env.SIFKIT_SIGNING_KEY]
            : [];
        if (files.length === 0)
          throw new InputError('no-key', 'name the signing key: --key KEY.pem (or set SIFKIT_SIGNING_KEY)');
        const keys = [];
        for (const f of files) keys.push(await loadSigningKey(f));
        const r = await signSif(file, keys, { group: groupFlag(flags.group), signal: io.signal });
        if (io.json) io.stdout(jsonDoc({ ok: true, ...r }));
        else
          io.stdout(
            `${file}: ${r.alreadySigned ? 'already signed' : `signed (signature object ${r.id})`}: group ${r.group}, objects ${r.objects.join(', ')}, ${r.format.toUpperCase()} by ${r.signers.join(', ')}\n`,
          );
      }, flags);
    });

  program
    .command('verify-signature')
    .description("verify a SIF's signatures against keys you trust: every digest re-derived from the file")
    .argument('<file>', 'the SIF to verify')
    .option('--key <file>', 'a PEM public key to trust (DSSE); repeatable', collect)
    .option('--cert <file>', 'an X.509 certificate whose key signed (DSSE), trusted through --ca-pool')
    .option('--ca-pool <file>', 'PEM CA certificates the --cert must chain to')
    .option('--keyring <file>', 'an armored OpenPGP keyring to trust (PGP signatures)')
    .option('--group <n>', 'verify this object group only (default: every group)')
    .option('--json', 'print one JSON document on stdout')
    .action(
      async (
        file: string,
        flags: { key?: string[]; cert?: string; caPool?: string; keyring?: string; group?: string; json?: boolean },
      ) => {
        process.exitCode = await runCommand(async (io) => {
          const v = await loadVerifiers({
            keys: flags.key,
            cert: flags.cert,
            caPool: flags.caPool,
            keyring: flags.keyring,
          });
          const group = groupFlag(flags.group);
          const r = await verifySif(file, v, { groups: group ? [group] : undefined, signal: io.signal });
          const failure = verifyFailure(r);
          if (io.json && !failure) io.stdout(jsonDoc({ ...r, ok: true }));
          else if (!io.json) {
            for (const g of r.groups) {
              io.stdout(
                `group ${g.group} (objects ${g.objects.join(', ')}): ${g.verified ? 'verified' : 'NOT verified'}\n`,
              );
              for (const s of g.signatures)
                if (s.id)
                  io.stdout(
                    `  signature ${s.id} (${s.format}): ${s.problems.length === 0 ? `valid, by ${s.signers.join(', ')}` : s.problems.join('; ')}\n`,
                  );
            }
            for (const u of r.ungrouped)
              io.stdout(`object ${u.id} (${terminalLine(u.name)}): in no object group, NOT covered by any signature\n`);
          }
          if (failure) throw new RefusedError('signature-not-verified', failure);
        }, flags);
      },
    );
}
