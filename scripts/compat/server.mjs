// Starts the stream binary on a free port with a config file and resolves
// to its base URL once it logs that it listens.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export function startSluice(bin, config) {
  const server = spawn(bin, ['-addr', '127.0.0.1:0', '-config', config], { stdio: ['ignore', 'inherit', 'pipe'] });
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 15s')), 15000);
    server.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
    createInterface({ input: server.stderr }).on('line', (line) => {
      try {
        const rec = JSON.parse(line);
        if (rec.msg === 'listening') {
          clearTimeout(timer);
          resolve(rec.url);
        }
      } catch {
        process.stderr.write(line + '\n');
      }
    });
  });
  return { server, url };
}
