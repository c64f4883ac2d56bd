// One process of the scale-out benchmark (scale-out.js):
//   node scale-node.js worker <library> <url> <queues,…> <concurrency per queue>
//     serves every queue until stdin closes;
//   node scale-node.js producer <library> <url> <queues,…> <tasks> <window per queue>
//     keeps `window` calls in flight on each queue (enqueue, then read the result) until `tasks`
//     calls in all have their results; prints one JSON line: { ms };
//   node scale-node.js both <library> <url> <queues,…> <tasks> <window per queue>
//     the same, with a worker of concurrency 8 per queue in the same process (as `npm run bench`
//     runs every library).
const [, , role, library, url, queueList, countArg, windowArg] = process.argv
const queues = queueList.split(',')
const adapter = await import(`./adapters/${library}.js`)

if (role === 'worker') {
  const libs = await Promise.all(
    queues.map(queue =>
      adapter.create(url, { concurrency: Number(countArg), worker: true, queue }),
    ),
  )
  await Promise.all(libs.map(l => l.startWorker()))
  process.stdout.write('ready\n')
  process.stdin.resume()
  process.stdin.on('end', async () => {
    await Promise.all(libs.map(l => l.close()))
    process.exit(0)
  })
} else {
  const both = role === 'both'
  const libs = await Promise.all(
    queues.map(queue => adapter.create(url, { concurrency: both ? 8 : 1, worker: both, queue })),
  )
  if (both) await Promise.all(libs.map(l => l.startWorker()))
  const total = Number(countArg)
  let next = 0
  const t0 = performance.now()
  async function lane(lib) {
    while (next < total) {
      const i = next++
      const v = await lib.result(await lib.add(i, 1))
      if (v !== i + 1) throw new Error(`wrong result ${v} for ${i} + 1`)
    }
  }
  const lanes = libs.flatMap(lib => Array.from({ length: Number(windowArg) }, () => lane(lib)))
  await Promise.all(lanes)
  const ms = performance.now() - t0
  await Promise.all(libs.map(l => l.close()))
  process.stdout.write(JSON.stringify({ ms }) + '\n')
  process.exit(0)
}
