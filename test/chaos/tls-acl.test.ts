import { expect } from 'chai'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getBroker, TaskSpace, WorkerPool } from '../../lib/index.js'
import { uniqueQueue } from '../helpers/util.js'

function freePort(): Promise<number> {
  return new Promise(resolve => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

describe('chaos: TLS and ACL users', function () {
  this.timeout(60_000)
  let dir: string
  let server: ChildProcess
  let port: number
  let ca: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'worq-tls-'))
    // A throwaway certificate for 127.0.0.1, made with openssl in the test's own directory.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    )
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8')
    port = await freePort()
    server = spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--tls-cert-file',
        join(dir, 'cert.pem'),
        '--tls-key-file',
        join(dir, 'key.pem'),
        '--tls-ca-cert-file',
        join(dir, 'cert.pem'),
        '--tls-auth-clients',
        'no',
        '--user',
        'default',
        'off',
        '--user',
        'worq',
        'on',
        '>s3cret',
        '~*',
        '&*',
        '+@all',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    await new Promise<void>((resolve, reject) => {
      server.once('exit', code => reject(new Error(`redis-server exited ${code}`)))
      server.stdout!.on('data', (d: Buffer) => {
        if (String(d).includes('Ready to accept connections')) resolve()
      })
    })
  })
  after(() => {
    server?.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('rediss:// with an ACL user runs tasks end to end', async () => {
    const url = `rediss://worq:s3cret@127.0.0.1:${port}/0`
    const broker = getBroker(url, uniqueQueue('tls'), { redis: { tls: { ca } } })
    broker.expose(new TaskSpace('math', { add: (a: number, b: number) => a + b }))
    const pool = new WorkerPool(broker)
    try {
      await pool.start()
      const q = broker.queue()
      const ds = await Promise.all(Array.from({ length: 50 }, (_, i) => q.math.add(i, 1)))
      expect(await Promise.all(ds.map(d => d.result(10_000)))).to.deep.equal(
        Array.from({ length: 50 }, (_, i) => i + 1),
      )
    } finally {
      await pool.stop()
      await broker.close()
    }
  })

  it('a wrong password is an error that says so, not a hang', async () => {
    const url = `rediss://worq:wrong@127.0.0.1:${port}/0`
    const broker = getBroker(url, uniqueQueue('tls'), {
      redis: { tls: { ca }, maxRetriesPerRequest: 0, retryStrategy: () => null },
    })
    try {
      const err = await broker.size().catch((e: unknown) => e)
      expect(String(err)).to.match(/WRONGPASS|NOAUTH|closed|invalid username-password/i)
    } finally {
      await broker.close()
    }
  })
})
