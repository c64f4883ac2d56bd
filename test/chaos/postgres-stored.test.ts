/**
 * What worq stores and reads back, rewritten on postgres:// by something other than worq: a task's
 * metadata, progress and outcome, inbox rows (the events and counts a fold moves on), schedule
 * definitions. Reads, listings, waiters, the fold and the pools must report or leave out what they
 * cannot read, never stop on it. postgres-hostile.test.ts feeds hostile rows to the worker;
 * hostile.test.ts does both on Redis.
 */
import { expect } from 'chai'
import { getBroker, task, TaskFailure } from '../../lib/index.js'
import { postgresUrl } from '../helpers/postgres.js'
import { rig } from '../helpers/postgres-hostile.js'

describe('chaos: stored data that cannot be read [postgres]', function () {
  this.timeout(120_000)

  it('unreadable metadata, progress and outcomes: reads and listings say so (BadMessage); a waiter is told, not stopped', async () => {
    const r = await rig()
    const url = await postgresUrl()
    const reader = getBroker(url, r.queue)
    try {
      await r.pool.start()
      const q = r.broker.queue()
      const meta = await task(q.echo, { metadata: { a: 1 } })('m')
      const calls = {
        completed: await q.echo('c'),
        failed: await q.len(5),
        unknown: await q.echo('u'),
      }
      await Promise.all([meta.wait(10_000), ...Object.values(calls).map(d => d.wait(10_000))])
      const set = (id: string, column: string, value: string) =>
        r.db.query(`UPDATE worq.tasks SET ${column} = $3 WHERE queue = $1 AND id = $2`, [
          r.queue,
          id,
          value,
        ])
      await set(meta.id, 'metadata', '{not json')
      await set(meta.id, 'progress', '{"json":[1,')
      await set(calls.completed.id, 'outcome', 'cnot json')
      await set(calls.failed.id, 'outcome', 'f{"json":')
      await set(calls.unknown.id, 'outcome', 'zzz')

      const info = await reader.task(meta.id)
      expect(info?.metadata).to.deep.equal({})
      expect(info?.progress).to.equal(undefined)
      const bad = /^the task's outcome cannot be read: .+/
      for (const [kind, d] of Object.entries(calls)) {
        const i = await reader.task(d.id)
        expect(i?.status, kind).to.equal(kind === 'completed' ? 'completed' : 'failed')
        expect(i?.value, kind).to.equal(undefined)
        expect(i?.error, kind).to.include({ name: 'BadMessage', code: 'ERR_WORQ_BAD_MESSAGE' })
        expect(i?.error?.message, kind).to.match(bad)
      }
      // A waiter whose outcome is read from the row: an outcome over what a notification carries
      // (7 800 bytes) is announced by its kind alone. The row is rewritten as it ends.
      await r.db.query(`CREATE OR REPLACE FUNCTION public.hostile_garble() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          NEW.outcome := 'c{"json":' || repeat('x', 9000);
          RETURN NEW;
        END $$`)
      await r.db.query(`CREATE OR REPLACE TRIGGER hostile_garble BEFORE UPDATE OF state
        ON worq.tasks FOR EACH ROW WHEN (NEW.state = 'done' AND NEW.id LIKE 'garble-%')
        EXECUTE FUNCTION public.hostile_garble()`)
      try {
        const big = await task(q.echo, { id: `garble-${r.queue}` })('y'.repeat(9000))
        const err = await big.result(10_000).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(err).to.be.instanceOf(TaskFailure)
        expect((err as TaskFailure).remote).to.include({
          name: 'BadMessage',
          code: 'ERR_WORQ_BAD_MESSAGE',
        })
        expect((err as TaskFailure).taskId).to.equal(big.id)
        expect(await big.status()).to.equal('completed')
      } finally {
        await r.db.query(`DROP TRIGGER IF EXISTS hostile_garble ON worq.tasks`)
      }
      const listed = await reader.tasks({ limit: 10 })
      expect(listed.map(t => t.id)).to.include.members([
        meta.id,
        ...Object.values(calls).map(d => d.id),
      ])
      expect(r.errors).to.deep.equal([])
    } finally {
      await reader.close()
      await r.close()
    }
  })

  it('inbox rows the fold cannot read go; events and metrics go on (schema version 23)', async () => {
    const r = await rig()
    try {
      await r.pool.start()
      const q = r.broker.queue()
      expect(await (await q.echo('before')).result(10_000)).to.equal('before')
      const bodies = [
        '5',
        '"text"',
        '[1,2]',
        '{"es":5}',
        '{"es":[1,[2]]}',
        '{"en":"x"}',
        '{"t":"not a time","k":"c"}',
        '{"ms":[{"k":"c","t":"bad"}]}',
        '{"ms":7}',
        '{"t":1,"k":"c","run":"slow"}',
      ]
      for (const body of bodies)
        await r.db.query(`INSERT INTO worq.inbox (queue, body) VALUES ($1, $2::json)`, [
          r.queue,
          body,
        ])
      const after = await Promise.all(Array.from({ length: 5 }, (_, i) => q.echo(i)))
      await Promise.all(after.map(d => d.result(10_000)))
      // A reader folds first: it must not fail, and it counts the calls around the bad rows.
      const metrics = await r.broker.metrics()
      expect(metrics.totals.completed).to.equal(6)
      const { rows } = await r.db.query<{ n: string }>(
        `SELECT count(*) AS n FROM worq.inbox WHERE queue = $1`,
        [r.queue],
      )
      expect(Number(rows[0]!.n), 'inbox rows left').to.equal(0)
      const types: string[] = []
      const stream = r.broker.events({ since: '0' })
      try {
        for await (const e of stream) {
          types.push(e.type)
          if (types.filter(t => t === 'completed').length === 6) break
        }
      } finally {
        await stream.close()
      }
      expect(types.filter(t => t === 'enqueued')).to.have.length(6)
      expect(r.errors).to.deep.equal([])
    } finally {
      await r.close()
    }
  })

  it('a schedule definition that does not read as one is left out; the others and the pool go on', async () => {
    const r = await rig()
    try {
      await r.pool.start()
      const q = r.broker.queue()
      await r.broker.schedule('bad', { every: 60_000 }, q.echo, 1)
      await r.broker.schedule('good', { every: 60_000 }, q.echo, 2)
      await r.db.query(
        `UPDATE worq.schedules SET body = '{"x":1}'::jsonb WHERE queue = $1 AND id = 'bad'`,
        [r.queue],
      )
      expect((await r.broker.schedules()).map(s => s.id)).to.deep.equal(['good'])
      // A schedule stored after it reloads every pool's schedules (a notification).
      await r.broker.schedule('later', { every: 60_000 }, q.echo, 3)
      expect((await r.broker.schedules()).map(s => s.id)).to.deep.equal(['good', 'later'])
      expect(await (await q.echo('after')).result(10_000)).to.equal('after')
      expect(await r.broker.unschedule('bad'), 'unschedule of the unreadable one').to.equal(true)
      expect(r.errors).to.deep.equal([])
    } finally {
      await r.close()
    }
  })

  it('a limit whose spec does not read as one binds nothing and is left out of limits(); the queue runs (schema version 23)', async () => {
    const r = await rig()
    try {
      await r.pool.start()
      const q = r.broker.queue()
      await r.broker.limit('echo', { concurrency: 3 })
      await r.broker.limit('*', { rate: { max: 1000, per: 1000 } })
      await r.broker.limit('len', { concurrency: 1 })
      await r.db.query(
        `UPDATE worq.limits SET spec = $2::jsonb WHERE queue = $1 AND name = 'echo'`,
        [r.queue, '{"concurrency":"lots"}'],
      )
      await r.db.query(`UPDATE worq.limits SET spec = $2::jsonb WHERE queue = $1 AND name = '*'`, [
        r.queue,
        '{"rate":{"max":"lots","per":-1}}',
      ])
      expect(await r.broker.limits()).to.deep.equal({ len: { concurrency: 1 } })
      const calls = await Promise.all(Array.from({ length: 10 }, (_, i) => q.echo(i)))
      expect(await Promise.all(calls.map(d => d.result(10_000)))).to.have.length(10)
      expect(await (await q.len('xyz')).result(10_000)).to.equal(3)
      expect(r.errors).to.deep.equal([])
    } finally {
      await r.close()
    }
  })

  it('stored events that do not read as events are skipped, once: a reader neither stops nor starts over', async () => {
    const r = await rig()
    try {
      await r.pool.start()
      const q = r.broker.queue()
      await Promise.all((await Promise.all([q.echo(1), q.echo(2)])).map(d => d.result(10_000)))
      await r.broker.metrics() // folds the inbox into events
      // Every row's body replaced by one event among things that are not events, a list longer
      // than the events the row holds (its count): read past its count, the last numbers would
      // pass the queue's last event, and every read would start over.
      const junk = Array.from({ length: 12 }, (_, i) => ({ type: `x${i}` }))
      await r.db.query(`UPDATE worq.events SET body = $2::jsonb WHERE queue = $1`, [
        r.queue,
        JSON.stringify([
          { type: 'completed', id: 'i', name: 'n', time: 1 },
          { type: 5 },
          7,
          ...junk,
        ]),
      ])
      const seen: string[] = []
      const stream = r.broker.events({ since: '0' })
      stream.on('*', e => seen.push(e.type))
      // Long enough for a reader that starts over to come back to the first rows many times.
      await new Promise(resolve => setTimeout(resolve, 1000))
      await stream.close()
      expect(seen.filter(t => t === 'gap').length, 'gaps').to.be.at.most(1)
      expect(
        seen.every(t => ['gap', 'completed'].includes(t)),
        seen.join(' '),
      ).to.equal(true)
      expect(seen.length, 'events read').to.be.below(20)
      expect(r.errors).to.deep.equal([])
    } finally {
      await r.close()
    }
  })
})
