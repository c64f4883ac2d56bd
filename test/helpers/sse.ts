/** A client of `GET /api/events` for tests: reads the Server-Sent Events of a response. */
/** One Server-Sent Event. */
export interface Sse {
  id?: string
  data?: any
  comment?: string
}

/** Reads an SSE response; `next(predicate)` resolves with the first matching event (waiting for more). */
export async function open(base: string, path: string, headers: Record<string, string> = {}) {
  const abort = new AbortController()
  const res = await fetch(base + path, { headers, signal: abort.signal })
  const seen: Sse[] = []
  const waiters = new Set<{ test: (e: Sse) => boolean; resolve: (e: Sse) => void }>()
  const reading = (async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const e: Sse = {}
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) e.id = line.slice(4)
            else if (line.startsWith('data: ')) e.data = JSON.parse(line.slice(6))
            else if (line.startsWith(': ')) e.comment = line.slice(2)
          }
          seen.push(e)
          for (const w of waiters) {
            if (!w.test(e)) continue
            waiters.delete(w)
            w.resolve(e)
          }
        }
      }
    } catch {
      // aborted
    }
  })()
  return {
    res,
    seen,
    next(test: (e: Sse) => boolean): Promise<Sse> {
      const found = seen.find(test)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no such event; seen ${JSON.stringify(seen)}`)),
          5000,
        )
        waiters.add({ test, resolve: e => (clearTimeout(timer), resolve(e)) })
      })
    },
    async close() {
      abort.abort()
      await reading
    },
  }
}
