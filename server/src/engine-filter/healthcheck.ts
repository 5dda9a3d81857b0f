/**
 * The engine filter's health check (compose.yaml's `engine-filter` service): healthy when
 * `GET /_ping` through the filter's socket gets the engine's `OK`, i.e. the filter listens
 * and reaches the engine.
 */
import { request } from 'node:http';
import { loadFilterConfig } from './config.ts';

const { listen } = loadFilterConfig(process.env);
const target =
  listen.kind === 'unix' ? { socketPath: listen.path } : { host: listen.host, port: listen.port };
const req = request({ ...target, path: '/_ping', timeout: 4000 }, (res) => {
  let body = '';
  res.on('data', (c) => {
    body += c;
  });
  res.on('end', () => {
    if (res.statusCode === 200 && body === 'OK') {
      console.log('healthy');
      process.exit(0);
    }
    console.error(`unhealthy: HTTP ${res.statusCode} ${body.slice(0, 200)}`);
    process.exit(1);
  });
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  console.error(`unhealthy: ${err.message}`);
  process.exit(1);
});
req.end();
