/** A valid lab definition for unit tests (parsed by the real schema, so defaults apply). */
import { LabDef } from '../../labs/schema.ts';

export function testLab(over: Partial<Record<keyof LabDef, unknown>> = {}): LabDef {
  return LabDef.parse({
    id: 'processes',
    title: 'A container is a process',
    description: 'd',
    app: { command: 'exec busybox httpd -f -p 8080 -h /srv/www', hostname: 'box' },
    terminals: [
      { name: 'container', title: 'Inside the container', target: 'container' },
      { name: 'host', title: 'On the host', target: 'host' },
    ],
    limits: { memory: '128m', cpus: 0.5, pids: 100, tmp: '16m' },
    ...over,
  });
}
