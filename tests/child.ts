// TypeScript scripts of the project run in a child process (vite-node in a plain `node`, so that
// Node flags such as --expose-gc apply and a kill reaches the process itself, not an npx wrapper).
// A child that outlives `timeout` is killed with SIGKILL: vite-node handles SIGTERM in JavaScript,
// which a process deadlocked in native code never runs.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';

const VITE_NODE = createRequire(import.meta.url).resolve('vite-node/cli');

export interface ChildResult {
  /** The exit status (null when killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node [nodeFlags] vite-node <args>` and resolves with how it ended (never rejects). */
export function viteNode(
  args: readonly string[],
  opts: { timeout: number; nodeFlags?: readonly string[]; env?: NodeJS.ProcessEnv },
): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...(opts.nodeFlags ?? []), VITE_NODE, ...args],
      { timeout: opts.timeout, killSignal: 'SIGKILL', maxBuffer: 16 << 20, env: opts.env ?? process.env },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: number | string; signal?: NodeJS.Signals | null }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
      },
    );
  });
}
