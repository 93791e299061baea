// `temper secrets --dir DIR`: makes, once, what a secure deployment needs (a private CA, one
// certificate per service and one for the operator, the operator's bearer token, NATS users with
// per-service permissions); a second run keeps what is there. Compose's secrets-init runs it.
import { resolve } from "node:path";
import { CliError, choiceFlag, parseFlags } from "../cli.ts";
import { ensureSecrets } from "../secrets.ts";
import { SERVICES } from "../services.ts";

const USAGE = `usage: temper secrets --dir DIR [--hosts NAME,...] [--backend auto|openssl|forge]

Makes, unless DIR already holds them: ca.crt/ca.key, <service>.crt/.key for every service (CN and
DNS name = the service name, plus localhost, 127.0.0.1, ::1 and --hosts), operator.crt/.key,
operator.token and tokens (AUTH_TOKENS_FILE), nats/nats.conf (a user per service; only each
bucket's owner may write it) and nats/<service>.password. Prints what it did.

  --dir DIR      where the secrets go (made if missing; a half-filled DIR is an error)
  --hosts LIST   extra DNS names or IP addresses on every service certificate
  --backend B    certificates from the openssl CLI or node-forge (default auto: openssl if installed)`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    dir: { type: "string" },
    hosts: { type: "string" },
    backend: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.dir) throw new CliError("--dir: required (where the secrets go)");
  const hosts = (values.hosts ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
  for (const h of hosts)
    if (!/^[A-Za-z0-9.:-]{1,253}$/.test(h))
      throw new CliError(`--hosts: ${JSON.stringify(h)} is not a host name or address`);
  const backend = choiceFlag("backend", values.backend, ["auto", "openssl", "forge"] as const, "auto");
  const secrets = await ensureSecrets({
    dir: resolve(values.dir),
    services: SERVICES.map((s) => s.name),
    hosts,
    backend,
  }).catch((err: Error) => {
    throw new CliError(err.message.split("\n")[0], 1);
  });
  process.stdout.write(
    secrets.outcome === "kept"
      ? `temper secrets: ${secrets.dir} already holds every secret; kept them\n`
      : `temper secrets: made certificates (${secrets.backend}), tokens and NATS users in ${secrets.dir}\n`,
  );
}
