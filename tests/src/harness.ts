// One object per test file that owns every process and client it started, so a single
// `after(() => h.close())` cleans up even when a test fails halfway.
import { createClient, type PromiseClient, type ServiceDefinition } from "@temper/kit";
import { reward, scheduler } from "@temper/proto";
import {
  type StartServiceOptions,
  startNats,
  startService,
  type TestNats,
  type TestService,
} from "./processes.ts";

export class Harness {
  private readonly services: TestService[] = [];
  private readonly clients: { $close(): void }[] = [];
  /** A promise, so that services started concurrently share one server. */
  private natsServer: Promise<TestNats> | undefined;

  /** The harness's nats-server (started on first use). */
  async nats(): Promise<TestNats> {
    this.natsServer ??= startNats();
    return this.natsServer;
  }

  /** Starts services/<name>; with `withNats` the harness's NATS URL is passed. */
  async service(
    name: string,
    options: StartServiceOptions & { withNats?: boolean } = {},
  ): Promise<TestService> {
    const nats = options.withNats ? await this.nats() : options.nats;
    const svc = await startService(name, { ...options, nats });
    this.services.push(svc);
    return svc;
  }

  client<D extends ServiceDefinition>(definition: D, address: string): PromiseClient<D> {
    const c = createClient(definition, address, { defaults: { timeoutMs: 30_000 } });
    this.clients.push(c);
    return c;
  }

  rewardClient(address: string) {
    return this.client(reward.RewardServiceService, address);
  }

  schedulerClient(address: string) {
    return this.client(scheduler.SchedulerServiceService, address);
  }

  /** Closes clients, stops services (SIGTERM, then SIGKILL after 15 s), stops NATS. */
  async close(): Promise<void> {
    for (const c of this.clients.splice(0)) c.$close();
    await Promise.all(this.services.splice(0).map((s) => s.stop().catch(() => s.kill())));
    await (await this.natsServer?.catch(() => undefined))?.stop();
    this.natsServer = undefined;
  }
}
