/** A poll thread's stand-in for test/net/poll-thread.test.ts: each message says what it does (answer, throw, exit unasked, stop). */
import { workerData } from 'node:worker_threads';
import type { PollThreadData } from '../../src/net/poll-thread.ts';

export type FixtureMessage = { type: 'echo' | 'throw' | 'exit' | 'stop' };

const { port } = workerData as PollThreadData;
port.on('message', (batch: FixtureMessage[]) => {
  for (const m of batch) {
    if (m.type === 'echo') port.postMessage([{ type: 'echo' }]);
    else if (m.type === 'throw') throw new Error('boom in the thread');
    else if (m.type === 'exit') process.exit(3);
    else process.exit(0);
  }
});
