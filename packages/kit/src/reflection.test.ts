// Reflection v1 and v1alpha against a real server: a client that knows only the bytes reflection
// sends resolves SchedulerService/Score's input type and the imported temper.common.v1.Group.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, createFileRegistry, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { Client, credentials, Metadata, status } from "@grpc/grpc-js";
import { type common, descriptorSetPath, reward, scheduler } from "@temper/proto";
import { fixtureRewardService } from "../test/reward-fixture.ts";
import { createLogger } from "./logger.ts";
import {
  decodeReflectionResponse,
  encodeReflectionRequest,
  type ReflectionRequest,
  type ReflectionResponse,
} from "./reflection.ts";
import { type ServerHandle, service, startServer } from "./server.ts";

const logger = createLogger({ name: "kit-test", level: "silent" });

/** Sends the requests on one ServerReflectionInfo stream and collects the answers in order. */
async function reflect(address: string, version: "v1" | "v1alpha", requests: ReflectionRequest[]) {
  const client = new Client(address, credentials.createInsecure());
  try {
    const call = client.makeBidiStreamRequest(
      `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      (r: ReflectionRequest) => encodeReflectionRequest("", r),
      (b: Buffer) => decodeReflectionResponse(b),
      new Metadata(),
      { deadline: Date.now() + 5000 },
    );
    const out: ReflectionResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (r: ReflectionResponse) => out.push(r));
      call.on("end", resolve);
      call.on("error", reject);
    });
    for (const r of requests) call.write(r);
    call.end();
    await done;
    return out;
  } finally {
    client.close();
  }
}

/** Orders files so every import precedes its importer (what a descriptor pool needs). */
function importsFirst(files: FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const out: FileDescriptorProto[] = [];
  const visit = (f: FileDescriptorProto) => {
    if (out.includes(f)) return;
    for (const d of f.dependency) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    out.push(f);
  };
  files.forEach(visit);
  return out;
}

describe("server reflection", () => {
  let server: ServerHandle;
  before(async () => {
    // The scheduler service is registered with a stub: only its descriptors matter here.
    const unimplemented = () => {
      throw new Error("not used");
    };
    server = await startServer({
      name: "kit-test",
      version: "0.0.1",
      port: 0,
      services: [
        service(reward.RewardServiceService, fixtureRewardService),
        service(scheduler.SchedulerServiceService, {
          configure: unimplemented,
          score: unimplemented,
          getState: unimplemented,
        }),
      ],
      descriptorSet: descriptorSetPath,
      logger,
    });
  });
  after(() => server.shutdown(1000));

  for (const version of ["v1", "v1alpha"] as const) {
    test(`${version}: a method's cross-file input type resolves from reflection bytes alone`, async () => {
      const [listed, found] = await reflect(server.address, version, [
        { kind: "listServices", value: "*" },
        { kind: "fileContainingSymbol", value: "temper.scheduler.v1.SchedulerService" },
      ]);
      assert.equal(listed.kind, "services");
      assert.deepEqual(
        (listed as { names: string[] }).names.sort(),
        [
          "temper.reward.v1.RewardService",
          "temper.scheduler.v1.SchedulerService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ].sort(),
      );
      assert.equal(found.kind, "files");
      const files = (found as { files: Uint8Array[] }).files.map((b) =>
        fromBinary(FileDescriptorProtoSchema, b),
      );
      assert.equal(files[0].name, "temper/scheduler/v1/scheduler.proto");
      assert.ok(files.some((f) => f.name === "temper/common/v1/common.proto"));

      // createFileRegistry fails on any import it cannot find among the files sent.
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files) }));
      const method = registry
        .getService("temper.scheduler.v1.SchedulerService")
        ?.methods.find((m) => m.name === "Score");
      assert.ok(method, "Score method resolved");
      assert.equal(method.input.typeName, "temper.scheduler.v1.ScoreRequest");
      const groups = method.input.fields.find((f) => f.name === "groups");
      assert.equal(groups?.fieldKind, "list");
      const group =
        groups?.fieldKind === "list" && groups.listKind === "message" ? groups.message : undefined;
      assert.equal(group?.typeName, "temper.common.v1.Group");
      assert.deepEqual(
        group?.fields.map((f) => f.name),
        ["id", "prompt", "reference", "completions", "prompt_token_ids"],
      );

      // The resolved schema decodes bytes written by the generated encoder.
      const bytes = scheduler.ScoreRequest.encode({
        runId: "r1",
        step: 7,
        groups: [{ id: "g1", prompt: "2+2?", reference: "4", promptTokenIds: [], completions: [] }],
      }).finish();
      const decoded = fromBinary(method.input, bytes) as unknown as { runId: string; groups: common.Group[] };
      assert.equal(decoded.runId, "r1");
      assert.equal(decoded.groups[0].prompt, "2+2?");
    });
  }

  test("grpc.health.v1.Health/Check resolves and answers for a client that knows only reflection", async () => {
    const [found, refl] = await reflect(server.address, "v1", [
      { kind: "fileContainingSymbol", value: "grpc.health.v1.Health" },
      { kind: "fileContainingSymbol", value: "grpc.reflection.v1alpha.ServerReflection" },
    ]);
    assert.equal(found.kind, "files");
    assert.equal(refl.kind, "files");
    const files = (found as { files: Uint8Array[] }).files.map((b) =>
      fromBinary(FileDescriptorProtoSchema, b),
    );
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files) }));
    const check = registry.getService("grpc.health.v1.Health")?.methods.find((m) => m.name === "Check");
    assert.ok(check, "Check resolved");
    assert.equal(check.input.typeName, "grpc.health.v1.HealthCheckRequest");
    // The call itself, with messages built and read from the reflected schema only.
    const client = new Client(server.address, credentials.createInsecure());
    try {
      const answer = await new Promise<Record<string, unknown>>((resolve, reject) =>
        client.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          (m: unknown) => Buffer.from(toBinary(check.input, m as never)),
          (b: Buffer) => toJson(check.output, fromBinary(check.output, b)) as Record<string, unknown>,
          create(check.input, { service: "temper.reward.v1.RewardService" } as never),
          new Metadata(),
          { deadline: Date.now() + 5000 },
          (err, res) => (err ? reject(err) : resolve(res as Record<string, unknown>)),
        ),
      );
      assert.deepEqual(answer, { status: "SERVING" });
    } finally {
      client.close();
    }
  });

  test("file by name returns the file and its imports; unknown symbols are NOT_FOUND", async () => {
    const [byName, missing] = await reflect(server.address, "v1", [
      { kind: "fileByFilename", value: "temper/reward/v1/reward.proto" },
      { kind: "fileContainingSymbol", value: "temper.nope.v1.Missing" },
    ]);
    assert.equal(byName.kind, "files");
    const names = (byName as { files: Uint8Array[] }).files.map(
      (b) => fromBinary(FileDescriptorProtoSchema, b).name,
    );
    assert.deepEqual(names, ["temper/reward/v1/reward.proto", "temper/common/v1/common.proto"]);
    assert.deepEqual(missing, {
      kind: "error",
      code: status.NOT_FOUND,
      message: 'symbol "temper.nope.v1.Missing" not found',
    });
  });
});
