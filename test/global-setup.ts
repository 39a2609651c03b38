// Placeholder until the fixture harness lands: e2e suites will get the local registry here.
export default async function setup(): Promise<void> {}
