// Endpoints with several servers: parsing, and round_robin over a list of real servers.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { descriptorSetPath, reward } from "@temper/proto";
import { createClient } from "./client.ts";
import { grpcTarget, parseEndpoint } from "./endpoints.ts";
import { createLogger } from "./logger.ts";
import { type ServerHandle, service, startServer } from "./server.ts";

describe("endpoints", () => {
  test("one host:port is the target as written; a list of IPs becomes an ipv4:/ipv6: target", () => {
    assert.equal(grpcTarget("reward-correctness:15051"), "reward-correctness:15051");
    assert.equal(grpcTarget("127.0.0.1:1, 127.0.0.1:2"), "ipv4:127.0.0.1:1,127.0.0.1:2");
    assert.equal(grpcTarget("[::1]:1,[::1]:2"), "ipv6:[::1]:1,[::1]:2");
    assert.deepEqual(
      parseEndpoint("10.0.0.1:7,10.0.0.2:7").map((e) => [e.host, e.port]),
      [
        ["10.0.0.1", 7],
        ["10.0.0.2", 7],
      ],
    );
  });

  test("bad lists name the entry at fault", () => {
    assert.throws(
      () => parseEndpoint("127.0.0.1:1,127.0.0.1:0"),
      /entry 2: port must be in \[1, 65535\], got 0/,
    );
    assert.throws(() => parseEndpoint("127.0.0.1:1,rollout:2"), /rollout:2 is a name/);
    assert.throws(() => parseEndpoint("127.0.0.1:1,[::1]:2"), /all IPv4 or all IPv6/);
    assert.throws(() => parseEndpoint("nope"), /must be host:port, got "nope"/);
  });

  describe("round_robin over a list", () => {
    const logger = createLogger({ name: "kit-test", level: "silent" });
    const servers: ServerHandle[] = [];
    const served = [0, 0, 0];
    before(async () => {
      for (let i = 0; i < 3; i++)
        servers.push(
          await startServer({
            name: `replica-${i}`,
            version: "0.0.1",
            port: 0,
            descriptorSet: descriptorSetPath,
            logger,
            services: [
              service(reward.RewardServiceService, {
                score: () => ({ results: [] }),
                info: () => {
                  served[i]++;
                  return { name: `replica-${i}`, version: "v", components: [] };
                },
              }),
            ],
          }),
        );
    });
    after(async () => {
      for (const s of servers) await s.shutdown(1000);
    });

    test("calls on one client reach every server of the list", async () => {
      const list = servers.map((s) => `127.0.0.1:${s.port}`).join(",");
      const client = createClient(reward.RewardServiceService, list, { defaults: { timeoutMs: 5000 } });
      try {
        assert.equal(client.$address, list);
        const names = [];
        for (let i = 0; i < 12; i++) names.push((await client.info({})).name);
        // the first calls go to whichever server connected first; then each takes its turn
        assert.ok(
          served.every((n) => n >= 2),
          `calls per server ${served.join(", ")}: ${names.join(" ")}`,
        );
      } finally {
        client.$close();
      }
    });
  });
});
