// `temper secrets --dir DIR`: makes, once, what a secure deployment needs (a private CA, one
// certificate per service and one for the operator, the operator's bearer token, NATS users with
// per-service permissions); a second run keeps what is there. Compose's secrets-init runs it.
import { resolve } from "node:path";
import { ensureSecrets, filesOf, SERVICES, shareSecrets } from "@temper/stack";
import { CliError, choiceFlag, parseFlags } from "../cli.ts";

const USAGE = `usage: temper secrets --dir DIR [--hosts NAME,...] [--backend auto|openssl|forge] [--owner UID:GID] [--share HOLDER=DIR,...]

Makes, unless DIR already holds them: ca.crt/ca.key, <service>.crt/.key for every service (CN and
DNS name = the service name, plus localhost, 127.0.0.1, ::1 and --hosts), operator.crt/.key,
operator.token and tokens (AUTH_TOKENS_FILE), nats/nats.conf (a user per service; only each
bucket's owner may write it) and nats/<service>.password, every file 0600 in 0700 directories.
Prints what it did.

  --dir DIR      where the secrets go (made if missing; a half-filled DIR is an error)
  --hosts LIST   extra DNS names or IP addresses on every service certificate (default: the
                 SECRETS_HOSTS variable, so a compose overlay adds names without restating the command)
  --backend B    certificates from the openssl CLI or node-forge (default auto: openssl if installed)
  --owner U:G    chown the files to the user the services run as (needs root)
  --share LIST   HOLDER=DIR,...: copy into DIR only what HOLDER reads (a service: ca.crt, tokens,
                 its certificate and key, its NATS password; nats: nats/nats.conf; operator: its
                 certificate, key and token), so each container mounts its own secrets only`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    dir: { type: "string" },
    hosts: { type: "string" },
    backend: { type: "string" },
    owner: { type: "string" },
    share: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.dir) throw new CliError("--dir: required (where the secrets go)");
  const hosts = (values.hosts ?? process.env.SECRETS_HOSTS ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
  for (const h of hosts)
    if (!/^[A-Za-z0-9.:-]{1,253}$/.test(h))
      throw new CliError(`--hosts: ${JSON.stringify(h)} is not a host name or address`);
  const backend = choiceFlag("backend", values.backend, ["auto", "openssl", "forge"] as const, "auto");
  let owner: { uid: number; gid: number } | undefined;
  if (values.owner !== undefined) {
    const m = /^(\d{1,10}):(\d{1,10})$/.exec(values.owner);
    if (!m) throw new CliError(`--owner: expected UID:GID, got ${JSON.stringify(values.owner.slice(0, 40))}`);
    owner = { uid: Number(m[1]), gid: Number(m[2]) };
  }
  const shares = (values.share ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const m = /^([A-Za-z0-9-]{1,64})=(.+)$/.exec(x);
      if (!m) throw new CliError(`--share: expected HOLDER=DIR, got ${JSON.stringify(x.slice(0, 80))}`);
      return { holder: m[1], to: resolve(m[2]) };
    });
  const services = SERVICES.map((s) => s.name);
  // a holder that has no secrets is an error before anything is made
  for (const { holder } of shares)
    try {
      filesOf(holder, services);
    } catch (err) {
      throw new CliError(`--share ${holder}: ${(err as Error).message}`);
    }
  const secrets = await ensureSecrets({
    dir: resolve(values.dir),
    services,
    hosts,
    backend,
    owner,
  }).catch((err: Error) => {
    throw new CliError(err.message.split("\n")[0], 1);
  });
  process.stdout.write(
    secrets.outcome === "kept"
      ? `temper secrets: ${secrets.dir} already holds every secret; kept them\n`
      : `temper secrets: made certificates (${secrets.backend}), tokens and NATS users in ${secrets.dir}\n`,
  );
  for (const { holder, to } of shares) {
    try {
      shareSecrets(secrets.dir, holder, to, services, owner);
    } catch (err) {
      throw new CliError(`--share ${holder}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  if (shares.length)
    process.stdout.write(
      `temper secrets: shared with ${shares.map((x) => `${x.holder} (${x.to})`).join(", ")}\n`,
    );
}
