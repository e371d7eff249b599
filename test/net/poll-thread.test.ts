/** PollThread tells its owner when the thread stops serving on its own: by throwing, or by exiting unasked. */
import test from 'ava';
import { PollThread } from '../../src/net/poll-thread.ts';
import { waitFor } from '../helpers/netns.ts';
import type { FixtureMessage } from './poll-thread-worker.ts';

const ENTRY = new URL('./poll-thread-worker.ts', import.meta.url);

function start(): { thread: PollThread<FixtureMessage, FixtureMessage>; replies: FixtureMessage[]; failures: Error[] } {
  const replies: FixtureMessage[] = [];
  const failures: Error[] = [];
  const thread = PollThread.start<FixtureMessage, FixtureMessage>(
    ENTRY,
    (msg) => replies.push(msg),
    (err) => failures.push(err),
  );
  return { thread, replies, failures };
}

test('a thread stopped by stop() is no failure', async (t) => {
  const { thread, replies, failures } = start();
  thread.post({ type: 'echo' });
  await waitFor('the echo', () => replies.length === 1, 20_000, 20);
  await thread.stop({ type: 'stop' });
  t.deepEqual(failures, []);
  t.is(thread.broken, undefined);
});

test('a thread that throws is broken, and its owner hears why, once', async (t) => {
  const { thread, failures } = start();
  thread.post({ type: 'throw' });
  await waitFor('the failure', () => failures.length > 0, 20_000, 20);
  t.regex(failures[0]!.message, /boom in the thread/);
  t.is(thread.broken, failures[0]);
  await thread.stop({ type: 'stop' });
  t.is(failures.length, 1);
});

test('a thread that exits without being asked is broken too, with its exit code', async (t) => {
  const { thread, failures } = start();
  thread.post({ type: 'exit' });
  await waitFor('the failure', () => failures.length > 0, 20_000, 20);
  t.regex(failures[0]!.message, /exited \(code 3\) without being asked to stop/);
  t.is(thread.broken, failures[0]);
  await thread.stop({ type: 'stop' });
  t.is(failures.length, 1);
});
