// A private CA and certificates signed by it, for TLS and mutual TLS between Temper's services (a
// secure `temper stack`, compose's secrets-init, tests). The openssl CLI makes them when it is
// installed, else node-forge does (the container image has no openssl binary).
import { spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, randomInt } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";

const DAYS = 825;

export type PkiBackend = "openssl" | "forge";

/** A certificate to make: `<name>.crt` / `<name>.key`, CN = name, usable as server and client. */
export interface Leaf {
  name: string;
  /** Subject alternative names: DNS names and IP addresses. */
  sans: string[];
}

export function opensslAvailable(): boolean {
  return spawnSync("openssl", ["version"], { encoding: "utf8" }).status === 0;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(`openssl ${args[0]} failed: ${(r.stderr || r.stdout || "").trim().split("\n")[0]}`);
}

function makeWithOpenssl(dir: string, leaves: Leaf[]): void {
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      String(DAYS),
      "-subj",
      "/CN=temper-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  for (const leaf of leaves) {
    const ext = join(dir, `${leaf.name}.ext`);
    const san = leaf.sans.map((s) => (isIP(s) ? `IP:${s}` : `DNS:${s}`)).join(",");
    writeFileSync(
      ext,
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyAgreement",
        "extendedKeyUsage=serverAuth,clientAuth",
        `subjectAltName=${san}`,
        "",
      ].join("\n"),
    );
    openssl(
      [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${leaf.name}.key`,
        "-out",
        `${leaf.name}.csr`,
        "-subj",
        `/CN=${leaf.name}`,
      ],
      dir,
    );
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${leaf.name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        `0x${randomBytes(16).toString("hex")}`,
        "-days",
        String(DAYS),
        "-sha256",
        "-extfile",
        ext,
        "-out",
        `${leaf.name}.crt`,
      ],
      dir,
    );
    rmSync(ext);
    rmSync(join(dir, `${leaf.name}.csr`));
  }
}

async function makeWithForge(dir: string, leaves: Leaf[]): Promise<void> {
  const { default: forge } = await import("node-forge");
  const { pki } = forge;
  // RSA keys from node:crypto (forge's own key generation is slow); forge builds and signs the X.509.
  const keyPair = () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    return {
      pem: privateKey,
      privateKey: pki.privateKeyFromPem(privateKey),
      publicKey: pki.publicKeyFromPem(publicKey),
    };
  };
  const serial = () =>
    `${randomInt(1, 0x7f).toString(16).padStart(2, "0")}${randomBytes(15).toString("hex")}`;
  const validity = (cert: ReturnType<typeof pki.createCertificate>) => {
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + DAYS * 86_400_000);
  };
  const ca = keyPair();
  const caCert = pki.createCertificate();
  caCert.publicKey = ca.publicKey;
  caCert.serialNumber = serial();
  validity(caCert);
  const caSubject = [{ name: "commonName", value: "temper-ca" }];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(ca.privateKey, forge.md.sha256.create());
  writeFileSync(join(dir, "ca.key"), ca.pem);
  writeFileSync(join(dir, "ca.crt"), pki.certificateToPem(caCert));
  for (const leaf of leaves) {
    const k = keyPair();
    const cert = pki.createCertificate();
    cert.publicKey = k.publicKey;
    cert.serialNumber = serial();
    validity(cert);
    cert.setSubject([{ name: "commonName", value: leaf.name }]);
    cert.setIssuer(caSubject);
    cert.setExtensions([
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      {
        name: "subjectAltName",
        altNames: leaf.sans.map((s) => (isIP(s) ? { type: 7, ip: s } : { type: 2, value: s })),
      },
    ]);
    cert.sign(ca.privateKey, forge.md.sha256.create());
    writeFileSync(join(dir, `${leaf.name}.key`), k.pem);
    writeFileSync(join(dir, `${leaf.name}.crt`), pki.certificateToPem(cert));
  }
}

/**
 * Writes ca.crt / ca.key and `<name>.crt` / `<name>.key` for every leaf into `dir` (which must
 * exist). Keys are EC P-256 with openssl, RSA-2048 with node-forge.
 */
export async function makeCertificates(
  dir: string,
  leaves: Leaf[],
  backend: PkiBackend | "auto" = "auto",
): Promise<PkiBackend> {
  const use = backend === "auto" ? (opensslAvailable() ? "openssl" : "forge") : backend;
  if (use === "openssl") makeWithOpenssl(dir, leaves);
  else await makeWithForge(dir, leaves);
  return use;
}
