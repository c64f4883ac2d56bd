// A private Redis Cluster for the benchmark: `masters` redis-server processes in cluster mode on free
// loopback ports (no replicas, no persistence), joined with `redis-cli --cluster create`.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, isFree, serverArgs, spawnServer } from './redis.js'

function start(port, dir) {
  const child = spawnServer(
    serverArgs(
      port,
      dir,
      '--latency-tracking',
      'no',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
    ),
  )
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.stdout.on('data', d => {
      if (String(d).includes('Ready to accept connections')) resolve(child)
    })
  })
}

export async function startCluster(masters = 3) {
  const root = mkdtempSync(join(tmpdir(), 'worq-bench-cluster-'))
  const ports = []
  const taken = p => ports.some(q => q === p || q + 10000 === p || q === p + 10000)
  while (ports.length < masters) {
    const p = await freePort()
    // The cluster bus listens on port + 10000: keep it free too, and apart from the others'.
    if (p + 10000 < 65536 && !taken(p) && (await isFree(p + 10000))) ports.push(p)
  }
  const children = await Promise.all(
    ports.map(p => {
      const dir = join(root, String(p))
      mkdirSync(dir)
      return start(p, dir)
    }),
  )
  execFileSync('redis-cli', [
    '--cluster',
    'create',
    ...ports.map(p => `127.0.0.1:${p}`),
    '--cluster-yes',
  ])
  // Until every node agrees that the cluster is up.
  for (;;) {
    const ok = ports.every(p =>
      execFileSync('redis-cli', ['-p', String(p), 'cluster', 'info'], {
        encoding: 'utf8',
      }).includes('cluster_state:ok'),
    )
    if (ok) break
    await new Promise(r => setTimeout(r, 100))
  }
  return {
    url: `redis-cluster://${ports.map(p => `127.0.0.1:${p}`).join(',')}`,
    ports,
    stop() {
      for (const c of children) c.kill('SIGTERM')
      rmSync(root, { recursive: true, force: true })
    },
  }
}
