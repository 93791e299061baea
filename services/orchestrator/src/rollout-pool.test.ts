// The rollout servers of a step: entries resolved per call (an injected resolver stands in for a
// headless Service's DNS), in a fixed order, clients kept across calls and closed once gone, and
// the shards of a step a fixed function of its prompts and that list.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, type GrpcError, Status } from "@temper/kit";
import { rollout } from "@temper/proto";
import { shardRanges } from "./prompts.ts";
import { type Resolver, RolloutPool } from "./rollout-pool.ts";

function pool(entries: string[], resolver: Resolver, closeAfterMs = 20) {
  const made: { address: string; authority: string | undefined; closed: boolean }[] = [];
  const p = new RolloutPool(
    entries,
    (address, authority) => {
      const c = createClient(rollout.RolloutServiceService, address, { authority });
      const rec = { address, authority, closed: false };
      made.push(rec);
      const close = c.$close;
      c.$close = () => {
        rec.closed = true;
        close();
      };
      return c;
    },
    { resolver, closeAfterMs },
  );
  return { p, made };
}

test("a name is every address it resolves to, sorted; the list follows scaling at each call", async () => {
  let records = ["10.0.0.10", "10.0.0.2", "10.0.0.3"];
  const asked: string[] = [];
  const { p, made } = pool(["rollout-pods:15070"], async (host) => {
    asked.push(host);
    return records;
  });
  try {
    const first = await p.endpoints();
    assert.deepEqual(
      first.map((c) => c.$address),
      ["10.0.0.2:15070", "10.0.0.3:15070", "10.0.0.10:15070"],
    );
    // TLS is checked against the Service's name, not the pod IP
    assert.deepEqual(new Set(made.map((m) => m.authority)), new Set(["rollout-pods"]));

    // the same records in another order: the same servers in the same order, the same clients
    records = ["10.0.0.3", "10.0.0.10", "10.0.0.2"];
    const again = await p.endpoints();
    assert.deepEqual(again, first);
    assert.equal(made.length, 3);

    // scaled up to 4 then down to 2: a new client for the new pod only; gone pods are closed later
    records = ["10.0.0.2", "10.0.0.3", "10.0.0.10", "10.0.0.11"];
    const up = await p.endpoints();
    assert.equal(up.length, 4);
    assert.equal(made.length, 4);
    assert.deepEqual(up.slice(0, 3), first);
    records = ["10.0.0.3", "10.0.0.11"];
    const down = await p.endpoints();
    assert.deepEqual(
      down.map((c) => c.$address),
      ["10.0.0.3:15070", "10.0.0.11:15070"],
    );
    assert.ok(
      made.every((m) => !m.closed),
      "nothing closed at once: a call may still be in flight",
    );
    await sleep(60);
    assert.deepEqual(
      made.filter((m) => m.closed).map((m) => m.address),
      ["10.0.0.2:15070", "10.0.0.10:15070"],
    );
    // a pod that comes back gets a fresh client
    records = ["10.0.0.2", "10.0.0.3", "10.0.0.11"];
    assert.equal((await p.endpoints()).length, 3);
    assert.equal(made.length, 5);
    assert.deepEqual(asked, Array(5).fill("rollout-pods"), "resolved once per call");
  } finally {
    p.close();
  }
});

test("the shards of a step are a fixed function of its prompts and the server list", async () => {
  let records = ["10.1.0.7", "10.1.0.5"];
  const { p } = pool(["rollout-pods:15070"], async () => records);
  try {
    const assign = async () => {
      const servers = await p.endpoints();
      const shards = shardRanges(10, servers.length);
      return shards.map(([from, to], k) => `${servers[k].$address}:${from}-${to}`);
    };
    const a = await assign();
    assert.deepEqual(a, ["10.1.0.5:15070:0-5", "10.1.0.7:15070:5-10"]);
    records = ["10.1.0.5", "10.1.0.7"];
    assert.deepEqual(await assign(), a);
    records = ["10.1.0.5", "10.1.0.6", "10.1.0.7"];
    assert.deepEqual(await assign(), ["10.1.0.5:15070:0-3", "10.1.0.6:15070:3-6", "10.1.0.7:15070:6-10"]);
  } finally {
    p.close();
  }
});

test("IP entries are not resolved, entries keep their order, a server named twice counts once", async () => {
  const asked: string[] = [];
  const { p } = pool(["127.0.0.1:7001", "workers:7002", "127.0.0.1:7001", "[::1]:7003"], async (h) => {
    asked.push(h);
    return ["10.2.0.1"];
  });
  try {
    assert.deepEqual(
      (await p.endpoints()).map((c) => c.$address),
      ["127.0.0.1:7001", "10.2.0.1:7002", "[::1]:7003"],
    );
    assert.deepEqual(asked, ["workers"]);
  } finally {
    p.close();
  }
});

test("a name that does not resolve is UNAVAILABLE (the runner retries it), naming the entry", async () => {
  const none = pool(["rollout-pods:15070"], async () => []).p;
  await assert.rejects(none.endpoints(), (e: GrpcError) => {
    assert.equal(e.code, Status.UNAVAILABLE);
    assert.match(e.message, /ROLLOUT_ADDR entry rollout-pods:15070: rollout-pods has no address/);
    return true;
  });
  // the real resolver on a name no DNS knows
  const nx = new RolloutPool(["temper-no-such-host.invalid:15070"], () => {
    throw new Error("no client expected");
  });
  await assert.rejects(nx.endpoints(), (e: GrpcError) => {
    assert.equal(e.code, Status.UNAVAILABLE);
    assert.match(e.message, /cannot resolve temper-no-such-host\.invalid: (ENOTFOUND|EAI_AGAIN)/);
    return true;
  });
  assert.throws(() => new RolloutPool(["rollout:0"], () => undefined as never), /port must be in/);
});

test("the real resolver: localhost is one server, not one per address family", async () => {
  const { p } = pool(["localhost:7010"], (await import("./rollout-pool.ts")).dnsResolver);
  try {
    assert.deepEqual(
      (await p.endpoints()).map((c) => c.$address),
      ["127.0.0.1:7010"],
    );
  } finally {
    p.close();
  }
});
