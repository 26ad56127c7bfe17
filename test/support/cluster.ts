/** The test run's database server, set once by global-setup.ts. */
export interface TestCluster {
  superuserUrl: string;
  passwords: { owner: string; runtime: string };
  /** A migrated database every test file clones. */
  template: string;
  /** Prefix of this run's database names (so parallel runs on one server never collide). */
  prefix: string;
}

// NOTE: kept on globalThis, not in module state: mocha may load a test file through require() or
// import() (files with top-level await), which gives two instances of this module.
const KEY = Symbol.for('enamel.test.cluster');
const store = globalThis as unknown as { [KEY]?: TestCluster };

export function setTestCluster(value: TestCluster): void {
  store[KEY] = value;
}

export function testCluster(): TestCluster {
  const cluster = store[KEY];
  if (!cluster) throw new Error('test cluster not started: run the tests through `npm test` (mocha global setup)');
  return cluster;
}
