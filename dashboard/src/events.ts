/**
 * The live event stream (`GET api/events`, Server-Sent Events), read with fetch rather than
 * EventSource so that it can send the bearer token in a header (never in the URL). It reconnects
 * with Last-Event-ID and resumes where it was; while it is down, views fall back to polling every
 * 5 s. The last events seen are kept for task timelines.
 */
import type { EventJson } from '../../lib/http/types.js'
import { authHeaders } from './api.js'

type Listener = (event: EventJson) => void

/** Events kept for timelines. */
const KEEP = 5000

class LiveEvents {
  connected = false
  readonly recent: EventJson[] = []
  readonly #listeners = new Set<Listener>()
  readonly #status = new Set<(connected: boolean) => void>()
  #lastId = ''
  #abort: AbortController | undefined

  /** Calls `fn` with each event; returns the unsubscribe function. */
  on(fn: Listener): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }

  /** Calls `fn` when the stream connects or drops. */
  onStatus(fn: (connected: boolean) => void): () => void {
    this.#status.add(fn)
    return () => this.#status.delete(fn)
  }

  /** Starts (or restarts, after a sign-in) reading. */
  start(): void {
    this.#abort?.abort()
    const abort = (this.#abort = new AbortController())
    void this.#loop(abort.signal)
  }

  #setConnected(c: boolean): void {
    if (this.connected === c) return
    this.connected = c
    for (const fn of this.#status) fn(c)
  }

  async #loop(signal: AbortSignal): Promise<void> {
    let delay = 1000
    while (!signal.aborted) {
      try {
        const headers: Record<string, string> = { Accept: 'text/event-stream', ...authHeaders() }
        if (this.#lastId) headers['Last-Event-ID'] = this.#lastId
        const res = await fetch('api/events', { headers, signal, cache: 'no-store' })
        if (!res.ok || !res.body) throw new Error(`events: ${res.status}`)
        this.#setConnected(true)
        delay = 1000
        await this.#read(res.body)
      } catch {
        // Dropped or refused: wait, then reconnect and resume.
      }
      this.#setConnected(false)
      if (signal.aborted) return
      await new Promise(r => setTimeout(r, delay))
      delay = Math.min(delay * 2, 10_000)
    }
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        this.#dispatch(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
      }
    }
  }

  #dispatch(block: string): void {
    let data = ''
    let id: string | undefined
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) data += line.slice(5).trimStart()
      else if (line.startsWith('id:')) id = line.slice(3).trim()
    }
    if (id !== undefined) this.#lastId = id
    if (!data) return
    const event = JSON.parse(data) as EventJson
    this.recent.push(event)
    if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP)
    for (const fn of this.#listeners) fn(event)
  }
}

/** The page's one event stream. */
export const live = new LiveEvents()
