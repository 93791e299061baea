// TLS, mutual TLS and credentials on a real in-process server: who gets through, and with which
// status the others are turned away; the config checks; both certificate backends.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Client, credentials, Metadata, status } from "@grpc/grpc-js";
import { common, descriptorSetPath, reward } from "@temper/proto";
import { fixtureRewardService } from "../test/reward-fixture.ts";
import { createClient } from "./client.ts";
import { ConfigError, loadConfig } from "./config.ts";
import type { GrpcError } from "./errors.ts";
import { createLogger } from "./logger.ts";
import { makeCertificates, opensslAvailable } from "./pki.ts";
import {
  type ClientSecurity,
  parseTokens,
  type SecurityConfig,
  type ServerSecurity,
  securityConfigSchema,
  serverSecurityFromConfig,
  tokenDigest,
} from "./security.ts";
import { type ServerHandle, service, startServer } from "./server.ts";
import { checkHealth } from "./service-process.ts";

const logger = createLogger({ name: "security-test", level: "silent" });
const TOKEN = "t0ken-of-the-operator-0123456789";

const groups: common.Group[] = [
  {
    id: "g",
    prompt: "2+2?",
    reference: "4",
    promptTokenIds: [],
    completions: [
      {
        id: "c",
        text: "#### 4",
        tokenIds: [],
        logprobs: [],
        finishReason: common.FinishReason.FINISH_REASON_STOP,
      },
    ],
  },
];

async function code(p: Promise<unknown>): Promise<number | "OK"> {
  try {
    await p;
    return "OK";
  } catch (err) {
    return (err as GrpcError).code;
  }
}

function start(security: ServerSecurity, healthPort?: number): Promise<ServerHandle> {
  return startServer({
    healthPort,
    name: "security-test",
    version: "0.0.1",
    port: 0,
    // score stands for a mutating RPC here; info stays open.
    services: [service(reward.RewardServiceService, fixtureRewardService, { mutating: ["score"] })],
    descriptorSet: descriptorSetPath,
    logger,
    security,
  });
}

describe("gRPC TLS, mutual TLS and credentials", () => {
  const dir = mkdtempSync(join(tmpdir(), "temper-security-"));
  const pem = (name: string) => readFileSync(join(dir, name));
  let server: ServerHandle;
  const clients: { $close(): void }[] = [];
  const client = (security: ClientSecurity) => {
    const c = createClient(reward.RewardServiceService, server.address, {
      security,
      defaults: { timeoutMs: 5000, attempts: 1 },
    });
    clients.push(c);
    return c;
  };
  const mtls = (name: string, token?: string): ClientSecurity => ({
    tls: { ca: pem("ca.crt"), cert: pem(`${name}.crt`), key: pem(`${name}.key`) },
    token,
  });

  before(async () => {
    await makeCertificates(dir, [
      { name: "server", sans: ["localhost", "127.0.0.1"] },
      { name: "orchestrator", sans: ["orchestrator"] },
      { name: "stranger", sans: ["stranger"] },
    ]);
    // A certificate from another CA, which the server must not trust.
    mkdirSync(join(dir, "rogue"));
    await makeCertificates(join(dir, "rogue"), [{ name: "orchestrator", sans: ["orchestrator"] }]);
    server = await start({
      tls: { cert: pem("server.crt"), key: pem("server.key"), ca: pem("ca.crt"), clientAuth: "require" },
      // the file may hold a token's digest instead of the token
      auth: {
        tokens: parseTokens(`ops sha256:${tokenDigest(TOKEN)}\n`),
        identities: new Set(["orchestrator"]),
      },
    });
  });
  after(async () => {
    for (const c of clients) c.$close();
    await server?.shutdown(100);
    rmSync(dir, { recursive: true, force: true });
  });

  test("HEALTH_PORT: plaintext health alone, for probes without TLS (Kubernetes gRPC probes)", async () => {
    const tls = {
      cert: pem("server.crt"),
      key: pem("server.key"),
      ca: pem("ca.crt"),
      clientAuth: "require" as const,
    };
    const s = await start({ tls }, 0);
    assert.ok(s.healthPort && s.healthPort !== s.port, `health port ${s.healthPort}, gRPC port ${s.port}`);
    const probe = `127.0.0.1:${s.healthPort}`;
    try {
      assert.equal(await checkHealth(probe, "", 5000, {}), "SERVING");
      assert.equal(await checkHealth(probe, "temper.reward.v1.RewardService", 5000, {}), "SERVING");
      // readiness follows the application's status (runService sets it from NATS)
      s.setHealth("temper.reward.v1.RewardService", "NOT_SERVING");
      assert.equal(await checkHealth(probe, "temper.reward.v1.RewardService", 5000, {}), "NOT_SERVING");
      assert.equal(await checkHealth(probe, "", 5000, {}), "SERVING");
      // nothing but health there: the application's RPCs and reflection are not served in plaintext
      const c = createClient(reward.RewardServiceService, probe, {
        security: {},
        defaults: { timeoutMs: 5000, attempts: 1 },
      });
      clients.push(c);
      assert.equal(await code(c.info({})), status.UNIMPLEMENTED);
      // the TLS port stays TLS only
      const plain = createClient(reward.RewardServiceService, s.address, {
        security: {},
        defaults: { timeoutMs: 5000, attempts: 1 },
      });
      clients.push(plain);
      assert.equal(await code(plain.info({})), status.UNAVAILABLE);
    } finally {
      await s.shutdown(100);
    }
    await assert.rejects(checkHealth(probe, "", 1000, {}));
  });

  test("a plaintext client cannot talk to a TLS server", async () => {
    assert.equal(await code(client({}).info({})), status.UNAVAILABLE);
  });

  test("mutual TLS required: no certificate, or one from another CA, is UNAUTHENTICATED", async () => {
    const noCert = client({ tls: { ca: pem("ca.crt") } });
    await assert.rejects(noCert.info({}), (e: GrpcError) => {
      assert.equal(e.code, status.UNAUTHENTICATED);
      assert.match(e.message, /requires a client certificate/);
      return true;
    });
    const rogue = client({
      tls: { ca: pem("ca.crt"), cert: pem("rogue/orchestrator.crt"), key: pem("rogue/orchestrator.key") },
    });
    assert.equal(await code(rogue.score({ groups })), status.UNAUTHENTICATED);
    // health stays open to any TLS client (probes)
    assert.equal(await checkHealth(server.address, "", 5000, { tls: { ca: pem("ca.crt") } }), "SERVING");
  });

  test("a client that does not trust the server's CA does not connect", async () => {
    const wrongCa = client({
      tls: { ca: pem("rogue/ca.crt"), cert: pem("stranger.crt"), key: pem("stranger.key") },
    });
    assert.equal(await code(wrongCa.info({})), status.UNAVAILABLE);
  });

  test("a mutating RPC needs an allowed identity or a valid token", async () => {
    const stranger = client(mtls("stranger"));
    assert.equal(await code(stranger.info({})), "OK", "reads need no credential");
    await assert.rejects(stranger.score({ groups }), (e: GrpcError) => {
      assert.equal(e.code, status.PERMISSION_DENIED);
      assert.match(e.message, /client certificate "stranger" is not allowed/);
      return true;
    });
    assert.equal(await code(client(mtls("orchestrator")).score({ groups })), "OK");
    assert.equal(await code(client(mtls("stranger", TOKEN)).score({ groups })), "OK");
    await assert.rejects(client(mtls("stranger", `${TOKEN}x`)).score({ groups }), (e: GrpcError) => {
      assert.equal(e.code, status.UNAUTHENTICATED);
      assert.match(e.message, /token is not valid/);
      return true;
    });
  });

  test("tokens alone, over plaintext: a mutating call without one is UNAUTHENTICATED", async () => {
    const plain = await start({ auth: { tokens: parseTokens(`ops ${TOKEN}\n`), identities: new Set() } });
    const c = (token?: string) => {
      const x = createClient(reward.RewardServiceService, plain.address, {
        security: { token },
        defaults: { timeoutMs: 5000, attempts: 1 },
      });
      clients.push(x);
      return x;
    };
    try {
      assert.equal(await code(c().info({})), "OK");
      await assert.rejects(c().score({ groups }), (e: GrpcError) => {
        assert.equal(e.code, status.UNAUTHENTICATED);
        assert.match(e.message, /^Score changes state and needs a credential/);
        return true;
      });
      assert.equal(await code(c(TOKEN).score({ groups })), "OK");
    } finally {
      await plain.shutdown(100);
    }
  });

  test("credentials are checked before the request is decoded: a refused 11 MB request is never read", async () => {
    let decoded = 0;
    const definition = {
      ...reward.RewardServiceService,
      score: {
        ...reward.RewardServiceService.score,
        requestDeserialize: (b: Buffer) => {
          decoded++;
          return reward.RewardServiceService.score.requestDeserialize(b);
        },
      },
    };
    const server = await startServer({
      name: "security-test",
      version: "0.0.1",
      port: 0,
      services: [service(definition, fixtureRewardService, { mutating: ["score"] })],
      descriptorSet: descriptorSetPath,
      logger,
      security: { auth: { tokens: parseTokens(`ops ${TOKEN}\n`), identities: new Set() } },
    });
    const raw = new Client(server.address, credentials.createInsecure());
    const send = (body: Buffer, token?: string) =>
      new Promise<number>((resolve) => {
        const md = new Metadata();
        if (token) md.set("authorization", `Bearer ${token}`);
        raw.makeUnaryRequest(
          reward.RewardServiceService.score.path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          md,
          { deadline: Date.now() + 10_000 },
          (err) => resolve(err?.code ?? status.OK),
        );
      });
    try {
      // a valid ScoreRequest of 11 MB: one group whose prompt is 11 MB of text
      const big = Buffer.from(
        reward.ScoreRequest.encode({ groups: [{ ...groups[0], prompt: "x".repeat(11 << 20) }] }).finish(),
      );
      assert.equal(await send(big), status.UNAUTHENTICATED);
      assert.equal(await send(big, "not-the-token"), status.UNAUTHENTICATED);
      assert.equal(decoded, 0, "a refused request was decoded");
      const small = Buffer.from(reward.ScoreRequest.encode({ groups }).finish());
      assert.equal(await send(small, TOKEN), status.OK);
      assert.equal(decoded, 1);
    } finally {
      raw.close();
      await server.shutdown(100);
    }
  });

  test("config: one line naming the variable for each mistake", () => {
    const cfg = (env: Record<string, string>) => loadConfig(securityConfigSchema(), env) as SecurityConfig;
    const problem = (env: Record<string, string>) => {
      try {
        serverSecurityFromConfig(cfg(env));
        return "";
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return `${err.variable}: ${err.message}`;
      }
    };
    assert.match(problem({ GRPC_TLS_CERT: join(dir, "server.crt") }), /^GRPC_TLS_KEY: .*go together/);
    assert.match(
      problem({
        GRPC_TLS_CERT: join(dir, "server.crt"),
        GRPC_TLS_KEY: join(dir, "server.key"),
        GRPC_TLS_CLIENT_AUTH: "require",
      }),
      /^GRPC_TLS_CLIENT_AUTH: .*needs .*GRPC_TLS_CA/,
    );
    assert.match(
      problem({ AUTH_IDENTITIES: "orchestrator" }),
      /^AUTH_IDENTITIES: AUTH_IDENTITIES needs GRPC_TLS_CLIENT_AUTH/,
    );
    assert.throws(() => cfg({ GRPC_TLS_CA: join(dir, "server.key") }), /GRPC_TLS_CA=.*holds no certificate/);
    assert.throws(
      () => cfg({ GRPC_TLS_CERT: join(dir, "missing.crt") }),
      /GRPC_TLS_CERT=.*cannot read .*ENOENT/,
    );
    const short = join(dir, "short-tokens");
    writeFileSync(short, "ops short\n");
    assert.match(
      problem({ AUTH_TOKENS_FILE: short }),
      /^AUTH_TOKENS_FILE: AUTH_TOKENS_FILE line 1: a token needs at least 16/,
    );
    assert.equal(problem({}), "");
  });

  test("node-forge certificates work for mutual TLS too", {
    skip: !opensslAvailable() && "forge is the default here",
  }, async () => {
    const fdir = join(dir, "forge");
    mkdirSync(fdir);
    assert.equal(
      await makeCertificates(
        fdir,
        [
          { name: "server", sans: ["localhost", "127.0.0.1"] },
          { name: "orchestrator", sans: ["orchestrator"] },
        ],
        "forge",
      ),
      "forge",
    );
    const f = (name: string) => readFileSync(join(fdir, name));
    const s = await start({
      tls: { cert: f("server.crt"), key: f("server.key"), ca: f("ca.crt"), clientAuth: "require" },
      auth: { tokens: new Map(), identities: new Set(["orchestrator"]) },
    });
    try {
      const c = createClient(reward.RewardServiceService, s.address, {
        security: { tls: { ca: f("ca.crt"), cert: f("orchestrator.crt"), key: f("orchestrator.key") } },
        defaults: { timeoutMs: 5000, attempts: 1 },
      });
      clients.push(c);
      assert.equal(await code(c.score({ groups })), "OK");
    } finally {
      await s.shutdown(100);
    }
  });
});
