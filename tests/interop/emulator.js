// Starts and stops `ibsync emulator` for the SDK interop test.
//
// The binary comes from the IBSYNC_BIN environment variable (ctest passes
// it through run-sdk.sh). The emulator listens on 127.0.0.1:0 and tells
// its port on stdout ("ibsync emulator listening on http://127.0.0.1:PORT").
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const READY = /^ibsync emulator listening on (http:\/\/\S+)$/m;

function binary() {
  const bin = process.env.IBSYNC_BIN;
  if (!bin) throw new Error('IBSYNC_BIN must name the ibsync binary');
  return bin;
}

// Starts an emulator on a new data directory; resolves to
// {url, dataDir, proc, stderr(), stop()}.
async function startEmulator(extraArgs = []) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ibsync-sdk-'));
  const args = ['emulator', '--listen', '127.0.0.1:0', '--data', dataDir, ...extraArgs];
  const proc = spawn(binary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`emulator not ready after 10 s: ${stderr}`)),
      10000);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = READY.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`emulator exited with ${code}: ${stderr}`));
    });
  });
  proc.removeAllListeners('exit');
  // SIGTERM, then resolves to the exit code (0 after a clean shutdown).
  const stop = () => new Promise((resolve) => {
    const done = (code) => {
      fs.rmSync(dataDir, { recursive: true, force: true });
      resolve(code);
    };
    if (proc.exitCode !== null) {
      done(proc.exitCode);
      return;
    }
    proc.on('exit', done);
    proc.kill('SIGTERM');
  });
  return { url, dataDir, proc, stderr: () => stderr, stop };
}

module.exports = { startEmulator };
