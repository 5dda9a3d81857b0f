/**
 * For test files that start servers themselves (startServer in a test, not a fixture): a
 * test that fails before stopping its server must neither keep the file's process alive
 * (the child's pipes would, forever) nor leave the server and its containers running.
 * The benchmark and the scripts never import this: they stop what they start themselves.
 */
import { after } from 'node:test';
import { stopStartedServers } from './server.ts';

/** Call once at the top of a test file: after its last test, SIGTERM every server still running. */
export function stopServersAfterTests(): void {
  after(stopStartedServers);
}
