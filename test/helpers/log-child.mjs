// A process that logs one record per level through dist/log.js, for tests of what reaches a terminal or the
// journal. LOG_AS_JOURNAL=1 plays systemd: JOURNAL_STREAM names this process's stdout, as a unit's would.
import { fstatSync } from 'node:fs';
import { resolve } from 'node:path';

if (process.env.LOG_AS_JOURNAL === '1') {
  const st = fstatSync(1, { bigint: true });
  process.env.JOURNAL_STREAM = `${st.dev}:${st.ino}`;
}
const { createLogger } = await import(resolve(import.meta.dirname, '../../dist/log.js'));
const log = createLogger({ level: 'debug', to: process.env.LOG_TO ?? 'stderr' }).child({
  component: 'probe',
});
log.debug('debug line');
log.info({ bytes: 5, ref: 'a b' }, 'info line');
log.warn('warn line');
const cause = new Error('inner cause');
log.error({ err: new Error('outer failure', { cause }) }, 'error line');
