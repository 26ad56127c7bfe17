/** The test run's database server, set once by global-setup.ts. */
export interface TestCluster {
  superuserUrl: string;
  passwords: { owner: string; runtime: string };
  /** A migrated database every test file clones. */
  template: string;
  /** Prefix of this run's database names (so parallel runs on one server never collide). */
  prefix: string;
}

let cluster: TestCluster | undefined;

export function setTestCluster(value: TestCluster): void {
  cluster = value;
}

export function testCluster(): TestCluster {
  if (!cluster) throw new Error('test cluster not started: run the tests through `npm test` (mocha global setup)');
  return cluster;
}
